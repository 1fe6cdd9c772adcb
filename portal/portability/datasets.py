"""What the archive holds, dataset by dataset: stable field names, their meaning, and the rows, read as a stream.

Each dataset is written twice (data/<name>.json and data/<name>.csv) with the same fields in the same order, and
described by schema/<name>.schema.json. Rows come from the database in chunks (`yield_per`: a server-side cursor
on PostgreSQL, SQLite's own lazy cursor), so a customer with a million page views costs no more memory than one
with ten. Values are formatted once here for both files: instants in ISO-8601 with the offset of the configured
time zone (Europe/Paris), amounts as decimal strings beside their currency, booleans as JSON booleans.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import BindParameter, Connection, Select, bindparam, null, select

from portal.i18n import lazy_gettext
from portal.labels import note_text
from portal.models import (
    ConsentEvent,
    ConsentWording,
    Customer,
    PageView,
    PrivacyRequest,
    ProfileChange,
    Purchase,
    PurchaseLine,
    RequestEvent,
    Store,
)

# Rows fetched per round trip: large enough that the cursor is not the bottleneck, small enough to stay flat.
YIELD_PER = 2000

Row = tuple[Any, ...]


@dataclasses.dataclass(frozen=True)
class Subject:
    """Whose data, and in which time zone instants are written."""

    customer_id: int
    timezone: ZoneInfo
    locale: str = "fr"  # the archive's language, for the portal's own texts (rows stream outside any locale block)


@dataclasses.dataclass(frozen=True)
class Field:
    name: str
    description: str  # lazy_gettext: translated where it is shown (README.txt)


@dataclasses.dataclass(frozen=True)
class Dataset:
    name: str  # data/<name>.json, data/<name>.csv, schema/<name>.schema.json
    title: str  # lazy_gettext
    fields: tuple[Field, ...]
    rows: Callable[[Connection, Subject], Iterator[Row]]
    single: bool = False  # the profile: one JSON object rather than a list

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(field.name for field in self.fields)


# --- Formatting ---------------------------------------------------------------------------------------------------


def instant(value: datetime | None, timezone: ZoneInfo) -> str | None:
    """ISO-8601 with the local offset, e.g. 2026-03-29T10:15:00+02:00 (no microseconds: nobody needs them)."""
    return None if value is None else value.astimezone(timezone).isoformat(timespec="seconds")


def amount(cents: int | None) -> str | None:
    """An amount in cents as a decimal string: 2490 → "24.90" (never a float, which would round)."""
    if cents is None:
        return None
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(int(cents)), 100)
    return f"{sign}{whole}.{part:02d}"


def day(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def party(actor: str | None) -> str:
    """Who acted, as the customer may know it: themselves, the retailer's staff, or the system (no staff ids)."""
    if not actor:
        return "system"
    if actor.startswith("customer"):
        return "customer"
    return "staff" if actor.startswith("staff") else "system"


def _stream(connection: Connection, statement: Select, subject: Subject) -> Iterator[Row]:
    result = connection.execution_options(yield_per=YIELD_PER).execute(statement, {"customer_id": subject.customer_id})
    try:
        yield from result
    finally:  # closed early when the client goes away: the server-side cursor must go before the connection does
        result.close()


_CUSTOMER_ID: BindParameter[int] = bindparam("customer_id")
_C = Customer.__table__.c
_P = Purchase.__table__.c
_L = PurchaseLine.__table__.c
_S = Store.__table__.c
_V = PageView.__table__.c
_E = ConsentEvent.__table__.c
_W = ConsentWording.__table__.c
_R = PrivacyRequest.__table__.c
_RE = RequestEvent.__table__.c
_PC = ProfileChange.__table__.c


# --- Profile --------------------------------------------------------------------------------------------------------

_PROFILE = select(
    _C.id,
    # The retailer's own customer number, where its systems gave one (column added with the retailer API).
    _C.get("retailer_ref", null().label("retailer_ref")),
    _C.email,
    _C.first_name,
    _C.last_name,
    _C.phone,
    _C.address_line1,
    _C.address_line2,
    _C.postal_code,
    _C.city,
    _C.country,
    _C.birth_date,
    _C.loyalty_number,
    _C.preferred_language,
    _C.source,
    _C.created_at,
    _C.updated_at,
    _C.restricted_at,
).where(_C.id == _CUSTOMER_ID)


def _profile(connection: Connection, subject: Subject) -> Iterator[Row]:
    row = connection.execute(_PROFILE, {"customer_id": subject.customer_id}).first()
    if row is None:
        return
    tz = subject.timezone
    (id_, ref, email, first, last, phone, line1, line2, postcode, city, country, born, loyalty, lang, source) = row[:15]
    created, updated, restricted = row[15:]
    yield (
        id_,
        ref,
        email,
        first,
        last,
        phone,
        line1,
        line2,
        postcode,
        city,
        country,
        day(born),
        loyalty,
        lang,
        source,
        instant(created, tz),
        instant(updated, tz),
        instant(restricted, tz),
    )


PROFILE = Dataset(
    name="profile",
    title=lazy_gettext("Profile"),
    single=True,
    rows=_profile,
    fields=(
        Field("customer_id", lazy_gettext("Your number in this portal.")),
        Field("retailer_customer_id", lazy_gettext("Your customer number in our systems, when we have one.")),
        Field("email", lazy_gettext("Your email address.")),
        Field("first_name", lazy_gettext("Your first name.")),
        Field("last_name", lazy_gettext("Your last name.")),
        Field("phone", lazy_gettext("Your phone number, in international format.")),
        Field("address_line1", lazy_gettext("Street address.")),
        Field("address_line2", lazy_gettext("Address, second line.")),
        Field("postal_code", lazy_gettext("Postcode.")),
        Field("city", lazy_gettext("Town or city.")),
        Field("country", lazy_gettext("Country, as a two-letter ISO 3166 code (FR, GB…).")),
        Field("birth_date", lazy_gettext("Date of birth (YYYY-MM-DD).")),
        Field("loyalty_number", lazy_gettext("Loyalty card number.")),
        Field("preferred_language", lazy_gettext("The language we write to you in (fr, en).")),
        Field("source", lazy_gettext("Where your customer record was created (store, web, import, support).")),
        Field("created_at", lazy_gettext("When your customer record was created.")),
        Field("updated_at", lazy_gettext("When your profile last changed.")),
        Field("restricted_at", lazy_gettext("Since when the use of your data is restricted at your request, if so.")),
    ),
)


# --- Purchases and their lines -------------------------------------------------------------------------------------

_PURCHASES = (
    select(
        _P.id,
        _P.receipt_number,
        _P.purchased_at,
        _P.channel,
        _S.code,
        _S.name,
        _S.city,
        _S.kind,
        _P.total_cents,
        _P.currency,
    )
    .select_from(Purchase.__table__.join(Store.__table__, _S.id == _P.store_id))
    .where(_P.customer_id == _CUSTOMER_ID)
    .order_by(_P.purchased_at, _P.id)
)


def _purchases(connection: Connection, subject: Subject) -> Iterator[Row]:
    tz = subject.timezone
    for id_, receipt, at, channel, code, name, city, kind, total, currency in _stream(connection, _PURCHASES, subject):
        yield (id_, receipt, instant(at, tz), channel, code, name, city or None, kind, amount(total), currency)


PURCHASES = Dataset(
    name="purchases",
    title=lazy_gettext("Purchases"),
    rows=_purchases,
    fields=(
        Field("purchase_id", lazy_gettext("Number of the purchase; the lines of the purchase refer to it.")),
        Field("receipt_number", lazy_gettext("Number printed on the receipt or invoice.")),
        Field("purchased_at", lazy_gettext("When you bought.")),
        Field("channel", lazy_gettext("How you bought: in_store, web (delivered) or click_and_collect.")),
        Field("store_code", lazy_gettext("Code of the store, or WEB for the web shop.")),
        Field("store_name", lazy_gettext("Name of the store.")),
        Field("store_city", lazy_gettext("Town of the store (empty for the web shop).")),
        Field("store_kind", lazy_gettext("store (a shop) or web (the web shop).")),
        Field("total", lazy_gettext("Amount paid, as a decimal number with a dot (24.90).")),
        Field("currency", lazy_gettext("Currency of the amounts, as an ISO 4217 code (EUR).")),
    ),
)

_LINES = (
    select(
        _P.id,
        _P.receipt_number,
        _L.id,
        _L.sku,
        _L.label,
        _L.quantity,
        _L.unit_price_cents,
        _P.currency,
    )
    .select_from(PurchaseLine.__table__.join(Purchase.__table__, _P.id == _L.purchase_id))
    .where(_P.customer_id == _CUSTOMER_ID)
    .order_by(_P.purchased_at, _P.id, _L.id)
)


def _lines(connection: Connection, subject: Subject) -> Iterator[Row]:
    for purchase_id, receipt, line_id, sku, label, quantity, unit, currency in _stream(connection, _LINES, subject):
        yield (purchase_id, receipt, line_id, sku, label, quantity, amount(unit), amount(quantity * unit), currency)


PURCHASE_LINES = Dataset(
    name="purchase_lines",
    title=lazy_gettext("Purchase lines"),
    rows=_lines,
    fields=(
        Field("purchase_id", lazy_gettext("The purchase this line belongs to (purchase_id in purchases).")),
        Field("receipt_number", lazy_gettext("Number printed on the receipt or invoice.")),
        Field("line_id", lazy_gettext("Number of the line.")),
        Field("sku", lazy_gettext("Our reference of the item.")),
        Field("label", lazy_gettext("Name of the item.")),
        Field("quantity", lazy_gettext("How many you bought.")),
        Field("unit_price", lazy_gettext("Price of one item, as a decimal number with a dot.")),
        Field("line_total", lazy_gettext("Quantity times unit price, as a decimal number with a dot.")),
        Field("currency", lazy_gettext("Currency of the amounts, as an ISO 4217 code (EUR).")),
    ),
)


# --- Browsing ---------------------------------------------------------------------------------------------------

_VIEWS = select(_V.viewed_at, _V.url, _V.title).where(_V.customer_id == _CUSTOMER_ID).order_by(_V.viewed_at, _V.id)


def _browsing(connection: Connection, subject: Subject) -> Iterator[Row]:
    tz = subject.timezone
    for viewed_at, url, title in _stream(connection, _VIEWS, subject):
        yield (instant(viewed_at, tz), url, title)


BROWSING = Dataset(
    name="browsing",
    title=lazy_gettext("Pages viewed on our website"),
    rows=_browsing,
    fields=(
        Field("viewed_at", lazy_gettext("When you viewed the page.")),
        Field("url", lazy_gettext("Address of the page.")),
        Field("title", lazy_gettext("Title of the page, when known.")),
    ),
)


# --- Consents ----------------------------------------------------------------------------------------------------

_CONSENTS = (
    select(
        _E.occurred_at,
        _E.purpose,
        _E.granted,
        _E.channel,
        _E.actor,
        _E.policy_version,
        _E.wording_hash,
        _W.locale,
        _W.text,
    )
    .select_from(ConsentEvent.__table__.outerjoin(ConsentWording.__table__, _W.hash == _E.wording_hash))
    .where(_E.customer_id == _CUSTOMER_ID)
    .order_by(_E.occurred_at, _E.id)
)


def _consents(connection: Connection, subject: Subject) -> Iterator[Row]:
    tz = subject.timezone
    for at, purpose, granted, channel, actor, version, wording_hash, locale, text in _stream(
        connection, _CONSENTS, subject
    ):
        yield (instant(at, tz), purpose, bool(granted), channel, party(actor), version, wording_hash, locale, text)


CONSENT_EVENTS = Dataset(
    name="consent_events",
    title=lazy_gettext("Consents and their history"),
    rows=_consents,
    fields=(
        Field("occurred_at", lazy_gettext("When you gave or withdrew your consent.")),
        Field("purpose", lazy_gettext("Code of the use of your data (see processing.json).")),
        Field("granted", lazy_gettext("true when you gave your consent, false when you withdrew or refused it.")),
        Field("channel", lazy_gettext("Where: web, store, support, api (our systems) or import.")),
        Field("by", lazy_gettext("Who recorded it: customer (you), staff or system.")),
        Field("policy_version", lazy_gettext("Version of the privacy policy in force.")),
        Field("wording_hash", lazy_gettext("SHA-256 of the exact text you were shown.")),
        Field("wording_language", lazy_gettext("Language of that text.")),
        Field("wording", lazy_gettext("The exact text you were shown.")),
    ),
)


# --- Requests -------------------------------------------------------------------------------------------------------

_REQUESTS = (
    select(
        _R.reference,
        _R.type,
        _R.status,
        _R.channel,
        _R.received_at,
        _R.due_at,
        _R.extended_due_at,
        _R.extension_reason,
        _R.closed_at,
        _R.outcome,
        _R.details,
    )
    .where(_R.customer_id == _CUSTOMER_ID)
    .order_by(_R.received_at, _R.id)
)


def _requests(connection: Connection, subject: Subject) -> Iterator[Row]:
    tz = subject.timezone
    for reference, type_, status, channel, received, due, extended, reason, closed, outcome, details in _stream(
        connection, _REQUESTS, subject
    ):
        yield (
            reference,
            type_,
            status,
            channel,
            instant(received, tz),
            instant(due, tz),
            instant(extended, tz),
            reason,
            instant(closed, tz),
            note_text(outcome, subject.locale) or None,  # the portal's own texts in the archive's language
            details or None,
        )


REQUESTS = Dataset(
    name="requests",
    title=lazy_gettext("Your requests"),
    rows=_requests,
    fields=(
        Field("reference", lazy_gettext("Reference of the request.")),
        Field(
            "type",
            lazy_gettext("access, rectification, erasure, portability, objection, restriction or other."),
        ),
        Field(
            "status",
            lazy_gettext("received, in_progress, awaiting_customer, completed, rejected or cancelled."),
        ),
        Field("channel", lazy_gettext("How it reached us: web, store, support, email, phone or post.")),
        Field("received_at", lazy_gettext("When we received it.")),
        Field("due_at", lazy_gettext("When the answer is due (one month after receipt).")),
        Field("extended_due_at", lazy_gettext("The later due date, when the deadline was extended.")),
        Field("extension_reason", lazy_gettext("Why the deadline was extended.")),
        Field("closed_at", lazy_gettext("When it was completed, refused or cancelled.")),
        Field("outcome", lazy_gettext("What was done, or why it was refused.")),
        Field("details", lazy_gettext("What you asked, as you asked it (JSON; in the CSV file, as JSON text).")),
    ),
)

_REQUEST_EVENTS = (
    select(_R.reference, _RE.occurred_at, _RE.kind, _RE.actor, _RE.note)
    .select_from(RequestEvent.__table__.join(PrivacyRequest.__table__, _R.id == _RE.request_id))
    .where(_R.customer_id == _CUSTOMER_ID, _RE.visible_to_customer.is_(True))
    .order_by(_R.received_at, _R.id, _RE.occurred_at, _RE.id)
)


def _request_events(connection: Connection, subject: Subject) -> Iterator[Row]:
    tz = subject.timezone
    for reference, at, kind, actor, note in _stream(connection, _REQUEST_EVENTS, subject):
        yield (reference, instant(at, tz), kind, party(actor), note_text(note, subject.locale) or None)


REQUEST_EVENTS = Dataset(
    name="request_events",
    title=lazy_gettext("What happened to your requests"),
    rows=_request_events,
    fields=(
        Field("reference", lazy_gettext("Reference of the request (reference in requests).")),
        Field("occurred_at", lazy_gettext("When it happened.")),
        Field("kind", lazy_gettext("What happened: received, status_changed, message, extended, completed…")),
        Field("by", lazy_gettext("Who acted: customer (you), staff or system.")),
        Field("note", lazy_gettext("The message or explanation written, if any.")),
    ),
)


# --- Rectifications ------------------------------------------------------------------------------------------------

_CHANGES = (
    select(_PC.changed_at, _PC.field, _PC.old_value, _PC.new_value, _PC.channel, _PC.actor)
    .where(_PC.customer_id == _CUSTOMER_ID)
    .order_by(_PC.changed_at, _PC.id)
)


def _profile_changes(connection: Connection, subject: Subject) -> Iterator[Row]:
    tz = subject.timezone
    for at, field, old, new, channel, actor in _stream(connection, _CHANGES, subject):
        yield (instant(at, tz), field, old, new, channel, party(actor))


PROFILE_CHANGES = Dataset(
    name="profile_changes",
    title=lazy_gettext("Changes to your profile"),
    rows=_profile_changes,
    fields=(
        Field("changed_at", lazy_gettext("When the change was made.")),
        Field("field", lazy_gettext("Which information changed (field name as in profile).")),
        Field("old_value", lazy_gettext("The value before.")),
        Field("new_value", lazy_gettext("The value after.")),
        Field("channel", lazy_gettext("Where: web, store, support, api or import.")),
        Field("by", lazy_gettext("Who made it: customer (you), staff or system.")),
    ),
)


DATASETS: tuple[Dataset, ...] = (
    PROFILE,
    PURCHASES,
    PURCHASE_LINES,
    BROWSING,
    CONSENT_EVENTS,
    REQUESTS,
    REQUEST_EVENTS,
    PROFILE_CHANGES,
)
