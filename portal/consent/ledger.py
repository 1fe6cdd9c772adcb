"""The consent ledger (GDPR Art. 7): append-only events, one per change; a purpose's state is its latest event.

Consent is given or withdrawn per purpose, never pre-ticked: a purpose the customer never answered is "not
given". Each event records when, through which channel and by whom, the policy version in force and the hash of
the exact wording shown, whose text is kept once in `consent_wording`, so the consent can be proved years later.
Repeated clicks record nothing (only changes are events), and every change is audited and passed on to the
retailer's systems as a `consent.changed` webhook in the same transaction.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    CTE,
    BindParameter,
    ColumnElement,
    Connection,
    ScalarSelect,
    Select,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    true,
    union_all,
)
from sqlmodel import Session

from portal.audit import record_audit
from portal.consent.register import PurposeRegister
from portal.csvfile import csv_line
from portal.db import as_connection, first_row, limit_parameter, per_dialect
from portal.errors import CustomerNotFound
from portal.models import (
    ConsentEvent,
    ConsentWording,
    Customer,
    PageView,
    PageViewDay,
    PageViewTotal,
    StaffUser,
    Store,
    WebsiteVisitor,
)
from portal.outbox.enqueue import queue_webhook

BROWSING_PURPOSE = "browsing_analytics"
CHANNELS = ("web", "store", "support", "api", "import")  # what other systems may report (API, imports)
WEBSITE = "website"  # the consent banner on the retailer's website (record_visitor_consent), never reported


class ConsentRefused(ValueError):
    """Nothing was recorded. `reason` says why, for callers that answer programs (the API), `field` what is wrong."""

    def __init__(self, message: str, *, reason: str = "unknown_purpose", field: str = "purpose") -> None:
        super().__init__(message)
        self.reason = reason  # unknown_purpose | unknown_channel | older_than_latest | unknown_version | in_future
        self.field = field


@dataclasses.dataclass(frozen=True)
class ConsentState:
    """Where a customer's consent to one purpose stands, from the latest event of the ledger."""

    granted: bool = False
    changed_at: datetime | None = None  # when the latest event happened; None: no event at all
    first_granted_at: datetime | None = None
    channel: str | None = None  # how the latest change was made
    # When it stood, oldest first: (given, withdrawn, or None while it still stands). The browsing history draws the
    # days without consent from it; two states are equal by their current answer, whatever their past.

    @property
    def status(self) -> str:
        """granted | withdrawn (given once, then taken back) | never (never given, perhaps refused)."""
        if self.granted:
            return "granted"
        return "withdrawn" if self.first_granted_at else "never"


@dataclasses.dataclass(frozen=True)
class ConsentRecord:
    """One event of the ledger, as shown in the customer's history and the proof of consent."""

    occurred_at: datetime
    purpose: str
    granted: bool
    channel: str
    actor: str
    policy_version: str
    wording_hash: str | None
    store_name: str | None = None  # given or withdrawn on a store tablet: the store of the staff member assisting
    event_id: int | None = None  # the history page's cursor


_EVENTS = ConsentEvent.__table__.c
_WORDINGS = ConsentWording.__table__.c

# Built once: the history pages read the ledger far more often than it changes (bench/README.md).
_CUSTOMER_ID: BindParameter[int] = bindparam("customer_id")
_ANSWERED_PURPOSE = ConsentEvent.__table__.alias("answered_purpose")
_LATEST_OF = ConsentEvent.__table__.alias("latest_of")
_FIRST_GRANT = ConsentEvent.__table__.alias("first_grant")


def _answered_purposes() -> CTE:
    """The purposes the customer (`customer_id`) answered, walked by a recursive "next purpose after this one" (a
    loose index scan, which neither engine does by itself): one seek per purpose, whatever the ledger's length."""
    first = (
        select(_ANSWERED_PURPOSE.c.purpose)
        .where(_ANSWERED_PURPOSE.c.customer_id == _CUSTOMER_ID)
        .order_by(_ANSWERED_PURPOSE.c.purpose)
        .limit(first_row())
        .scalar_subquery()
    )
    answered = select(first.label("purpose")).cte("answered", recursive=True)
    following = (
        select(_ANSWERED_PURPOSE.c.purpose)
        .where(_ANSWERED_PURPOSE.c.customer_id == _CUSTOMER_ID, _ANSWERED_PURPOSE.c.purpose > answered.c.purpose)
        .order_by(_ANSWERED_PURPOSE.c.purpose)
        .limit(first_row())
        .scalar_subquery()
    )
    return answered.union_all(select(following).where(answered.c.purpose.is_not(None)))


def _latest_event(answered: CTE, *columns: ColumnElement[Any]) -> Select:
    """`columns` of the latest event of each purpose in `answered`: one backward seek on
    ix_consent_event_customer_purpose (newest first, the id breaking ties between events at one time)."""
    return (
        select(*columns)
        .where(_LATEST_OF.c.customer_id == _CUSTOMER_ID, _LATEST_OF.c.purpose == answered.c.purpose)
        .order_by(_LATEST_OF.c.occurred_at.desc(), _LATEST_OF.c.id.desc())
        .limit(first_row())
    )


def _first_grant_of(purpose: ColumnElement[str]) -> ScalarSelect[Any]:
    """When the customer first granted `purpose`: one seek on ix_consent_event_first_granted."""
    return (
        select(_FIRST_GRANT.c.occurred_at)
        .where(
            _FIRST_GRANT.c.customer_id == _CUSTOMER_ID,
            _FIRST_GRANT.c.purpose == purpose,
            _FIRST_GRANT.c.granted == true(),
        )
        .order_by(_FIRST_GRANT.c.occurred_at, _FIRST_GRANT.c.id)
        .limit(first_row())
        .scalar_subquery()
    )


def _current_state_statement() -> Select:
    """Each purpose the customer answered, with its latest event and its first grant: O(purposes) index seeks.

    The purposes answered come from `_answered_purposes`; each purpose's latest event is one seek backwards on
    ix_consent_event_customer_purpose,
    its first grant one seek on ix_consent_event_first_granted. No event is read that is not shown, however long the
    ledger (tests/unit/consent/test_consent_state.py proves the plans on both engines).
    """
    answered = _answered_purposes()
    latest_id = _latest_event(answered, _LATEST_OF.c.id).scalar_subquery()
    return select(
        _EVENTS.purpose,
        _EVENTS.granted,
        _EVENTS.occurred_at,
        _EVENTS.channel,
        _first_grant_of(_EVENTS.purpose).label("first_granted_at"),
    ).where(_EVENTS.id.in_(select(latest_id).where(answered.c.purpose.is_not(None))))


def _current_state_lateral() -> Select:
    """The same rows for PostgreSQL, each purpose's latest event read by a LATERAL seek beside its purpose.

    With `id IN (the latest ids)`, PostgreSQL hashed the whole ledger, every customer's events, whenever it held few
    enough events to look cheap (a seq scan of the demo's 906 events: 0.57 ms of execution against 0.11 ms). A
    LATERAL subquery can only be run per purpose; SQLite has no LATERAL and already seeks (`_current_state_statement`).
    """
    answered = _answered_purposes()
    columns = (_LATEST_OF.c.purpose, _LATEST_OF.c.granted, _LATEST_OF.c.occurred_at, _LATEST_OF.c.channel)
    latest = _latest_event(answered, *columns).lateral("latest")
    return (
        select(
            latest.c.purpose,
            latest.c.granted,
            latest.c.occurred_at,
            latest.c.channel,
            _first_grant_of(latest.c.purpose).label("first_granted_at"),
        )
        .select_from(answered.join(latest, true()))
        .where(answered.c.purpose.is_not(None))
    )


# Per database: the statement `current_consents` runs.
CURRENT_STATE = {"sqlite": _current_state_statement(), "postgresql": _current_state_lateral()}


def granted_purposes_count() -> ScalarSelect[int]:
    """How many purposes the customer (bind parameter `customer_id`) consents to now, as a scalar subquery another
    statement can embed (the overview): per purpose answered, one backward seek for its latest event."""
    answered = _answered_purposes()
    latest_granted = _latest_event(answered, _LATEST_OF.c.granted).scalar_subquery()
    return (
        select(func.count())
        .select_from(answered)
        .where(answered.c.purpose.is_not(None), latest_granted == true())
        .scalar_subquery()
    )


# What one event proves: when, which purpose, which way, how, by whom, under which wording.
_EVENT_COLUMNS = (
    _EVENTS.occurred_at,
    _EVENTS.purpose,
    _EVENTS.granted,
    _EVENTS.channel,
    _EVENTS.actor,
    _EVENTS.policy_version,
    _EVENTS.wording_hash,
)
_HISTORY = (
    select(*_EVENT_COLUMNS)
    .where(_EVENTS.customer_id == bindparam("customer_id"))
    .order_by(_EVENTS.occurred_at.desc(), _EVENTS.id.desc())
)
HISTORY_PAGE_SIZE = 50
MAX_EVENT_ID = 2**31 - 1
# A page of the history, newest first: a seek on ix_consent_event_customer_time, limit + 1 rows (is there more?).
_HISTORY_NEWEST = (
    select(*_EVENT_COLUMNS, _EVENTS.id)
    .where(_EVENTS.customer_id == _CUSTOMER_ID)
    .order_by(_EVENTS.occurred_at.desc(), _EVENTS.id.desc())
    .limit(limit_parameter())
)
# Spelled as a range plus a tie-breaker rather than a row value, so both engines seek in the index (as purchases).
_BEFORE_AT: BindParameter[datetime] = bindparam("before_at", type_=_EVENTS.occurred_at.type)
_HISTORY_OLDER = _HISTORY_NEWEST.where(
    _EVENTS.occurred_at <= _BEFORE_AT, or_(_EVENTS.occurred_at < _BEFORE_AT, _EVENTS.id < bindparam("before_id"))
)
# The page's cursor, checked to be one of the customer's own events.
_HISTORY_CURSOR = select(_EVENTS.occurred_at).where(
    _EVENTS.id == bindparam("event_id"), _EVENTS.customer_id == _CUSTOMER_ID
)
_LATEST = (
    select(_EVENTS.granted, _EVENTS.occurred_at)
    .where(_EVENTS.customer_id == bindparam("customer_id"), _EVENTS.purpose == bindparam("purpose"))
    .order_by(_EVENTS.occurred_at.desc(), _EVENTS.id.desc())
    .limit(first_row())
)
_PROOF = (
    select(*_EVENT_COLUMNS, _WORDINGS.locale, _WORDINGS.text)
    .select_from(ConsentEvent.__table__.outerjoin(ConsentWording.__table__, _WORDINGS.hash == _EVENTS.wording_hash))
    .where(_EVENTS.customer_id == bindparam("customer_id"))
    .order_by(_EVENTS.occurred_at, _EVENTS.id)
)
PROOF_COLUMNS = (
    "occurred_at",
    "purpose",
    "granted",
    "channel",
    "actor",
    "policy_version",
    "wording_hash",
    "locale",
    "wording",
)


def current_consents(
    db: Session | Connection, *, customer_id: int, purposes: Iterable[str] = ()
) -> dict[str, ConsentState]:
    """The current state of every purpose the customer ever answered: each purpose's latest event, read in one
    statement whose cost follows the number of purposes, not the length of the ledger.

    Codes listed in `purposes` and never answered come back as "not given" (`ConsentState()`). The state is derived
    from the ledger on every read, never stored beside it: every writer of the ledger (clicks, the API, imports,
    merges, retention, the banner) is reflected at once, with nothing to keep in step.
    """
    states: dict[str, ConsentState] = {code: ConsentState() for code in purposes}
    connection = as_connection(db)
    rows = connection.execute(CURRENT_STATE[connection.dialect.name], {"customer_id": customer_id})
    for purpose, granted, occurred_at, channel, first_granted_at in rows:
        states[purpose] = ConsentState(
            granted=bool(granted), changed_at=occurred_at, first_granted_at=first_granted_at, channel=channel
        )
    return states


def history(db: Session | Connection, *, customer_id: int) -> list[ConsentRecord]:
    """Every consent event of the customer, newest first."""
    connection = as_connection(db)
    return _with_stores(
        connection, [ConsentRecord(*row) for row in connection.execute(_HISTORY, {"customer_id": customer_id})]
    )


class InvalidHistoryCursor(ValueError):
    """The link to older choices names no event of this customer (mistyped, or someone else's)."""


def parse_history_cursor(after: str) -> int:
    """The event a history page starts after. The cursor is that event's id: it carries no date into URLs."""
    if not after.isdigit() or len(after) > 10 or not 1 <= int(after) <= MAX_EVENT_ID:
        raise InvalidHistoryCursor(after)
    return int(after)


@dataclasses.dataclass(frozen=True)
class HistoryPage:
    """One page of the history of the customer's choices, newest first."""

    records: list[ConsentRecord]
    after: int | None  # the event this page starts after (None: the newest choices)
    next_after: int | None  # the cursor of the following page, None on the last one


def history_page(
    db: Session | Connection, *, customer_id: int, after: int | None = None, page_size: int = HISTORY_PAGE_SIZE
) -> HistoryPage:
    """The customer's choices, newest first, `page_size` at a time after the event `after`: a page costs the same
    whatever the length of the ledger. Raises InvalidHistoryCursor when `after` is not one of their events."""
    connection = as_connection(db)
    params: dict[str, object] = {"customer_id": customer_id, "limit": page_size + 1}
    statement = _HISTORY_NEWEST
    if after is not None:
        before_at = connection.execute(_HISTORY_CURSOR, {"event_id": after, "customer_id": customer_id}).scalar()
        if before_at is None:
            raise InvalidHistoryCursor(str(after))
        statement = _HISTORY_OLDER
        params.update(before_at=before_at, before_id=after)
    rows = connection.execute(statement, params).all()
    records = _with_stores(connection, [ConsentRecord(*row[:-1], event_id=row[-1]) for row in rows[:page_size]])
    next_after = records[-1].event_id if len(rows) > page_size else None
    return HistoryPage(records=records, after=after, next_after=next_after)


def _with_stores(connection: Connection, records: list[ConsentRecord]) -> list[ConsentRecord]:
    """The records, those made on a store tablet with the store's name."""
    stores = _stores_of(connection, {r.actor for r in records if r.channel == "store" and r.actor.startswith("staff:")})
    if not stores:
        return records
    return [dataclasses.replace(r, store_name=stores.get(r.actor)) if r.channel == "store" else r for r in records]


def _stores_of(connection: Connection, actors: set[str]) -> dict[str, str]:
    """The store name of each staff actor ("staff:<id>"), for the events made on a store tablet."""
    ids = [int(actor.split(":", 1)[1]) for actor in actors if actor.split(":", 1)[1].isdigit()]
    if not ids:
        return {}
    rows = connection.execute(
        select(StaffUser.id, Store.name).join(Store, Store.id == StaffUser.store_id).where(StaffUser.id.in_(ids))
    )
    return {f"staff:{staff_id}": name for staff_id, name in rows}


@dataclasses.dataclass
class ConsentTimeline:
    """One customer's answers about one purpose in ledger order (occurred_at, then id): what stood at any moment.

    What the retailer sends about the past (browsing events, imported page views and consents) is judged against
    the answer that stood at its own time, not the current one: the latest event at or before that moment.
    """

    times: list[datetime] = dataclasses.field(default_factory=list)
    answers: list[bool] = dataclasses.field(default_factory=list)

    def stood_at(self, moment: datetime) -> bool:
        """Whether consent stood at `moment` (never answered: not given)."""
        index = bisect.bisect_right(self.times, moment)
        return index > 0 and self.answers[index - 1]

    def latest_at(self) -> datetime | None:
        return self.times[-1] if self.times else None

    def answers_at(self, moment: datetime) -> list[bool]:
        """The answers recorded at exactly `moment` (usually none or one)."""
        start, end = bisect.bisect_left(self.times, moment), bisect.bisect_right(self.times, moment)
        return self.answers[start:end]

    def add(self, moment: datetime, granted: bool) -> None:
        """Place a new event: after those at the same moment, as its id will be higher."""
        index = bisect.bisect_right(self.times, moment)
        self.times.insert(index, moment)
        self.answers.insert(index, granted)


def consent_timelines(
    db: Session | Connection,
    *,
    customer_ids: Collection[int],
    purposes: Collection[str],
    since: datetime | None = None,
) -> dict[tuple[int, str], ConsentTimeline]:
    """The timelines of `purposes` for `customer_ids`, keyed (customer id, purpose), in one query; a pair never
    answered reads as an empty timeline.

    With `since`, only what is needed to judge moments at or after `since` is read: the answer standing at `since`
    and those given after it. What the retailer sends is recent, so a batch costs what changed lately, not the
    customers' whole ledgers; `stood_at` is then exact for moments from `since` on (and only for them).
    """
    timelines: dict[tuple[int, str], ConsentTimeline] = defaultdict(ConsentTimeline)
    if not customer_ids or not purposes:
        return timelines
    params: dict[str, object] = {"customer_ids": sorted(customer_ids)}
    if since is None:
        statement = _TIMELINES
        params["purposes"] = sorted(purposes)
    else:
        statement = _timelines_since(tuple(sorted(purposes)))
        params["since"] = since
    for customer_id, purpose, occurred_at, granted in as_connection(db).execute(statement, params):
        timeline = timelines[(customer_id, purpose)]
        timeline.times.append(occurred_at)
        timeline.answers.append(bool(granted))
    return timelines


_CUSTOMER_IDS: BindParameter[list[int]] = bindparam("customer_ids", expanding=True)
_TIMELINE_ORDER = (_EVENTS.customer_id, _EVENTS.purpose, _EVENTS.occurred_at, _EVENTS.id)
_TIMELINES = (
    select(_EVENTS.customer_id, _EVENTS.purpose, _EVENTS.occurred_at, _EVENTS.granted)
    .where(_EVENTS.customer_id.in_(_CUSTOMER_IDS), _EVENTS.purpose.in_(bindparam("purposes", expanding=True)))
    .order_by(*_TIMELINE_ORDER)
)


@cache
def _timelines_since(purposes: tuple[str, ...]) -> Select:
    """The events of `purposes` after `since`, plus for each customer and purpose the one standing at `since` (a
    backward seek on ix_consent_event_customer_purpose per pair). Built once per set of purposes (one, in practice)."""
    since: BindParameter[datetime] = bindparam("since", type_=_EVENTS.occurred_at.type)
    standing = ConsentEvent.__table__.alias("standing")
    customers = Customer.__table__
    standing_ids = [
        select(
            select(standing.c.id)
            .where(
                standing.c.customer_id == customers.c.id, standing.c.purpose == purpose, standing.c.occurred_at <= since
            )
            .order_by(standing.c.occurred_at.desc(), standing.c.id.desc())
            .limit(first_row())
            .scalar_subquery()
        ).where(customers.c.id.in_(_CUSTOMER_IDS))
        for purpose in purposes
    ]
    columns = (_EVENTS.customer_id, _EVENTS.purpose, _EVENTS.occurred_at, _EVENTS.granted)
    recent = select(*columns, _EVENTS.id).where(
        _EVENTS.customer_id.in_(_CUSTOMER_IDS), _EVENTS.purpose.in_(purposes), _EVENTS.occurred_at > since
    )
    at_since = select(*columns, _EVENTS.id).where(_EVENTS.id.in_(union_all(*standing_ids)))
    both = union_all(recent, at_since).subquery("window")
    return select(both.c.customer_id, both.c.purpose, both.c.occurred_at, both.c.granted).order_by(
        both.c.customer_id, both.c.purpose, both.c.occurred_at, both.c.id
    )


_TOTALS = PageViewTotal.__table__.c
_HELD_VIEWS = select(_TOTALS.view_count).where(_TOTALS.customer_id == bindparam("customer_id"))


def held_page_views(db: Session | Connection, *, customer_id: int) -> int:
    """How many page views of the customer are held (what withdrawing browsing consent leaves to delete)."""
    return int(as_connection(db).execute(_HELD_VIEWS, {"customer_id": customer_id}).scalar() or 0)


@dataclasses.dataclass(frozen=True)
class ConsentsPage:
    """Where the customer's consents stand, a page of their history, and the page views held about them."""

    consents: dict[str, ConsentState]
    history: HistoryPage
    held_views: int
    restricted_at: datetime | None = None  # while set (GDPR Art. 18), consents are recorded but the data not used


_RESTRICTED_AT = select(Customer.__table__.c.restricted_at).where(Customer.__table__.c.id == _CUSTOMER_ID)


def consents_page(
    db: Session | Connection, *, customer_id: int, purposes: Iterable[str], after: int | None = None
) -> ConsentsPage:
    """The consents page of the customer for `purposes` (never answered: not given), with the page of their history
    after the event `after` (the newest choices when None), read in one unit of work. Its statements are the same
    for ten choices or ten thousand (tests/web/consent/test_consent_statements.py)."""
    connection = as_connection(db)
    return ConsentsPage(
        consents=current_consents(connection, customer_id=customer_id, purposes=purposes),
        history=history_page(connection, customer_id=customer_id, after=after),
        held_views=held_page_views(connection, customer_id=customer_id),
        restricted_at=connection.execute(_RESTRICTED_AT, {"customer_id": customer_id}).scalar(),
    )


@dataclasses.dataclass(frozen=True)
class ConsentChange:
    """What one click changed, for redrawing only that: the purpose's row and the history's new entry."""

    changed: bool
    consent: ConsentState
    held_views: int  # page views held (read for the browsing purpose only, whose row offers to delete them)
    newest: ConsentRecord | None  # the entry the change added to the history; None when nothing changed
    first_entry: bool  # the history was empty before: the page's whole (one-entry) history is drawn anew


def change_consent(
    db: Session | Connection,
    *,
    register: PurposeRegister,
    customer_id: int,
    purpose: str,
    granted: bool,
    channel: str,
    actor: str,
    now: datetime,
    locale: str,
    request_id: str | None = None,
) -> ConsentChange:
    """`record_consent`, then what the page must redraw, read in the same transaction: a handful of index seeks,
    whatever the length of the ledger (the history is not re-read)."""
    changed = record_consent(
        db,
        register=register,
        customer_id=customer_id,
        purpose=purpose,
        granted=granted,
        channel=channel,
        actor=actor,
        now=now,
        locale=locale,
        request_id=request_id,
    )
    connection = as_connection(db)
    state = current_consents(connection, customer_id=customer_id, purposes=[purpose])[purpose]
    held = held_page_views(connection, customer_id=customer_id) if purpose == BROWSING_PURPOSE else 0
    if not changed:
        return ConsentChange(changed=False, consent=state, held_views=held, newest=None, first_entry=False)
    newest = history_page(connection, customer_id=customer_id, page_size=1)
    return ConsentChange(
        changed=True,
        consent=state,
        held_views=held,
        newest=newest.records[0],
        first_entry=newest.next_after is None,
    )


# Built once per engine kind (the upsert is the dialect's): the toggle's hot path builds no statement.
_KEEP_WORDING = per_dialect(
    lambda insert: insert(ConsentWording.__table__).on_conflict_do_nothing(index_elements=["hash"])
)


def keep_wording(
    db: Session | Connection, *, register: PurposeRegister, purpose: str, locale: str, now: datetime
) -> str:
    """The hash of the current wording of `purpose` in `locale`, its text stored once in `consent_wording`."""
    wording_hash = register.wording_hash(purpose, locale)
    connection = as_connection(db)
    connection.execute(
        _KEEP_WORDING[connection.dialect.name],
        {
            "hash": wording_hash,
            "purpose": purpose,
            "locale": locale,
            "policy_version": register.policy_version,
            "text": register.by_code[purpose].consent_wording(locale),
            "created_at": now,
        },
    )
    return wording_hash


_CUSTOMERS = Customer.__table__.c
# Locks the customer's row on PostgreSQL, so two simultaneous clicks cannot both record a change. The latest answer
# is read by a second statement, after the lock is held: read in the same statement, it would come from the
# snapshot taken before waiting for the lock, and both clicks could see the same "latest" answer.
_LOCK_CUSTOMER = (
    select(_CUSTOMERS.erased_at, _CUSTOMERS.retailer_ref).where(_CUSTOMERS.id == _CUSTOMER_ID).with_for_update()
)
_INSERT_EVENT = insert(ConsentEvent.__table__)


def record_consent(
    db: Session | Connection,
    *,
    register: PurposeRegister,
    customer_id: int,
    purpose: str,
    granted: bool,
    channel: str,
    actor: str,
    now: datetime,
    locale: str,
    request_id: str | None = None,
    occurred_at: datetime | None = None,
    shown_version: str | None = None,
    visitor_id: str | None = None,
    banner_version: str | None = None,
) -> bool:
    """Give or withdraw consent to `purpose`; True when the state changed, False when it already was so.

    Another channel (a till, the call centre) may report an answer given earlier (`occurred_at`) under the policy
    version it showed (`shown_version`, current by default). Raises ConsentRefused (nothing recorded) for a purpose
    that is unknown or not based on consent, an unknown channel or version, or an answer older than the latest one.
    """
    known = register.by_code.get(purpose)
    if known is None or not known.consent_based:
        raise ConsentRefused(f"{purpose!r} is not a purpose customers consent to")
    if channel not in CHANNELS and not (channel == WEBSITE and visitor_id):
        raise ConsentRefused(f"unknown channel {channel!r}", reason="unknown_channel", field="channel")
    # Every statement on the connection: the ORM session's execute path cost more than SQLite's answers to these
    # prebuilt statements (bench/README.md, issue 17). Nothing here is an ORM object.
    connection = as_connection(db)
    # Locks the customer's row on PostgreSQL, so two simultaneous clicks cannot both record a change.
    customer = connection.execute(_LOCK_CUSTOMER, {"customer_id": customer_id}).first()
    if customer is None or customer.erased_at is not None:
        raise CustomerNotFound(customer_id)
    latest = connection.execute(_LATEST, {"customer_id": customer_id, "purpose": purpose}).first()
    live = occurred_at is None
    occurred_at = occurred_at or now
    if latest is not None and occurred_at < latest.occurred_at:
        if not live:
            # The ledger's order is the order of the answers: an older answer reported late cannot overrule a newer
            # one.
            raise ConsentRefused(
                "a more recent answer is already recorded for this purpose",
                reason="older_than_latest",
                field="occurred_at",
            )
        # A live answer (a click now) that waited on the customer's row behind one read a moment later, in another
        # tab or another process: it takes effect after that one, so it is recorded at that instant, ordered after it
        # by id. Refusing it would show the customer an error for their own click.
        occurred_at = latest.occurred_at
    if bool(latest and latest.granted) == granted:  # no event yet counts as not given: refusing again records nothing
        return False
    if shown_version is None or shown_version == register.policy_version:
        shown_version = register.policy_version
        wording_hash: str | None = keep_wording(db, register=register, purpose=purpose, locale=locale, now=now)
    else:
        wording_hash = connection.execute(
            select(_WORDINGS.hash).where(
                _WORDINGS.purpose == purpose, _WORDINGS.locale == locale, _WORDINGS.policy_version == shown_version
            )
        ).scalar()
        # A version the register declares ([[policy.previous]]) whose text the portal never stored is accepted, as
        # the import accepts it: the retailer keeps that older policy's text; the event records its version.
        if wording_hash is None and not register.is_known_version(shown_version):
            raise ConsentRefused(
                f"no wording of {purpose!r} is known for policy version {shown_version!r}",
                reason="unknown_version",
                field="policy_version",
            )
    # A Core insert: it is written at once, so what the caller reads next in this transaction includes it.
    connection.execute(
        _INSERT_EVENT,
        {
            "customer_id": customer_id,
            "purpose": purpose,
            "granted": granted,
            "occurred_at": occurred_at,
            "channel": channel,
            "actor": actor,
            "policy_version": shown_version,
            "wording_hash": wording_hash,
            "visitor_id": visitor_id,
            "banner_version": banner_version,
        },
    )
    # Core inserts, one row each: nothing is left for an ORM flush at commit (bench/README.md, the toggle's profile).
    record_audit(
        db,
        actor=actor,
        action="consent.granted" if granted else "consent.withdrawn",
        target=f"customer:{customer_id}",
        detail={"purpose": purpose, "channel": channel},
        now=now,
        request_id=request_id,
    )
    # The retailer's systems must stop (or may start) using the data for this purpose.
    queue_webhook(
        db,
        topic="consent.changed",
        payload={
            "customer_id": customer_id,
            "retailer_customer_id": customer.retailer_ref,
            "purpose": purpose,
            "granted": granted,
            "occurred_at": occurred_at.isoformat(),
            "channel": channel,
            "policy_version": shown_version,
        },
        now=now,
    )
    return True


def withdraw_all_marketing(
    db: Session | Connection,
    *,
    register: PurposeRegister,
    customer_id: int,
    channel: str,
    actor: str,
    now: datetime,
    locale: str,
    request_id: str | None = None,
) -> list[str]:
    """Withdraw every consent currently given (objection to direct marketing, Art. 21(2)); returns their codes."""
    states = current_consents(db, customer_id=customer_id)
    withdrawn = []
    for purpose in register.consent_based():
        if states.get(purpose.code, ConsentState()).granted:
            record_consent(
                db,
                register=register,
                customer_id=customer_id,
                purpose=purpose.code,
                granted=False,
                channel=channel,
                actor=actor,
                now=now,
                locale=locale,
                request_id=request_id,
            )
            withdrawn.append(purpose.code)
    return withdrawn


def delete_browsing_history(
    session: Session,
    *,
    customer_id: int,
    now: datetime,
    actor: str | None = None,
    channel: str = "web",
    request_id: str | None = None,
) -> int:
    """Delete every page view held about the customer, with their counts; returns how many views were deleted."""
    deleted = session.execute(delete(PageView).where(PageView.customer_id == customer_id)).rowcount or 0
    session.execute(delete(PageViewDay).where(PageViewDay.customer_id == customer_id))
    session.execute(delete(PageViewTotal).where(PageViewTotal.customer_id == customer_id))
    record_audit(
        session,
        actor=actor or f"customer:{customer_id}",
        action="browsing.deleted",
        target=f"customer:{customer_id}",
        detail={"count": deleted, "channel": channel},
        now=now,
        request_id=request_id,
    )
    return deleted


def _csv_line(values: Iterable[object]) -> str:
    return csv_line(value.isoformat() if isinstance(value, datetime) else value for value in values)


def consent_proof_csv(db: Session | Connection, *, customer_id: int) -> Iterator[str]:
    """The proof of one customer's consents: a header, then every event, oldest first, with the wording shown."""
    yield _csv_line(PROOF_COLUMNS)
    for row in as_connection(db).execute(_PROOF, {"customer_id": customer_id}):
        occurred_at, purpose, granted, channel, actor, version, wording_hash, locale, text = row
        yield _csv_line(
            (occurred_at, purpose, "granted" if granted else "withdrawn", channel, actor, version)
            + (wording_hash, locale, text)
        )


# --- Website visitors: the consent banner on the retailer's website ------------------------------------------------
# A visitor answers the banner under a random id the banner keeps in the visitor's browser; their events are in this
# same ledger, with no customer, until the web shop tells us who the visitor is (`link_visitor`): the events then
# join the customer's ledger in time order, so whichever answer is latest, on the website or anywhere else, stands.

_VISITOR_LEDGER = (
    select(_EVENTS.purpose, _EVENTS.granted, _EVENTS.occurred_at, _EVENTS.channel)
    .where(_EVENTS.visitor_id == bindparam("visitor_id"), _EVENTS.customer_id.is_(None))
    .order_by(_EVENTS.occurred_at, _EVENTS.id)
)
_VISITORS = WebsiteVisitor.__table__.c
_LINKED_CUSTOMER = (
    select(_VISITORS.customer_id)
    .join(Customer.__table__, Customer.__table__.c.id == _VISITORS.customer_id)
    .where(_VISITORS.visitor_id == bindparam("visitor_id"), Customer.__table__.c.erased_at.is_(None))
)


def linked_customer(db: Session | Connection, *, visitor_id: str) -> int | None:
    """The customer the web shop said this visitor is (None: anonymous, or the customer was erased)."""
    return as_connection(db).execute(_LINKED_CUSTOMER, {"visitor_id": visitor_id}).scalar()


def visitor_consents(
    db: Session | Connection, *, visitor_id: str, purposes: Iterable[str]
) -> tuple[int | None, dict[str, ConsentState]]:
    """(linked customer id or None, the current state of `purposes`) for a website visitor.

    A linked visitor reads their customer's ledger: a choice made later in the portal, a store or anywhere wins on the
    website too. An anonymous visitor reads their own answers; never answered reads as not given.
    """
    customer_id = linked_customer(db, visitor_id=visitor_id)
    if customer_id is not None:
        return customer_id, current_consents(db, customer_id=customer_id, purposes=purposes)
    states: dict[str, ConsentState] = {code: ConsentState() for code in purposes}
    for purpose, granted, occurred_at, channel in as_connection(db).execute(
        _VISITOR_LEDGER, {"visitor_id": visitor_id}
    ):
        first = states.get(purpose, ConsentState()).first_granted_at or (occurred_at if granted else None)
        states[purpose] = ConsentState(
            granted=bool(granted), changed_at=occurred_at, first_granted_at=first, channel=channel
        )
    return None, states


def record_visitor_answers(
    session: Session,
    *,
    register: PurposeRegister,
    visitor_id: str,
    answers: Mapping[str, bool],
    now: datetime,
    locale: str,
    banner_version: str,
    request_id: str | None = None,
) -> tuple[int, int | None]:
    """A website visitor's answer in the banner, purpose by purpose; (events recorded, linked customer id or None).

    A linked visitor answers for their customer (`record_consent`, channel `website`: audited, passed on as a
    webhook). An anonymous visitor's answer to a purpose is recorded when it differs from their previous one; their
    first answer is recorded even when it is a refusal, because once the visitor becomes a customer it is weighed by
    time against what the customer answered elsewhere. Answers are to the current policy version (the banner shows
    it). Raises ConsentRefused, recording nothing, when a purpose is not one customers consent to.
    """
    for purpose in answers:
        known = register.by_code.get(purpose)
        if known is None or not known.consent_based:
            raise ConsentRefused(f"{purpose!r} is not a purpose customers consent to")
    customer_id = linked_customer(session, visitor_id=visitor_id)
    if customer_id is not None:
        recorded = 0
        for purpose, granted in answers.items():
            recorded += record_consent(
                session,
                register=register,
                customer_id=customer_id,
                purpose=purpose,
                granted=granted,
                channel=WEBSITE,
                actor="visitor",
                now=now,
                locale=locale,
                request_id=request_id,
                visitor_id=visitor_id,
                banner_version=banner_version,
            )
        return recorded, customer_id
    latest: dict[str, bool] = {}
    for purpose, granted, _occurred_at, _channel in session.execute(_VISITOR_LEDGER, {"visitor_id": visitor_id}):
        latest[purpose] = bool(granted)  # in ledger order: the last one stands
    rows = [
        {
            "customer_id": None,
            "visitor_id": visitor_id,
            "purpose": purpose,
            "granted": granted,
            "occurred_at": now,
            "channel": WEBSITE,
            "actor": "visitor",
            "policy_version": register.policy_version,
            "wording_hash": keep_wording(session, register=register, purpose=purpose, locale=locale, now=now),
            "banner_version": banner_version,
        }
        for purpose, granted in answers.items()
        if latest.get(purpose) is not granted
    ]
    if rows:  # one statement for the whole answer (the banner's hot path)
        session.execute(ConsentEvent.__table__.insert(), rows)
    return len(rows), None


def record_visitor_consent(
    session: Session,
    *,
    register: PurposeRegister,
    visitor_id: str,
    purpose: str,
    granted: bool,
    now: datetime,
    locale: str,
    banner_version: str,
    request_id: str | None = None,
) -> bool:
    """`record_visitor_answers` for one purpose; True when it was recorded as an event."""
    recorded, _ = record_visitor_answers(
        session,
        register=register,
        visitor_id=visitor_id,
        answers={purpose: granted},
        now=now,
        locale=locale,
        banner_version=banner_version,
        request_id=request_id,
    )
    return recorded > 0


@dataclasses.dataclass(frozen=True)
class VisitorLink:
    """What linking a website visitor to a customer did."""

    joined: int  # the visitor's answers that joined the customer's ledger
    changed: tuple[str, ...]  # purposes whose current state the joined answers changed
    relinked: bool  # the visitor was linked to another customer before (a shared computer)


def link_visitor(
    session: Session,
    *,
    register: PurposeRegister,
    visitor_id: str,
    customer_id: int,
    actor: str,
    now: datetime,
    request_id: str | None = None,
) -> VisitorLink:
    """The web shop says this website visitor is this customer: the visitor's answers join the customer's ledger, and
    from now on the banner reads and writes the customer's consents. Raises CustomerNotFound for an erased one.

    The answers keep their own time, so the customer's state is whatever was answered last, anywhere. Answers given
    while linked to someone else stay with that person; the visitor now follows the customer who signed in last.
    """
    customer = session.get(Customer, customer_id, with_for_update=True)
    if customer is None or customer.erased_at is not None:
        raise CustomerNotFound(customer_id)
    codes = [purpose.code for purpose in register.consent_based()]
    before = current_consents(session, customer_id=customer_id, purposes=codes)
    # Filling in the customer of events that had none: what was answered, when and under which wording is unchanged.
    # The current state is read from the events (CURRENT_STATE), so the joined answers count at once.
    joined = (
        session.execute(
            ConsentEvent.__table__.update()
            .where(_EVENTS.visitor_id == visitor_id, _EVENTS.customer_id.is_(None))
            .values(customer_id=customer_id)
        ).rowcount
        or 0
    )
    link = session.get(WebsiteVisitor, visitor_id, with_for_update=True)
    relinked = link is not None and link.customer_id != customer_id
    if link is None:
        session.add(WebsiteVisitor(visitor_id=visitor_id, customer_id=customer_id, linked_at=now))
    elif relinked:
        link.customer_id, link.linked_at = customer_id, now
    session.flush()
    after = current_consents(session, customer_id=customer_id, purposes=codes)
    changed = tuple(code for code in codes if before[code].granted != after[code].granted)
    for code in changed:
        state = after[code]
        queue_webhook(
            session,
            topic="consent.changed",
            payload={
                "customer_id": customer_id,
                "retailer_customer_id": customer.retailer_ref,
                "purpose": code,
                "granted": state.granted,
                "occurred_at": (state.changed_at or now).isoformat(),
                "channel": WEBSITE,
                "policy_version": register.policy_version,
            },
            now=now,
        )
    if joined or relinked or link is None:
        record_audit(
            session,
            actor=actor,
            action="consent.visitor_linked",
            target=f"customer:{customer_id}",
            detail={"joined": joined, "changed": list(changed), "relinked": relinked},
            now=now,
            request_id=request_id,
        )
    return VisitorLink(joined=joined, changed=changed, relinked=relinked)
