"""The staff request queue: filters, search, keyset pagination, days left.

Open requests are listed by effective due date (the extended one when there is one), the most urgent first; closed
ones newest first. Pages are cut with a keyset cursor, never an OFFSET, so page 400 costs what page 1 costs.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Connection,
    Integer,
    Select,
    and_,
    bindparam,
    false,
    func,
    literal,
    or_,
    select,
    tuple_,
)
from sqlmodel import Session, col

from portal.db import as_connection, limit_parameter
from portal.i18n import lazy_gettext
from portal.models import Customer, PrivacyRequest, StaffUser, Store
from portal.models.customer import SEARCH_EMAIL, SEARCH_FULL_NAME, SEARCH_LAST_NAME
from portal.models.requests import OPEN_STATUSES, REQUEST_STATUSES, REQUEST_TYPES, SEARCH_REFERENCE
from portal.requests.deadlines import end_of_day
from portal.requests.service import REFERENCE_ALPHABET, normalise_reference

PAGE_SIZE = 25
SEARCH_MIN_LENGTH = 3  # fewer characters would match most of the queue
# A search lists the requests of at most this many customers (one index range each for address and names; the
# page says when more matched and asks for more of the name or address).
SEARCH_CUSTOMERS = 50
LAST_CHARACTER = "\U0010ffff"  # sorts after every character bytewise: "dur" <= x < "dur" + this is "starts with dur"
DUE_SOON_DAYS = 7
CHANNELS = ("web", "store", "support", "email", "phone", "post")
CLOSED_STATUSES = tuple(s for s in REQUEST_STATUSES if s not in OPEN_STATUSES)
# "open" and "closed" group statuses; "all" is every request.
STATUS_CHOICES = ("open", *REQUEST_STATUSES, "closed", "all")
DUE_CHOICES = ("overdue", "week")

MESSAGES = {
    "status": lazy_gettext("Unknown status: choose one from the list."),
    "type": lazy_gettext("Unknown request type: choose one from the list."),
    "channel": lazy_gettext("Unknown channel: choose one from the list."),
    "store": lazy_gettext("Unknown store: choose one from the list."),
    "assignee": lazy_gettext("Unknown assignee: choose one from the list."),
    "due": lazy_gettext("Unknown due date filter: choose one from the list."),
    "q": lazy_gettext("Type at least 3 characters of a reference, an email address or a name."),
}

# The date the answer is owed by; open requests are listed by it (indexes: portal/models/requests.py, migration 0011).
effective_due = func.coalesce(PrivacyRequest.extended_due_at, PrivacyRequest.due_at)


@dataclasses.dataclass(frozen=True)
class QueueFilters:
    status: str = "open"
    type: str | None = None
    channel: str | None = None
    store_id: int | None = None
    # None: anyone; "none": nobody; "me": the staff member looking; otherwise a staff id as text.
    assignee: str | None = None
    due: str | None = None  # overdue | week
    q: str = ""

    def as_query(self) -> dict[str, str]:
        """The filters as URL parameters (defaults left out), for links that keep them."""
        values = {
            "status": self.status if self.status != "open" else "",
            "type": self.type or "",
            "channel": self.channel or "",
            "store": str(self.store_id) if self.store_id is not None else "",
            "assignee": self.assignee or "",
            "due": self.due or "",
            "q": self.q,
        }
        return {k: v for k, v in values.items() if v}

    @property
    def sorts_by_due_date(self) -> bool:
        return _sorts_by_due_date(self.status)


def parse_filters(query: Mapping[str, str]) -> tuple[QueueFilters, dict[str, str]]:
    """Filters from URL parameters. A bad value is left out and reported under its name (see MESSAGES)."""
    errors: dict[str, str] = {}

    def choice(name: str, allowed: tuple[str, ...]) -> str | None:
        value = (query.get(name) or "").strip()
        if not value:
            return None
        if value not in allowed:
            errors[name] = MESSAGES[name]
            return None
        return value

    status = choice("status", STATUS_CHOICES) or "open"
    type_ = choice("type", REQUEST_TYPES)
    channel = choice("channel", CHANNELS)
    due = choice("due", DUE_CHOICES)
    store_id = None
    raw_store = (query.get("store") or "").strip()
    if raw_store:
        if raw_store.isdigit() and len(raw_store) < 10:
            store_id = int(raw_store)
        else:
            errors["store"] = MESSAGES["store"]
    assignee = (query.get("assignee") or "").strip() or None
    if assignee and assignee not in ("me", "none") and not (assignee.isdigit() and len(assignee) < 10):
        errors["assignee"] = MESSAGES["assignee"]
        assignee = None
    q = " ".join((query.get("q") or "").split())[:254]
    if q and len(q) < SEARCH_MIN_LENGTH:
        errors["q"] = MESSAGES["q"]
        q = ""
    filters = QueueFilters(
        status=status, type=type_, channel=channel, store_id=store_id, assignee=assignee, due=due, q=q
    )
    return filters, errors


@dataclasses.dataclass(frozen=True)
class QueueRow:
    id: int
    reference: str
    type: str
    channel: str
    status: str
    store_code: str | None
    store_name: str | None
    masked_email: str
    assignee_id: int | None
    assignee_name: str | None
    received_at: datetime
    due_at: datetime  # effective: the extended date when there is one
    extended: bool
    days_left: int  # calendar days in the portal's time zone; negative once overdue
    version: int
    identity_checked_in_store: bool = False  # filed on a store tablet for a customer without their email

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def overdue(self) -> bool:
        return self.is_open and self.days_left < 0

    @property
    def due_soon(self) -> bool:
        return self.is_open and 0 <= self.days_left <= DUE_SOON_DAYS


@dataclasses.dataclass(frozen=True)
class QueuePage:
    rows: list[QueueRow]
    next_cursor: str | None  # None on the last page
    # The search matched more than SEARCH_CUSTOMERS customers: only the requests of SEARCH_CUSTOMERS of them are listed.
    search_capped: bool = False


def mask_email(address: str | None) -> str:
    """c•••••@example.com: enough for an agent to tell two customers apart, not enough to read the address."""
    if not address or "@" not in address:
        return "—"
    local, _, domain = address.rpartition("@")
    return f"{local[:1]}•••••@{domain}"


def days_left(due: datetime, now: datetime, *, timezone: str) -> int:
    """Calendar days from today to the due day, both read in `timezone` (0 = due today, -1 = due yesterday)."""
    zone = ZoneInfo(timezone)
    return days_until(due, now.astimezone(zone).date(), zone)


def days_until(due: datetime, today: date, zone: ZoneInfo) -> int:
    """`days_left` with today and the zone already read: a page reads them once for all its rows."""
    return (due.astimezone(zone).date() - today).days


def _today(now: datetime, timezone: str) -> date:
    return now.astimezone(ZoneInfo(timezone)).date()


def encode_cursor(row: QueueRow, filters: QueueFilters) -> str:
    """Where the next page starts: the sorting time (due date, or when received) and the id that breaks ties."""
    moment = row.due_at if filters.sorts_by_due_date else row.received_at
    return f"{int(moment.timestamp() * 1_000_000)}.{row.id}"


def decode_cursor(raw: str | None) -> tuple[datetime, int] | None:
    """The position after which the page starts, or None (first page) for a missing or malformed cursor."""
    raw = (raw or "").strip()
    if not raw or len(raw) > 40:
        return None
    micros, dot, row_id = raw.partition(".")
    if not dot or not micros.lstrip("-").isdigit() or not row_id.isdigit():
        return None
    try:
        moment = datetime.fromtimestamp(int(micros) / 1_000_000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None
    return moment, int(row_id)


def _literal_in(column: ColumnElement[str], values: tuple[str, ...]) -> ColumnElement[bool]:
    """`column IN ('a', 'b')` with the values written into the SQL, not bound.

    The partial indexes on open requests (migration 0011) are used only when the query's WHERE visibly implies the
    index's: SQLite compares the terms as written, and PostgreSQL's generic plans cannot see bound values. The values
    are the portal's own constants, never what someone typed.
    """
    return column.in_(bindparam(f"literal_{column.key}", list(values), expanding=True, literal_execute=True))


def is_open() -> ColumnElement[bool]:
    """The WHERE term of the partial indexes on open requests, written as they are (see `_literal_in`)."""
    return _literal_in(PrivacyRequest.status, OPEN_STATUSES)


@dataclasses.dataclass(frozen=True)
class _Shape:
    """What decides the SQL of a page (values are bound): a few hundred shapes at most, each statement built once.

    Building the statement and its cache key for every page cost more than SQLite's answer to it (bench/README.md,
    issue 17)."""

    status: str
    type: bool = False
    channel: bool = False
    store: bool = False
    assignee: str | None = None  # "me" | "none" | "id"
    due: str | None = None
    search: str | None = None  # "reference": a whole reference; "start": customers and/or starts of a reference
    customers: bool = False  # the search matched customers
    prefixes: int = 0  # how many starts of a reference the search text can be
    cursor: bool = False


@dataclasses.dataclass(frozen=True)
class _Search:
    """What the search text can be, read once a page: a whole reference, or starts of one (`_reference_prefixes`)."""

    reference: str | None
    prefixes: tuple[str, ...]

    @classmethod
    def of(cls, q: str) -> _Search:
        reference = normalise_reference(q)
        return cls(reference=reference, prefixes=() if reference else tuple(_reference_prefixes(q)))


def _shape_and_values(
    filters: QueueFilters,
    *,
    staff_id: int | None,
    now: datetime,
    after: str | None,
    page_size: int,
    timezone: str,
    customers: Sequence[int],
    search: _Search | None,
) -> tuple[_Shape, dict[str, Any]]:
    values: dict[str, Any] = {"now": now, "limit": page_size + 1}
    if filters.type:
        values["type"] = filters.type
    if filters.channel:
        values["channel"] = filters.channel
    if filters.store_id is not None:
        values["store_id"] = filters.store_id
    assignee = None
    if filters.assignee == "none":
        assignee = "none"
    elif filters.assignee:
        assignee = "id"
        values["assignee_id"] = staff_id if filters.assignee == "me" else int(filters.assignee)
    if filters.due == "week":
        values["horizon"] = end_of_day(_today(now, timezone) + timedelta(days=DUE_SOON_DAYS), timezone=timezone)
    kind = None
    if search is not None and search.reference:  # a whole reference: the unique index answers at once
        kind = "reference"
        values["reference"] = search.reference
    elif search is not None:
        kind = "start"
        if customers:
            values["customers"] = list(customers)
        for index, prefix in enumerate(search.prefixes):
            values[f"prefix_{index}"], values[f"prefix_{index}_end"] = prefix, prefix + LAST_CHARACTER
    position = decode_cursor(after)
    if position is not None:
        values["after_at"], values["after_id"] = position
    shape = _Shape(
        status=filters.status,
        type=bool(filters.type),
        channel=bool(filters.channel),
        store=filters.store_id is not None,
        assignee=assignee,
        due=filters.due,
        search=kind,
        customers=kind == "start" and bool(customers),
        prefixes=len(search.prefixes) if kind == "start" and search else 0,
        cursor=position is not None,
    )
    return shape, values


def _conditions(shape: _Shape) -> list[ColumnElement[bool]]:
    """WHERE terms for the filters, their values bound.

    Every shape is served by an index that yields rows in the page's order, so a page reads about as many rows as
    it shows (tests/unit/backoffice/test_queue_plans.py proves it with EXPLAIN on SQLite and PostgreSQL):
    open requests by the partial indexes `ix_privacy_request_open_*` (due date, or type / channel / store /
    assignee then due date), one open status by `ix_privacy_request_status_effective_due`, one closed status by
    `ix_privacy_request_status_received`, closed or all requests with a filter by `ix_privacy_request_*_received`;
    a search seeks the customers it matches (at most SEARCH_CUSTOMERS) and the start of a reference.
    """
    terms: list[ColumnElement[bool]] = []
    if shape.status == "open" or shape.due:
        # Overdue and due soon only make sense for requests still waiting for an answer.
        terms.append(is_open())
    if shape.status in OPEN_STATUSES or shape.status in CLOSED_STATUSES:
        # Written in, like is_open(): one of the portal's own constants, part of the shape.
        terms.append(PrivacyRequest.status == literal(shape.status))
    elif shape.status == "closed":
        # Closed requests are most of the table and listed newest first: walking a received_at index backwards
        # finds a page at once, where the status index would fetch and sort them all. `|| ''` keeps the planner off it.
        terms.append((PrivacyRequest.status + "").in_(CLOSED_STATUSES))
    if shape.type:
        terms.append(PrivacyRequest.type == bindparam("type"))
    if shape.channel:
        terms.append(PrivacyRequest.channel == bindparam("channel"))
    if shape.store:
        terms.append(PrivacyRequest.store_id == bindparam("store_id"))
    if shape.assignee == "none":
        terms.append(PrivacyRequest.assignee_id.is_(None))
    elif shape.assignee:
        terms.append(PrivacyRequest.assignee_id == bindparam("assignee_id"))
    if shape.due == "overdue":
        terms.append(effective_due < bindparam("now"))
    elif shape.due:
        terms.append(and_(effective_due >= bindparam("now"), effective_due <= bindparam("horizon")))
    if shape.search == "reference":
        terms.append(col(PrivacyRequest.reference) == bindparam("reference"))
    elif shape.search == "start":
        search = [PrivacyRequest.customer_id.in_(bindparam("customers", expanding=True))] if shape.customers else []
        reference = SEARCH_REFERENCE  # the start of a reference, as one range of its index (see _CUSTOMERS_STARTING)
        search.extend(
            and_(reference >= bindparam(f"prefix_{i}"), reference < bindparam(f"prefix_{i}_end"))
            for i in range(shape.prefixes)
        )
        terms.append(or_(*search) if search else false())
    return terms


# The customers whose key starts with the typed text: one range of the key's index each ("dur" <= x < "dur" + the last
# character; a LIKE 'dur%' would not use it on SQLite), in the index's order, so the same customers are listed every
# time when more match than are shown. Built once: a search sent three statements built anew per page.
_CUSTOMERS_STARTING = tuple(
    select(Customer.id).where(key >= bindparam("start"), key < bindparam("end")).order_by(key).limit(limit_parameter())
    for key in (SEARCH_EMAIL, SEARCH_LAST_NAME, SEARCH_FULL_NAME)
)


def _reference_prefixes(q: str) -> list[str]:
    """The starts of a reference that `q` can be (R-7K2Q-9…, 7k2q9, r7K2…); none when it cannot be one. A leading
    R without its dash may be the R of "R-" or the reference's own first character (R-RN6C-…): both are tried."""
    typed = q.upper().replace(" ", "")
    if typed.startswith("R-"):
        bodies = [typed[2:]]
    elif typed.startswith("R"):
        bodies = [typed[1:], typed]
    else:
        bodies = [typed]
    prefixes = []
    for body in bodies:
        cleaned = body.replace("-", "").translate(str.maketrans("OIL", "011"))
        if SEARCH_MIN_LENGTH <= len(cleaned) <= 8 and all(c in REFERENCE_ALPHABET for c in cleaned):
            prefixes.append("R-" + cleaned[:4] + (f"-{cleaned[4:]}" if len(cleaned) > 4 else ""))
    return prefixes


def matching_customers(db: Session | Connection, q: str) -> tuple[list[int], bool]:
    """Customers whose address, last name or "first last" starts with `q` (case-insensitive): at most
    SEARCH_CUSTOMERS of them, and whether there were more (the page then asks to type more).

    One statement per key, each one range of its index (an OR of ranges makes SQLite scan the table)."""
    typed = q.lower()
    found: dict[int, None] = {}
    connection = as_connection(db)
    for statement in _CUSTOMERS_STARTING:
        values = {"start": typed, "end": typed + LAST_CHARACTER, "limit": SEARCH_CUSTOMERS + 1 - len(found)}
        found.update((id_, None) for (id_,) in connection.execute(statement, values))
        if len(found) > SEARCH_CUSTOMERS:
            break
    ids = list(found)
    return ids[:SEARCH_CUSTOMERS], len(ids) > SEARCH_CUSTOMERS


_COLUMNS = (
    PrivacyRequest.id,
    PrivacyRequest.reference,
    PrivacyRequest.type,
    PrivacyRequest.channel,
    PrivacyRequest.status,
    Store.code,
    Store.name,
    Customer.email,
    PrivacyRequest.assignee_id,
    StaffUser.name,
    PrivacyRequest.received_at,
    PrivacyRequest.due_at,
    PrivacyRequest.extended_due_at,
    PrivacyRequest.version,
    PrivacyRequest.details,
)


def _select(page_ids: Select | None = None) -> Select:
    """The row columns; with `page_ids`, only for the ids of that (already sorted and limited) subquery.

    Sorting and cutting the page on `privacy_request` alone, then joining 25 rows, keeps the joins out of the sort
    (joining every open request before sorting them cost most of the page's time at 100,000 requests).
    """
    statement = select(*_COLUMNS).select_from(PrivacyRequest)
    if page_ids is not None:
        page = page_ids.subquery("page")
        statement = select(*_COLUMNS).select_from(page.join(PrivacyRequest, PrivacyRequest.id == page.c.id))
    return (
        statement.outerjoin(Store, Store.id == PrivacyRequest.store_id)
        .outerjoin(Customer, Customer.id == PrivacyRequest.customer_id)
        .outerjoin(StaffUser, StaffUser.id == PrivacyRequest.assignee_id)
    )


def _row(values: Sequence[Any], today: date, zone: ZoneInfo) -> QueueRow:
    (id_, reference, type_, channel, status, store_code, store_name, email, assignee_id, assignee_name) = values[:10]
    received_at, due_at, extended_due_at, version, details = values[10:]
    due = extended_due_at or due_at
    return QueueRow(
        id=id_,
        reference=reference,
        type=type_,
        channel=channel,
        status=status,
        store_code=store_code,
        store_name=store_name,
        masked_email=mask_email(email),
        assignee_id=assignee_id,
        assignee_name=assignee_name,
        received_at=received_at,
        due_at=due,
        extended=extended_due_at is not None,
        days_left=days_until(due, today, zone),
        version=version,
        identity_checked_in_store=bool((details or {}).get("identity_checked_in_store")),
    )


@functools.cache
def _page_ids(shape: _Shape) -> Select:
    """The statement that picks one page of request ids (sorted, limited); the rows are joined to it afterwards."""
    terms = _conditions(shape)
    if shape.cursor:
        # Typed: a tuple comparison does not lend its columns' types to the values (UTCDateTime stores UTC text).
        moment_type = PrivacyRequest.__table__.c.received_at.type
        cursor = tuple_(bindparam("after_at", type_=moment_type), bindparam("after_id", type_=Integer()))
        if _sorts_by_due_date(shape.status):
            terms.append(tuple_(effective_due, PrivacyRequest.id) > cursor)
        else:
            terms.append(tuple_(PrivacyRequest.received_at, PrivacyRequest.id) < cursor)
    return select(PrivacyRequest.id).where(*terms).order_by(*_order(shape.status)).limit(limit_parameter())


@functools.cache
def _page_rows(shape: _Shape) -> Select:
    return _select(_page_ids(shape)).order_by(*_order(shape.status))


def page_statement(
    filters: QueueFilters,
    *,
    staff_id: int | None,
    now: datetime,
    after: str | None = None,
    page_size: int = PAGE_SIZE,
    timezone: str,
    customers: Sequence[int] = (),
) -> Select:
    """The ids of one page, with the values bound (what EXPLAIN is asked about).

    `customers`: those the search matched (`matching_customers`)."""
    search = _Search.of(filters.q) if filters.q else None
    shape, values = _shape_and_values(
        filters,
        staff_id=staff_id,
        now=now,
        after=after,
        page_size=page_size,
        timezone=timezone,
        customers=customers,
        search=search,
    )
    return _page_ids(shape).params(values)


def _sorts_by_due_date(status: str) -> bool:
    return status in ("open", *OPEN_STATUSES)


def _order(status: str) -> tuple[Any, ...]:
    if _sorts_by_due_date(status):
        return (effective_due, PrivacyRequest.id)
    # Newest first: by when the request was received, as the page says (ids follow insertion, not receipt).
    return (PrivacyRequest.received_at.desc(), PrivacyRequest.id.desc())


def queue_page(
    db: Session | Connection,
    *,
    filters: QueueFilters,
    staff_id: int | None,
    now: datetime,
    after: str | None = None,
    page_size: int = PAGE_SIZE,
    timezone: str,
) -> QueuePage:
    """One page of the queue after the cursor `after` (None: the first page)."""
    customers: list[int] = []
    capped = False
    search = _Search.of(filters.q) if filters.q else None
    if search is not None and not search.reference:
        customers, capped = matching_customers(db, filters.q)
        if not customers and not search.prefixes:
            return QueuePage(rows=[], next_cursor=None)  # nothing can match
    shape, values = _shape_and_values(
        filters,
        staff_id=staff_id,
        now=now,
        after=after,
        page_size=page_size,
        timezone=timezone,
        customers=customers,
        search=search,
    )
    zone = ZoneInfo(timezone)
    today = now.astimezone(zone).date()
    rows = [_row(r, today, zone) for r in as_connection(db).execute(_page_rows(shape), values)]
    more = len(rows) > page_size
    rows = rows[:page_size]
    return QueuePage(
        rows=rows, next_cursor=encode_cursor(rows[-1], filters) if more and rows else None, search_capped=capped
    )


_ONE_ROW = _select().where(PrivacyRequest.reference == bindparam("reference"))
_STORES = select(Store.id, Store.code, Store.name).order_by(Store.code)
# Active staff who can work requests (store accounts only use the tablet).
_ASSIGNEES = (
    select(StaffUser.id, StaffUser.name)
    .where(StaffUser.active.is_(True), StaffUser.role.in_(("agent", "dpo")))
    .order_by(StaffUser.name)
)


def queue_row(db: Session | Connection, *, reference: str, now: datetime, timezone: str) -> QueueRow | None:
    """One request as a queue row (htmx swaps the row after an assignment or a status change)."""
    found = as_connection(db).execute(_ONE_ROW, {"reference": reference}).first()
    zone = ZoneInfo(timezone)
    return _row(found, now.astimezone(zone).date(), zone) if found else None


@dataclasses.dataclass(frozen=True)
class Choice:
    value: str
    label: str


def store_choices(db: Session | Connection) -> list[Choice]:
    rows = as_connection(db).execute(_STORES)
    return [Choice(str(id_), f"{code} · {name}") for id_, code, name in rows]


def assignee_choices(db: Session | Connection) -> list[Choice]:
    """Active staff who can work requests (store accounts only use the tablet)."""
    rows = as_connection(db).execute(_ASSIGNEES)
    return [Choice(str(id_), name) for id_, name in rows]


@dataclasses.dataclass(frozen=True)
class QueueScreen:
    """The queue page: one page of rows and the choices of its filters."""

    page: QueuePage
    stores: list[Choice]
    assignees: list[Choice]


def queue_screen(
    db: Session | Connection,
    *,
    filters: QueueFilters,
    staff_id: int | None,
    now: datetime,
    after: str | None,
    timezone: str,
) -> QueueScreen:
    page = queue_page(db, filters=filters, staff_id=staff_id, now=now, after=after, timezone=timezone)
    return QueueScreen(page, store_choices(db), assignee_choices(db))
