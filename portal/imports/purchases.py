"""Purchases from the tills and the web shop, keyed by receipt number.

A CSV row is one line of a receipt; the lines of one receipt are consecutive in the exports, so the importer keeps
them in one batch (`group_key`) and they are checked and written together. A JSON Lines row (or an API item) may
instead be a whole receipt with its `lines` nested. Re-importing a receipt with the same content changes nothing;
with other content it is refused, as a person must say which one is true.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar, NamedTuple

from sqlalchemy import select
from sqlmodel import Session

from portal.clock import CLOCK_SKEW
from portal.db import as_connection
from portal.i18n import format_money, gettext
from portal.imports.kinds import FieldSpec, ImportContext, RowError, RowInvalid, Tally
from portal.imports.lookup import CUSTOMER_FIELD_SPECS, CustomerIndex, CustomerRef, is_erased
from portal.imports.values import Formats, read_cents, read_datetime, read_int
from portal.models import Purchase, PurchaseLine, Store
from portal.models.commerce import STORE_KIND_WEB
from portal.purchases.records import NewPurchase, existing_receipts, record_purchases

CHANNELS = ("in_store", "web", "click_and_collect")
CURRENCY = re.compile(r"[A-Z]{3}")
# A line beyond a billion in any currency is a mistake; the bound keeps a receipt's total within a BIGINT.
MAX_LINE_CENTS = 10**14
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
PLAIN_AMOUNT = {
    False: re.compile(r"([0-9]{1,12})(?:\.([0-9]{1,2}))?"),
    True: re.compile(r"([0-9]{1,12})(?:,([0-9]{1,2}))?"),
}
# The receipt-level fields every line of a receipt repeats, and must repeat identically.
RECEIPT_FIELDS = ("store_code", "purchased_at", "channel", "customer", "currency", "total_cents")
OPTIONAL_RECEIPT_FIELDS = frozenset({"channel", "customer", "total_cents"})
# The columns those fields are read from: a row repeating the previous row's values repeats its receipt.
RECEIPT_COLUMNS = (
    "receipt_number",
    "store_code",
    "purchased_at",
    "channel",
    "customer_id",
    "email",
    "loyalty_number",
    "currency",
    "total",
)
LINE_COLUMNS = ("sku", "label", "quantity", "unit_price")
_SHOWN_FIELD = {"customer": "customer_id", "total_cents": "total"}
# A plainly written quantity (the slow path reads and explains every other one), and the bound of the memos of
# articles and prices that the fast path keeps.
# A receipt's digest and the line it was first seen at, in one int: 48 bits are lines enough for any file.
DIGEST_MASK = 2**64 - 1
LINE_BITS = 48
LINE_MASK = 2**LINE_BITS - 1
PLAIN_QUANTITIES = {str(n): n for n in range(1, 1000)}
MEMO_SIZE = 100_000


# A line of a receipt: sku, label, quantity, unit price in cents; a plain tuple (a file has a million of them), as
# purchases.records writes it.
ReceiptLine = tuple[str, str, int, int]


class _Receipt(NamedTuple):
    """The fields a receipt's lines repeat, in PurchaseRow's order."""

    receipt_number: str
    store_code: str
    purchased_at: datetime
    channel: str | None
    customer: CustomerRef | None
    currency: str
    total_cents: int | None


@dataclasses.dataclass(slots=True)
class PurchaseRow:
    """One parsed row: a line of a receipt, or a whole receipt (`whole`) from JSON. `check` fills the last five.

    `shared` is the receipt's fields as read from its first line, one object for every following line that repeats
    them in the same text: `check` sees at once that such a line agrees with its receipt.
    """

    line: int
    receipt_number: str
    store_code: str
    purchased_at: datetime
    channel: str | None  # None: the store's own (web for the web shop, in_store otherwise)
    customer: CustomerRef | None  # None: an anonymous till sale
    currency: str
    total_cents: int | None
    lines: list[ReceiptLine]
    whole: bool = False
    shared: _Receipt | None = None
    store_id: int | None = None
    store_channel: str | None = None  # `channel`, or the store's own when the row gives none
    customer_id: int | None = None
    dropped: str | None = None  # why it is not kept: anonymous, erased, restricted
    unchanged: bool = False


# A checked receipt as the file importer keeps it between its two passes: only what `write` needs, in plain values
# that pickle several times faster than the rows they come from: receipt number, customer id, store id, channel,
# purchased at, currency, why it is dropped (or None), whether it is unchanged, and its lines.
PackedReceipt = tuple[str, int | None, int | None, str | None, datetime, str, str | None, bool, list[ReceiptLine]]


class Purchases:
    """The purchases kind; one instance per import run remembers each receipt's digest to spot duplicates."""

    name: ClassVar[str] = "purchases"
    fields: ClassVar[tuple[FieldSpec, ...]] = (
        FieldSpec("receipt_number", required=True, help="The till's or web shop's receipt number (unique)."),
        FieldSpec("store_code", required=True, help="The store's code, as imported with `portal import stores`."),
        FieldSpec("purchased_at", required=True, help="Date and time of the sale."),
        FieldSpec("channel", help="in_store, web or click_and_collect; the store's own when empty."),
        *CUSTOMER_FIELD_SPECS,
        FieldSpec("sku", required=True, help="The article's code (one row per receipt line)."),
        FieldSpec("label", help="The article's name as printed on the receipt."),
        FieldSpec("quantity", required=True, help="How many were bought: a whole number, 1 or more."),
        FieldSpec("unit_price", required=True, help="Price of one article, tax included."),
        FieldSpec("line_total", help="quantity × unit_price, when the export gives it (checked)."),
        FieldSpec("total", help="The receipt's total, when the export gives it (checked against its lines)."),
        FieldSpec("currency", help="ISO 4217 code; EUR when empty."),
        FieldSpec("lines", help="JSON only: the receipt's lines, each with sku, label, quantity, unit_price."),
    )

    def __init__(self, context: ImportContext) -> None:
        self.context = context
        # receipt number → digest of its content (8 bytes) and first line: spots a changed duplicate, small for a
        # big file.
        self._seen: dict[str, int] = {}
        self._stores: dict[str, tuple[int, str]] | None = None
        self._last_receipt: tuple[tuple[object, ...], _Receipt] | None = None
        # An amount as most exports write it ("12.50", or "12,50" with a decimal comma); read_cents reads the rest.
        self._plain_amount = PLAIN_AMOUNT[context.formats.decimal_comma]
        self._articles: dict[tuple[str, Any], tuple[str, str]] = {}  # (sku, label) as written → as kept
        self._amounts: dict[str, int] = {}  # a plainly written price → its cents

    # --- parse: one row, no database -------------------------------------------------------------------------

    def parse(self, fields: Mapping[str, Any], line: int) -> PurchaseRow:
        last = self._last_receipt
        if last is not None and "lines" not in fields and last[0] == tuple(map(fields.get, RECEIPT_COLUMNS)):
            # Most rows: another plain line of the receipt the previous row began, its fields in the same text.
            plain = self._plain_line(fields)
            if plain is not None:
                return PurchaseRow(line, *last[1], lines=[plain], shared=last[1])
        errors: list[RowError] = []
        formats = self.context.formats
        reader = _Reader(fields, self.context.constants, formats, errors)
        nested = fields.get("lines")
        whole = isinstance(nested, list)
        # The lines of a receipt repeat its fields: read them once per receipt, not once per line.
        key = tuple(map(fields.get, RECEIPT_COLUMNS))
        receipt = self._last_receipt[1] if self._last_receipt and self._last_receipt[0] == key else None
        if receipt is None:
            receipt = self._receipt(reader)
            if receipt is not None and not whole:
                self._last_receipt = (key, receipt)
        if whole:
            lines = [
                self._line(_Reader(item, {}, formats, errors, prefix=f"lines.{i}.")) for i, item in enumerate(nested)
            ]
            if not nested:
                reader.fail("lines", gettext("A receipt needs at least one line."))
        elif nested is not None:
            reader.fail("lines", gettext("Expected a list of lines."))
            lines = []
        else:
            lines = [self._plain_line(fields) or self._line(reader)]
        if errors or receipt is None:
            raise RowInvalid(errors)
        return PurchaseRow(
            line,
            *receipt,
            lines=[line for line in lines if line is not None],
            whole=whole,
            shared=None if whole else receipt,
        )

    def _receipt(self, reader: _Reader) -> _Receipt | None:
        """The receipt-level fields of a row, or None when one is wrong (each problem is in `reader.errors`)."""
        failed = len(reader.errors)
        receipt_number = reader.text("receipt_number", 32, required=True)
        store_code = reader.text("store_code", 16, required=True)
        purchased_at = self._moment(reader)
        channel = reader.text("channel", 24)
        if channel is not None and channel not in CHANNELS:
            reader.fail(
                "channel", gettext("“%(value)s” is not one of %(choices)s.", value=channel, choices=", ".join(CHANNELS))
            )
        customer = _customer(reader)
        currency = (reader.text("currency", 8) or "EUR").upper()
        if not CURRENCY.fullmatch(currency):
            reader.fail("currency", gettext("“%(value)s” is not a currency code like EUR.", value=currency))
        total = reader.cents("total")
        if total is not None and total < 0:
            reader.fail("total", gettext("An amount cannot be negative here."))
        if len(reader.errors) > failed:
            return None
        assert receipt_number is not None and store_code is not None and purchased_at is not None
        return _Receipt(receipt_number, store_code, purchased_at, channel, customer, currency, total)

    def _moment(self, reader: _Reader) -> datetime | None:
        value = reader.value("purchased_at")
        if value is None:
            reader.missing("purchased_at")
            return None
        if isinstance(value, datetime) and value.tzinfo is not None:
            moment = value
        else:
            try:
                moment = read_datetime(str(value), self.context.formats)
            except ValueError as invalid:
                reader.fail("purchased_at", str(invalid))
                return None
        if moment > self.context.now + CLOCK_SKEW:
            reader.fail("purchased_at", gettext("This purchase is dated in the future."))
            return None
        return moment

    def _plain_line(self, fields: Mapping[str, Any]) -> ReceiptLine | None:
        """The line of a CSV row whose values are all plainly right, read without the reader's detours (a million
        rows a run); None for anything else, which `_line` then reads and explains.

        A file names a few thousand articles at a few thousand prices a million times: each article and each price
        is checked once, then found in a bounded memo.
        """
        sku, label, quantity, price = map(fields.get, LINE_COLUMNS)
        if (
            type(sku) is not str
            or type(price) is not str
            or type(quantity) is not str
            or (label is not None and type(label) is not str)
            or fields.get("line_total")
        ):
            return None
        count = PLAIN_QUANTITIES.get(quantity)
        article = self._articles.get((sku, label))
        if article is None:
            article = _plain_article(sku, label)
            if article is None:
                return None
            if len(self._articles) < MEMO_SIZE:
                self._articles[(sku, label)] = article
        cents = self._amounts.get(price)
        if cents is None:
            amount = self._plain_amount.fullmatch(price)
            if amount is None or len(amount.group(1)) > 9:
                return None
            units, decimals = amount.groups()
            cents = int(units) * 100 + int((decimals or "0").ljust(2, "0"))
            if len(self._amounts) < MEMO_SIZE:
                self._amounts[price] = cents
        if count is None:
            return None
        return article[0], article[1], count, cents

    def _line(self, reader: _Reader) -> ReceiptLine | None:
        failed = len(reader.errors)
        sku = reader.text("sku", 32, required=True)
        label = reader.text("label", 200) or sku
        quantity = reader.whole_number("quantity", required=True)
        if quantity is not None and quantity < 1:
            reader.fail("quantity", gettext("The quantity must be 1 or more (returns are not imported)."))
        unit_price = reader.cents("unit_price", required=True)
        if unit_price is not None and unit_price < 0:
            reader.fail("unit_price", gettext("An amount cannot be negative here."))
        line_total = reader.cents("line_total")
        if len(reader.errors) > failed:
            return None
        assert sku is not None and label is not None and quantity is not None and unit_price is not None
        if quantity * unit_price >= MAX_LINE_CENTS:
            reader.fail("quantity", gettext("This line's total is too large."))
            return None
        if line_total is not None and line_total != quantity * unit_price:
            reader.fail(
                "line_total",
                gettext(
                    "The line total %(total)s is not the quantity times the unit price (%(expected)s).",
                    total=format_money(line_total),
                    expected=format_money(quantity * unit_price),
                ),
            )
            return None
        return sku, label, quantity, unit_price

    def group_key(self, record: PurchaseRow) -> str | None:
        return record.receipt_number

    # --- check: the rules that need the rows before and the database, read-only ---------------------------------

    def check(self, session: Session, batch: Sequence[PurchaseRow]) -> dict[int, list[RowError]]:
        problems: dict[int, list[RowError]] = {}
        receipts = list(_receipts(batch))
        for positions in receipts:
            _check_agreement(batch, positions, problems)
        stores = self._stores_named(session, {batch[p[0]].store_code for p in receipts})
        index = CustomerIndex(session, [c for p in receipts if (c := batch[p[0]].customer) is not None])
        for positions in receipts:
            head = batch[positions[0]]
            store = stores.get(head.store_code)
            if store is None:
                message = gettext(
                    "No store has the code “%(code)s”: import the stores first (portal import stores).",
                    code=head.store_code,
                )
                problems.setdefault(positions[0], []).append(RowError("store_code", message))
            else:
                head.store_id = store[0]
                head.store_channel = head.channel or ("web" if store[1] == STORE_KIND_WEB else "in_store")
            self._find_customer(session, index, head, positions[0], problems)
        recorded = self._recorded_digests(session, [batch[p[0]].receipt_number for p in receipts])
        for positions in receipts:
            self._check_duplicate(batch, positions, recorded, problems)
        return problems

    def _stores_named(self, session: Session, codes: set[str]) -> dict[str, tuple[int, str]]:
        """Stores are few: read all once per run, and again only for a code not seen (added since)."""
        if self._stores is None or not codes <= self._stores.keys():
            rows = as_connection(session).execute(select(Store.id, Store.code, Store.kind))
            self._stores = {code: (store_id, kind) for store_id, code, kind in rows}
        return self._stores

    def _find_customer(
        self,
        session: Session,
        index: CustomerIndex,
        head: PurchaseRow,
        position: int,
        problems: dict[int, list[RowError]],
    ) -> None:
        head.dropped, head.customer_id = None, None
        if head.customer is None:
            head.dropped = "anonymous"  # a till sale without a card: nobody's personal data
            return
        found = index.find(head.customer)
        if found is not None:
            head.customer_id = found.id
            if found.restricted:
                head.dropped = "restricted"  # Art. 18: kept as it is, not enriched
            return
        if is_erased(session, self.context.settings, head.customer):
            head.dropped = "erased"  # erased at their request: never re-created
            return
        field = "customer_id" if head.customer.retailer_id else "email" if head.customer.email else "loyalty_number"
        message = gettext("No customer matches: import the customers first (portal import customers).")
        problems.setdefault(position, []).append(RowError(field, message))

    def _recorded_digests(self, session: Session, numbers: list[str]) -> dict[str, int]:
        """The digests of the receipts of this batch that are already recorded, in two queries."""
        ids = existing_receipts(session, numbers)
        if not ids:
            return {}
        connection = as_connection(session)
        codes = {store_id: code for code, (store_id, _kind) in (self._stores or {}).items()}
        lines: dict[int, list[ReceiptLine]] = {purchase_id: [] for purchase_id in ids.values()}
        for row in connection.execute(
            select(
                PurchaseLine.purchase_id,
                PurchaseLine.sku,
                PurchaseLine.label,
                PurchaseLine.quantity,
                PurchaseLine.unit_price_cents,
            ).where(PurchaseLine.purchase_id.in_(sorted(lines)))
        ):
            lines[row[0]].append((row[1], row[2], row[3], row[4]))
        digests = {}
        for row in connection.execute(
            select(
                Purchase.id,
                Purchase.receipt_number,
                Purchase.store_id,
                Purchase.purchased_at,
                Purchase.channel,
                Purchase.currency,
            ).where(Purchase.id.in_(sorted(lines)))
        ):
            store_code = codes.get(row.store_id, "")
            digests[row.receipt_number] = _digest(
                store_code, row.purchased_at, row.channel, row.currency, lines[row.id]
            )
        return digests

    def _check_duplicate(
        self,
        batch: Sequence[PurchaseRow],
        positions: list[int],
        recorded: Mapping[str, int],
        problems: dict[int, list[RowError]],
    ) -> None:
        head = batch[positions[0]]
        if any(p in problems for p in positions):
            return
        lines = [line for p in positions for line in batch[p].lines]
        digest = _digest(head.store_code, head.purchased_at, head.store_channel or "", head.currency, lines)
        number = head.receipt_number
        head.unchanged = False
        # The first occurrence's line rides along (one int: small for a big file), so checking the same rows twice
        # finds no duplicate.
        occurrence = digest << LINE_BITS | head.line
        seen = self._seen.get(number)
        if seen is not None and seen & LINE_MASK != head.line:
            if seen >> LINE_BITS != digest:
                message = gettext("Receipt %(number)s appears earlier in the file with other content.", number=number)
                problems[positions[0]] = [RowError("receipt_number", message)]
            else:
                head.unchanged = True
            return
        if number in recorded:
            if recorded[number] != digest:
                message = gettext(
                    "Receipt %(number)s is already recorded with other content; it is not replaced.", number=number
                )
                problems[positions[0]] = [RowError("receipt_number", message)]
                return
            head.unchanged = True
        self._seen[number] = occurrence

    # --- write: in the caller's transaction ----------------------------------------------------------------------

    def write(self, session: Session, batch: Sequence[PurchaseRow], tally: Tally) -> None:
        self.write_packed(session, self.pack(batch), tally)

    def pack(self, batch: Sequence[PurchaseRow]) -> list[PackedReceipt]:
        """The checked batch as the file importer keeps it between its passes: one PackedReceipt per receipt."""
        packed = []
        for positions in _receipts(batch):
            head = batch[positions[0]]
            lines = head.lines if len(positions) == 1 else [x for p in positions for x in batch[p].lines]
            packed.append(
                (
                    head.receipt_number,
                    head.customer_id,
                    head.store_id,
                    head.store_channel,
                    head.purchased_at,
                    head.currency,
                    head.dropped,
                    head.unchanged,
                    lines,
                )
            )
        return packed

    def write_packed(self, session: Session, packed: Sequence[PackedReceipt], tally: Tally) -> None:
        # Recorded since `check` (by a concurrent sender): same receipt number, content already compared.
        recorded = existing_receipts(session, [r[0] for r in packed if not r[6] and not r[7]])
        new: dict[str, NewPurchase] = {}
        for number, customer_id, store_id, channel, moment, currency, dropped, unchanged, lines in packed:
            if dropped:
                tally.count("dropped", reason=dropped)
            elif unchanged or number in recorded or number in new:
                tally.count("unchanged")
            else:
                assert store_id is not None and channel is not None  # resolved by check
                new[number] = NewPurchase(customer_id, store_id, channel, moment, number, lines, currency)
        record_purchases(session, list(new.values()), timezone=self.context.timezone)
        if new:
            tally.count("created", len(new))


def _receipts(batch: Sequence[PurchaseRow]) -> Iterator[list[int]]:
    """The positions of each receipt's rows: consecutive lines with one receipt number, or one whole receipt."""
    current: list[int] = []
    for position, row in enumerate(batch):
        if current and (row.whole or batch[current[0]].whole or row.receipt_number != batch[current[0]].receipt_number):
            yield current
            current = []
        current.append(position)
    if current:
        yield current


def _check_agreement(batch: Sequence[PurchaseRow], positions: list[int], problems: dict[int, list[RowError]]) -> None:
    """Every line repeats the receipt's fields identically, and the receipt's total is the sum of its lines."""
    head = batch[positions[0]]
    for position in positions[1:]:
        row = batch[position]
        if row.shared is not None and row.shared is head.shared:
            continue  # the same text as the first line's: they agree
        for name in RECEIPT_FIELDS:
            value = getattr(row, name)
            if value is None and name in OPTIONAL_RECEIPT_FIELDS:
                continue  # some exports print the customer or the total on one line only
            if getattr(head, name) is None and name in OPTIONAL_RECEIPT_FIELDS:
                setattr(head, name, value)
            elif value != getattr(head, name):
                message = gettext(
                    "This line of receipt %(number)s differs from its first line (line %(line)s) in this field.",
                    number=head.receipt_number,
                    line=head.line,
                )
                problems.setdefault(position, []).append(RowError(_SHOWN_FIELD.get(name, name), message))
    if head.total_cents is not None and not problems.keys() & set(positions):
        lines_sum = sum(quantity * price for p in positions for _sku, _label, quantity, price in batch[p].lines)
        if lines_sum != head.total_cents:
            message = gettext(
                "The receipt total %(total)s is not the sum of its lines (%(sum)s).",
                total=format_money(head.total_cents, head.currency),
                sum=format_money(lines_sum, head.currency),
            )
            problems.setdefault(positions[0], []).append(RowError("total", message))


def _digest(store_code: str, moment: datetime, channel: str, currency: str, lines: Sequence[ReceiptLine]) -> int:
    """What makes two copies of a receipt the same, in 64 bits. The customer is left out: a merge or an erasure
    rightly changes whom a recorded receipt is linked to.

    Python's hash of the content: digests are only compared within one run (with the file's receipts before and
    those recorded, digested here too), and it costs a fraction of a cryptographic digest of the same text. Two
    moments that are the same instant hash alike whatever their time zone.
    """
    return hash((store_code, moment, channel, currency, tuple(sorted(lines)))) & DIGEST_MASK


def _plain_article(sku: str, label: object) -> tuple[str, str] | None:
    """An article's code and label as kept, when both are plainly right (None otherwise); no label is its code."""
    if not (0 < len(sku) <= 32) or CONTROL_CHARACTERS.search(sku):
        return None
    if label is None or label == "":
        return sku, sku
    if type(label) is not str or len(label) > 200 or CONTROL_CHARACTERS.search(label):
        return None
    return sku, label


def _customer(reader: _Reader) -> CustomerRef | None:
    retailer_id = reader.text("customer_id", 64)
    email = reader.text("email", 254)
    loyalty_number = reader.text("loyalty_number", 32)
    if not (retailer_id or email or loyalty_number):
        return None
    return CustomerRef(retailer_id=retailer_id, email=email, loyalty_number=loyalty_number)


class _Reader:
    """Reads one row's fields (text from CSV; also numbers from JSON) and collects each problem as a RowError."""

    def __init__(
        self,
        fields: Mapping[str, Any],
        constants: Mapping[str, str],
        formats: Formats,
        errors: list[RowError],
        prefix: str = "",
    ) -> None:
        self.fields = fields if isinstance(fields, Mapping) else {}
        self.constants = constants
        self.formats = formats
        self.errors = errors
        self.prefix = prefix
        if not isinstance(fields, Mapping):
            self.fail("", gettext("Expected a JSON object."))

    def value(self, name: str) -> Any:
        value = self.fields.get(name)
        if value is None or value == "":
            value = self.constants.get(name) or None
        return value

    def fail(self, name: str, message: str) -> None:
        self.errors.append(RowError((self.prefix + name).rstrip(".") or None, message))

    def missing(self, name: str) -> None:
        self.fail(name, gettext("This field is required."))

    def text(self, name: str, limit: int, *, required: bool = False) -> str | None:
        value = self.fields.get(name)
        if type(value) is not str or not value:  # the common case first: every CSV value is text
            value = self.value(name)
            if value is None:
                if required:
                    self.missing(name)
                return None
            if isinstance(value, bool) or not isinstance(value, str | int):
                self.fail(name, gettext("Expected text."))
                return None
        text = str(value).strip()
        if len(text) > limit:
            self.fail(name, gettext("This value is longer than %(limit)s characters.", limit=limit))
            return None
        if CONTROL_CHARACTERS.search(text):
            self.fail(name, gettext("This value contains control characters."))
            return None
        return text or None

    def whole_number(self, name: str, *, required: bool = False) -> int | None:
        value = self.value(name)
        if value is None:
            if required:
                self.missing(name)
            return None
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**31:
            return value
        try:
            return read_int(str(value))
        except ValueError as invalid:
            self.fail(name, str(invalid))
            return None

    def cents(self, name: str, *, required: bool = False) -> int | None:
        value = self.value(name)
        if value is None:
            if required:
                self.missing(name)
            return None
        try:
            if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
                # A JSON number is in currency units; str() of a float is its shortest exact spelling.
                return read_cents(str(Decimal(str(value))), Formats())
            return read_cents(str(value), self.formats)
        except ValueError as invalid:
            self.fail(name, str(invalid))
            return None
