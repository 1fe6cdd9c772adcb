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
from collections.abc import Collection, Iterable, Iterator
from datetime import datetime

from sqlalchemy import Connection, bindparam, delete, select
from sqlmodel import Session

from portal.audit import record_audit
from portal.consent.register import PurposeRegister
from portal.csvfile import csv_line
from portal.db import as_connection, dialect_insert
from portal.errors import CustomerNotFound
from portal.models import ConsentEvent, ConsentWording, Customer, PageView, PageViewDay, PageViewTotal, StaffUser, Store
from portal.outbox.enqueue import queue_webhook

BROWSING_PURPOSE = "browsing_analytics"
CHANNELS = ("web", "store", "support", "api", "import")


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
    periods: tuple[tuple[datetime, datetime | None], ...] = dataclasses.field(default=(), compare=False, repr=False)

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


_EVENTS = ConsentEvent.__table__.c
_WORDINGS = ConsentWording.__table__.c

# Built once: the history pages read the ledger far more often than it changes (bench/README.md).
_LEDGER = (
    select(_EVENTS.purpose, _EVENTS.granted, _EVENTS.occurred_at, _EVENTS.channel)
    .where(_EVENTS.customer_id == bindparam("customer_id"))
    .order_by(_EVENTS.occurred_at, _EVENTS.id)
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
_LATEST = (
    select(_EVENTS.granted, _EVENTS.occurred_at)
    .where(_EVENTS.customer_id == bindparam("customer_id"), _EVENTS.purpose == bindparam("purpose"))
    .order_by(_EVENTS.occurred_at.desc(), _EVENTS.id.desc())
    .limit(1)
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
    """The current state of every purpose the customer ever answered, replaying their (short) ledger in order.

    Codes listed in `purposes` and never answered come back as "not given" (`ConsentState()`).
    """
    states: dict[str, ConsentState] = {code: ConsentState() for code in purposes}
    for purpose, granted, occurred_at, channel in as_connection(db).execute(_LEDGER, {"customer_id": customer_id}):
        before = states.get(purpose, ConsentState())
        first = before.first_granted_at or (occurred_at if granted else None)
        periods = before.periods
        if granted and not before.granted:
            periods = (*periods, (occurred_at, None))
        elif not granted and before.granted and periods:
            periods = (*periods[:-1], (periods[-1][0], occurred_at))
        states[purpose] = ConsentState(
            granted=bool(granted), changed_at=occurred_at, first_granted_at=first, channel=channel, periods=periods
        )
    return states


def history(db: Session | Connection, *, customer_id: int) -> list[ConsentRecord]:
    """Every consent event of the customer, newest first."""
    connection = as_connection(db)
    records = [ConsentRecord(*row) for row in connection.execute(_HISTORY, {"customer_id": customer_id})]
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
    db: Session | Connection, *, customer_ids: Collection[int], purposes: Collection[str]
) -> dict[tuple[int, str], ConsentTimeline]:
    """The timelines of `purposes` for `customer_ids`, keyed (customer id, purpose), in one query; a pair never
    answered reads as an empty timeline."""
    timelines: dict[tuple[int, str], ConsentTimeline] = defaultdict(ConsentTimeline)
    if not customer_ids or not purposes:
        return timelines
    rows = as_connection(db).execute(
        select(_EVENTS.customer_id, _EVENTS.purpose, _EVENTS.occurred_at, _EVENTS.granted)
        .where(_EVENTS.customer_id.in_(sorted(customer_ids)), _EVENTS.purpose.in_(sorted(purposes)))
        .order_by(_EVENTS.customer_id, _EVENTS.purpose, _EVENTS.occurred_at, _EVENTS.id)
    )
    for customer_id, purpose, occurred_at, granted in rows:
        timeline = timelines[(customer_id, purpose)]
        timeline.times.append(occurred_at)
        timeline.answers.append(bool(granted))
    return timelines


_TOTALS = PageViewTotal.__table__.c
_HELD_VIEWS = select(_TOTALS.view_count).where(_TOTALS.customer_id == bindparam("customer_id"))


def held_page_views(db: Session | Connection, *, customer_id: int) -> int:
    """How many page views of the customer are held (what withdrawing browsing consent leaves to delete)."""
    return int(as_connection(db).execute(_HELD_VIEWS, {"customer_id": customer_id}).scalar() or 0)


@dataclasses.dataclass(frozen=True)
class ConsentsPage:
    """Where the customer's consents stand, their history, and the page views held about them."""

    consents: dict[str, ConsentState]
    history: list[ConsentRecord]
    held_views: int
    restricted_at: datetime | None = None  # while set (GDPR Art. 18), consents are recorded but the data not used


def consents_page(
    db: Session | Connection, *, customer_id: int, purposes: Iterable[str], with_restriction: bool = False
) -> ConsentsPage:
    """The consents page of the customer for `purposes` (never answered: not given), read in one unit of work.

    `with_restriction` also reads whether processing is restricted, which only the whole page shows (the row redrawn
    after a click does not: the toggle's hot path stays at its statements).
    """
    restricted_at = None
    if with_restriction:
        restricted_at = (
            as_connection(db).execute(select(Customer.restricted_at).where(Customer.id == customer_id)).scalar()
        )
    return ConsentsPage(
        consents=current_consents(db, customer_id=customer_id, purposes=purposes),
        history=history(db, customer_id=customer_id),
        held_views=held_page_views(db, customer_id=customer_id),
        restricted_at=restricted_at,
    )


def keep_wording(session: Session, *, register: PurposeRegister, purpose: str, locale: str, now: datetime) -> str:
    """The hash of the current wording of `purpose` in `locale`, its text stored once in `consent_wording`."""
    wording_hash = register.wording_hash(purpose, locale)
    statement = dialect_insert(session)(ConsentWording.__table__).values(
        hash=wording_hash,
        purpose=purpose,
        locale=locale,
        policy_version=register.policy_version,
        text=register.by_code[purpose].consent_wording(locale),
        created_at=now,
    )
    session.execute(statement.on_conflict_do_nothing(index_elements=["hash"]))
    return wording_hash


def record_consent(
    session: Session,
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
) -> bool:
    """Give or withdraw consent to `purpose`; True when the state changed, False when it already was so.

    Another channel (a till, the call centre) may report an answer given earlier (`occurred_at`) under the policy
    version it showed (`shown_version`, current by default). Raises ConsentRefused (nothing recorded) for a purpose
    that is unknown or not based on consent, an unknown channel or version, or an answer older than the latest one.
    """
    known = register.by_code.get(purpose)
    if known is None or not known.consent_based:
        raise ConsentRefused(f"{purpose!r} is not a purpose customers consent to")
    if channel not in CHANNELS:
        raise ConsentRefused(f"unknown channel {channel!r}", reason="unknown_channel", field="channel")
    # Locks the customer's row on PostgreSQL, so two simultaneous clicks cannot both record a change.
    customer = session.get(Customer, customer_id, with_for_update=True)
    if customer is None or customer.erased_at is not None:
        raise CustomerNotFound(customer_id)
    latest = session.execute(_LATEST, {"customer_id": customer_id, "purpose": purpose}).first()
    occurred_at = occurred_at or now
    if latest is not None and occurred_at < latest.occurred_at:
        # The ledger's order is the order of the answers: an older answer arriving late cannot overrule a newer one.
        raise ConsentRefused(
            "a more recent answer is already recorded for this purpose", reason="older_than_latest", field="occurred_at"
        )
    if bool(latest and latest.granted) == granted:  # no event yet counts as not given: refusing again records nothing
        return False
    if shown_version is None or shown_version == register.policy_version:
        shown_version = register.policy_version
        wording_hash: str | None = keep_wording(session, register=register, purpose=purpose, locale=locale, now=now)
    else:
        wording_hash = session.execute(
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
    session.add(
        ConsentEvent(
            customer_id=customer_id,
            purpose=purpose,
            granted=granted,
            occurred_at=occurred_at,
            channel=channel,
            actor=actor,
            policy_version=shown_version,
            wording_hash=wording_hash,
        )
    )
    record_audit(
        session,
        actor=actor,
        action="consent.granted" if granted else "consent.withdrawn",
        target=f"customer:{customer_id}",
        detail={"purpose": purpose, "channel": channel},
        now=now,
        request_id=request_id,
    )
    # The retailer's systems must stop (or may start) using the data for this purpose.
    queue_webhook(
        session,
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
    session: Session,
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
    states = current_consents(session, customer_id=customer_id)
    withdrawn = []
    for purpose in register.consent_based():
        if states.get(purpose.code, ConsentState()).granted:
            record_consent(
                session,
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
