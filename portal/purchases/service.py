"""The customer's purchases across stores: one page of the list, the totals, one receipt. No HTTP here.

The list is keyset-paginated on (purchased_at DESC, id DESC) along `ix_purchase_customer_time`, so page 400 costs
what page 1 costs; counts and amounts come from `purchase_total`, never from counting the purchases themselves.
"""

from __future__ import annotations

import dataclasses
import re
from collections import defaultdict
from datetime import UTC, datetime
from functools import cache
from zoneinfo import ZoneInfo

from sqlalchemy import BindParameter, Connection, Select, bindparam, or_, select
from sqlmodel import Session

from portal.db import as_connection, limit_parameter
from portal.errors import PurchaseNotFound
from portal.models import Purchase, PurchaseLine, PurchaseTotal, Store
from portal.models.commerce import STORE_KIND_WEB

CHANNELS = ("in_store", "web", "click_and_collect")
PAGE_SIZE = 25
# Totals are kept without a currency: every purchase the retailer's tills send is in euros.
TOTALS_CURRENCY = "EUR"
MIN_YEAR, MAX_YEAR = 1900, 2999
# `purchase.id` and `store.id` are 32-bit integers on PostgreSQL; a larger number is nobody's.
MAX_ID = 2**31 - 1

_ID = re.compile(r"[0-9]{1,10}")
_YEAR = re.compile(r"[0-9]{4}")


class InvalidQuery(ValueError):
    """A filter or cursor that cannot be understood; `field` names it (store, channel, year, after)."""

    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field


class InvalidFilter(InvalidQuery):
    pass


class InvalidCursor(InvalidQuery):
    def __init__(self) -> None:
        super().__init__("after")


@dataclasses.dataclass(frozen=True)
class PurchaseFilters:
    store_id: int | None = None
    channel: str | None = None
    year: int | None = None  # a calendar year in Europe/Paris

    @classmethod
    def parse(cls, *, store: str | None = None, channel: str | None = None, year: str | None = None) -> PurchaseFilters:
        """Filters from the list's query string; an empty value means "any"."""
        store_id = _parse_id(store, "store") if store else None
        if channel and channel not in CHANNELS:
            raise InvalidFilter("channel")
        year_number = None
        if year:
            if not _YEAR.fullmatch(year) or not MIN_YEAR <= int(year) <= MAX_YEAR:
                raise InvalidFilter("year")
            year_number = int(year)
        return cls(store_id=store_id, channel=channel or None, year=year_number)

    @property
    def active(self) -> bool:
        return self.store_id is not None or self.channel is not None or self.year is not None

    def as_query(self) -> dict[str, str]:
        """The filters as query-string parameters, without the empty ones."""
        values = {"store": self.store_id, "channel": self.channel, "year": self.year}
        return {name: str(value) for name, value in values.items() if value is not None}


@dataclasses.dataclass(frozen=True)
class StoreRef:
    id: int
    code: str
    name: str
    city: str | None
    kind: str

    @property
    def is_web(self) -> bool:
        return self.kind == STORE_KIND_WEB


@dataclasses.dataclass(frozen=True)
class PurchaseSummary:
    """One purchase as the list shows it (its lines are read only for the receipt)."""

    id: int
    purchased_at: datetime
    receipt_number: str
    channel: str
    total_cents: int
    currency: str
    store: StoreRef


@dataclasses.dataclass(frozen=True)
class PurchasePage:
    purchases: tuple[PurchaseSummary, ...]
    next_after: str | None  # the cursor of the following page, None on the last one


@dataclasses.dataclass(frozen=True)
class StoreTotal:
    store: StoreRef
    purchase_count: int
    amount_cents: int


@dataclasses.dataclass(frozen=True)
class YearTotal:
    year: int
    purchase_count: int
    amount_cents: int


@dataclasses.dataclass(frozen=True)
class Matching:
    """How many purchases match the filters, and for how much."""

    purchase_count: int
    amount_cents: int


@dataclasses.dataclass(frozen=True)
class PurchaseTotals:
    by_store: tuple[StoreTotal, ...]  # shops by name, then the web shop
    by_year: tuple[YearTotal, ...]  # newest year first
    purchase_count: int
    amount_cents: int
    currency: str
    # (store id, year) -> (count, amount): what the per-store and per-year tables are sums of.
    cells: dict[tuple[int, int], tuple[int, int]] = dataclasses.field(repr=False)

    @property
    def stores(self) -> tuple[StoreRef, ...]:
        return tuple(total.store for total in self.by_store)

    @property
    def years(self) -> tuple[int, ...]:
        return tuple(total.year for total in self.by_year)

    def matching(self, filters: PurchaseFilters) -> Matching | None:
        """Count and amount of the purchases matching `filters`, or None when the totals cannot tell (channel)."""
        if filters.channel is not None:
            return None
        count = amount = 0
        for (store_id, year), (cell_count, cell_amount) in self.cells.items():
            if filters.store_id not in (None, store_id) or filters.year not in (None, year):
                continue
            count += cell_count
            amount += cell_amount
        return Matching(purchase_count=count, amount_cents=amount)


@dataclasses.dataclass(frozen=True)
class PurchaseListing:
    """What the purchases page shows: the totals and one page of the list."""

    totals: PurchaseTotals
    page: PurchasePage
    matching: Matching | None


@dataclasses.dataclass(frozen=True)
class ReceiptLine:
    sku: str
    label: str
    quantity: int
    unit_price_cents: int

    @property
    def total_cents(self) -> int:
        return self.quantity * self.unit_price_cents


@dataclasses.dataclass(frozen=True)
class Receipt:
    purchase: PurchaseSummary
    lines: tuple[ReceiptLine, ...]


def _parse_id(value: str, field: str) -> int:
    if not _ID.fullmatch(value) or not 1 <= int(value) <= MAX_ID:
        raise InvalidFilter(field)
    return int(value)


def parse_cursor(after: str) -> int:
    """The purchase a page starts after. The cursor is that purchase's id: it carries no date into URLs."""
    if not _ID.fullmatch(after) or not 1 <= int(after) <= MAX_ID:
        raise InvalidCursor()
    return int(after)


def year_bounds(year: int, timezone: str) -> tuple[datetime, datetime]:
    """[start, end) in UTC of a calendar year in `timezone`, so the year filter is a range on the indexed time."""
    zone = ZoneInfo(timezone)
    start = datetime(year, 1, 1, tzinfo=zone).astimezone(UTC)
    end = datetime(year + 1, 1, 1, tzinfo=zone).astimezone(UTC)
    return start, end


# --- Statements, built once (building them per request costs more than SQLite's answer, bench/README.md) --------

_P = Purchase.__table__.c
_L = PurchaseLine.__table__.c
_S = Store.__table__.c
_T = PurchaseTotal.__table__.c

_CUSTOMER_ID: BindParameter[int] = bindparam("customer_id")
_PURCHASE_ID: BindParameter[int] = bindparam("purchase_id")
_PURCHASE_COLUMNS = (
    _P.id,
    _P.purchased_at,
    _P.receipt_number,
    _P.channel,
    _P.total_cents,
    _P.currency,
    _S.id.label("store_id"),
    _S.code.label("store_code"),
    _S.name.label("store_name"),
    _S.city.label("store_city"),
    _S.kind.label("store_kind"),
)
_PURCHASE_WITH_STORE = Purchase.__table__.join(Store.__table__, _S.id == _P.store_id)

# The page's cursor, checked to be one of the customer's own purchases.
_CURSOR = select(_P.purchased_at).where(_P.id == _PURCHASE_ID, _P.customer_id == _CUSTOMER_ID)

_TOTALS = (
    select(_T.store_id, _T.year, _T.purchase_count, _T.amount_cents, _S.code, _S.name, _S.city, _S.kind)
    .select_from(PurchaseTotal.__table__.join(Store.__table__, _S.id == _T.store_id))
    .where(_T.customer_id == _CUSTOMER_ID)
)

_RECEIPT = (
    select(*_PURCHASE_COLUMNS)
    .select_from(_PURCHASE_WITH_STORE)
    .where(_P.id == _PURCHASE_ID, _P.customer_id == _CUSTOMER_ID)
)
_RECEIPT_LINES = (
    select(_L.sku, _L.label, _L.quantity, _L.unit_price_cents).where(_L.purchase_id == _PURCHASE_ID).order_by(_L.id)
)


@cache
def _page_statement(*, since: bool, until: bool, store: bool, channel: bool, after: bool) -> Select:
    """The list query for one combination of filters (a few dozen shapes at most, each built once)."""
    statement = select(*_PURCHASE_COLUMNS).select_from(_PURCHASE_WITH_STORE).where(_P.customer_id == _CUSTOMER_ID)
    if since:
        statement = statement.where(_P.purchased_at >= bindparam("since"))
    if until:
        statement = statement.where(_P.purchased_at < bindparam("until"))
    if store:
        statement = statement.where(_P.store_id == bindparam("store_id"))
    if channel:
        statement = statement.where(_P.channel == bindparam("channel"))
    if after:
        # Spelled as a range plus a tie-breaker rather than a row value, so both engines seek in the index.
        before_at: BindParameter[datetime] = bindparam("before_at")
        statement = statement.where(
            _P.purchased_at <= before_at, or_(_P.purchased_at < before_at, _P.id < bindparam("before_id"))
        )
    return statement.order_by(_P.purchased_at.desc(), _P.id.desc()).limit(limit_parameter())


def _summaries(rows) -> tuple[PurchaseSummary, ...]:  # type: ignore[no-untyped-def]
    """Rows of _PURCHASE_COLUMNS as summaries. Unpacked by position and one StoreRef per store: named row
    attributes and a store object per row were most of the list page's Python time (bench/README.md)."""
    stores: dict[int, StoreRef] = {}
    summaries = []
    for id_, purchased_at, receipt_number, channel, total_cents, currency, store_id, code, name, city, kind in rows:
        store = stores.get(store_id)
        if store is None:
            store = stores[store_id] = StoreRef(id=store_id, code=code, name=name, city=city, kind=kind)
        summaries.append(
            PurchaseSummary(
                id=id_,
                purchased_at=purchased_at,
                receipt_number=receipt_number,
                channel=channel,
                total_cents=int(total_cents),
                currency=currency,
                store=store,
            )
        )
    return tuple(summaries)


def _summary(row) -> PurchaseSummary:  # type: ignore[no-untyped-def]
    return _summaries([row])[0]


# --- Services ------------------------------------------------------------------------------------------------------


def purchase_page(
    db: Session | Connection,
    *,
    customer_id: int,
    filters: PurchaseFilters,
    timezone: str,
    after: str | None = None,
    page_size: int = PAGE_SIZE,
) -> PurchasePage:
    """One page of the customer's purchases, newest first, starting after the cursor `after`.

    Raises InvalidCursor for a malformed cursor and PurchaseNotFound for a cursor that is not one of the customer's
    purchases.
    """
    connection = as_connection(db)
    since, until = year_bounds(filters.year, timezone) if filters.year is not None else (None, None)
    cursor: tuple[datetime, int] | None = None
    if after:
        before_id = parse_cursor(after)
        before_at = connection.execute(_CURSOR, {"purchase_id": before_id, "customer_id": customer_id}).scalar()
        if before_at is None:
            raise PurchaseNotFound(before_id)
        # SQLite seeks on one upper bound only: keep the tighter one, so page 50 of a year starts where page 49
        # ended instead of at the end of the year. A cursor after the year leaves every purchase of the year older.
        if until is None or before_at < until:
            cursor, until = (before_at, before_id), None
    params = {
        "customer_id": customer_id,
        "limit": page_size + 1,
        "since": since,
        "until": until,
        "store_id": filters.store_id,
        "channel": filters.channel,
        "before_at": cursor[0] if cursor else None,
        "before_id": cursor[1] if cursor else None,
    }
    statement = _page_statement(
        since=since is not None,
        until=until is not None,
        store=filters.store_id is not None,
        channel=filters.channel is not None,
        after=cursor is not None,
    )
    rows = connection.execute(statement, params).all()
    purchases = _summaries(rows[:page_size])
    next_after = str(purchases[-1].id) if len(rows) > page_size else None
    return PurchasePage(purchases=purchases, next_after=next_after)


def purchase_totals(db: Session | Connection, *, customer_id: int) -> PurchaseTotals:
    """Count and amount per store and per year, read from the per-customer totals (a few rows, whatever the history)."""
    rows = as_connection(db).execute(_TOTALS, {"customer_id": customer_id}).all()
    stores: dict[int, StoreRef] = {}
    by_store: defaultdict[int, list[int]] = defaultdict(lambda: [0, 0])
    by_year: defaultdict[int, list[int]] = defaultdict(lambda: [0, 0])
    cells: dict[tuple[int, int], tuple[int, int]] = {}
    # Unpacked by position, one StoreRef per store (not per row): named row attributes and an object per row were
    # 409 µs of the purchases page against 23 µs this way (issue 17).
    for store_id, year, purchase_count, amount_cents, code, name, city, kind in rows:
        count, amount = int(purchase_count), int(amount_cents)
        if store_id not in stores:
            stores[store_id] = StoreRef(id=store_id, code=code, name=name, city=city, kind=kind)
        cells[(store_id, year)] = (count, amount)
        store_sums, year_sums = by_store[store_id], by_year[year]
        store_sums[0] += count
        store_sums[1] += amount
        year_sums[0] += count
        year_sums[1] += amount
    ordered_stores = sorted(stores.values(), key=lambda store: (store.is_web, store.name.casefold(), store.id))
    return PurchaseTotals(
        by_store=tuple(StoreTotal(store, *by_store[store.id]) for store in ordered_stores),
        by_year=tuple(YearTotal(year, *by_year[year]) for year in sorted(by_year, reverse=True)),
        purchase_count=sum(count for count, _amount in cells.values()),
        amount_cents=sum(amount for _count, amount in cells.values()),
        currency=TOTALS_CURRENCY,
        cells=cells,
    )


def stores_bought_in(db: Session | Connection, *, customer_id: int) -> tuple[StoreRef, ...]:
    """The stores (and web shop) where the customer made purchases: the choices of the store filter."""
    return purchase_totals(db, customer_id=customer_id).stores


def purchase_listing(
    db: Session | Connection,
    *,
    customer_id: int,
    filters: PurchaseFilters,
    timezone: str,
    after: str | None = None,
    page_size: int = PAGE_SIZE,
) -> PurchaseListing:
    """The purchases page: totals, one page of the list, and what the filters match when the totals can tell.

    Raises InvalidFilter when the store filter names a store the customer never bought in.
    """
    connection = as_connection(db)
    totals = purchase_totals(connection, customer_id=customer_id)
    if filters.store_id is not None and filters.store_id not in {store.id for store in totals.stores}:
        raise InvalidFilter("store")
    page = purchase_page(
        connection, customer_id=customer_id, filters=filters, timezone=timezone, after=after, page_size=page_size
    )
    return PurchaseListing(totals=totals, page=page, matching=totals.matching(filters))


def receipt(db: Session | Connection, *, customer_id: int, purchase_id: int) -> Receipt:
    """One of the customer's purchases with its store and lines; PurchaseNotFound when it is not theirs."""
    if not 1 <= purchase_id <= MAX_ID:
        raise PurchaseNotFound(purchase_id)
    connection = as_connection(db)
    row = connection.execute(_RECEIPT, {"purchase_id": purchase_id, "customer_id": customer_id}).first()
    if row is None:
        raise PurchaseNotFound(purchase_id)
    lines = connection.execute(_RECEIPT_LINES, {"purchase_id": purchase_id}).all()
    return Receipt(
        purchase=_summary(row),
        lines=tuple(
            ReceiptLine(sku=line.sku, label=line.label, quantity=line.quantity, unit_price_cents=line.unit_price_cents)
            for line in lines
        ),
    )
