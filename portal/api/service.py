"""What the retailer's systems may do: read consents, report consents given elsewhere, send browsing events."""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, bindparam, select
from sqlmodel import Session

from portal.api import schemas
from portal.api.keys import authenticate
from portal.audit import record_audit
from portal.browsing.records import record_page_views
from portal.clock import CLOCK_SKEW
from portal.consent import ledger
from portal.consent.register import PurposeRegister
from portal.db import as_connection
from portal.errors import CustomerNotFound
from portal.models import Customer, WebsiteVisitor, email_key

# Tills and servers keep imperfect time: an event a little ahead of ours is accepted, a day ahead is a mistake.
T = TypeVar("T")


class KeyRefused(Exception):
    """The presented API key is malformed, unknown, revoked or wrong."""


class ScopeMissing(Exception):
    """The API key is good but does not hold the scope the call needs."""

    def __init__(self, scope: str) -> None:
        super().__init__(scope)
        self.scope = scope


class EventsRefused(ValueError):
    """Some events of a batch cannot be accepted; nothing of the batch was stored."""

    def __init__(self, details: list[tuple[str, str]]) -> None:
        super().__init__("events refused")
        self.details = details


@dataclasses.dataclass(frozen=True)
class KnownCustomer:
    id: int
    retailer_ref: str | None
    restricted: bool


_CUSTOMER_COLUMNS = (Customer.id, Customer.retailer_ref, Customer.restricted_at)


def _known(row: object) -> KnownCustomer:
    return KnownCustomer(id=row.id, retailer_ref=row.retailer_ref, restricted=row.restricted_at is not None)


# Built once, as every consent read runs one of them (erased customers are tombstones: unknown to the API).
_ALIVE = select(*_CUSTOMER_COLUMNS).where(Customer.erased_at.is_(None))
_BY_EMAIL = _ALIVE.where(Customer.email_key == bindparam("key"))
_BY_REF = _ALIVE.where(Customer.retailer_ref == bindparam("key"))


@functools.cache
def _parameters(work: Callable[..., Any]) -> frozenset[str]:
    return frozenset(inspect.signature(work).parameters)


def as_client(
    db: Session | Connection,
    *,
    secret_key: str,
    presented: str,
    scope: str | None,
    now: datetime,
    work: Callable[..., T],
    arguments: Mapping[str, Any],
) -> T:
    """`work(db, **arguments)` for the client whose key was presented, once the key holds `scope`.

    The key is checked in the caller's transaction, so its last use is recorded with the work, and rolled back with
    it when the work is refused. `work` is given `actor` (the client, as audit events name it) and `now` when its
    signature asks for them. Raises KeyRefused or ScopeMissing before any work is done. `db` is a Session unless
    `work` says it takes a plain connection (`on_session`, `on_connection`: the two doors the views choose between).
    """
    client = authenticate(db, secret_key=secret_key, presented=presented, now=now)
    if client is None:
        raise KeyRefused()
    if scope is not None and scope not in client.scopes:
        raise ScopeMissing(scope)
    wants = _parameters(work)
    given = {"actor": client.actor, "now": now}
    return work(db, **{name: value for name, value in given.items() if name in wants}, **arguments)


def on_session(session: Session, *, now: datetime, **kwargs: Any) -> Any:
    """`as_client` in a transaction with an ORM Session, for a `work` that needs one."""
    return as_client(session, now=now, **kwargs)


def on_connection(db: Session | Connection, *, now: datetime, **kwargs: Any) -> Any:
    """`as_client` on the transaction's bare connection, for a `work` typed `Session | Connection`
    (`portal.db.takes_connection`): no ORM Session around it."""
    return as_client(db, now=now, **kwargs)


def purpose_list(db: Session | Connection, *, register: PurposeRegister) -> schemas.PurposeList:
    """The purpose register as the API publishes it (from the register: nothing is read from `db`)."""
    return schemas.PurposeList(
        policy_version=register.policy_version,
        policy_date=register.policy_date.isoformat(),
        purposes=[
            schemas.PurposeInfo(
                code=p.code,
                consent_based=p.consent_based,
                legal_basis=p.legal_basis,
                title={locale: text for locale, text in p.title.texts},
            )
            for p in register
        ],
    )


def find_customer(db: Session | Connection, who: schemas.CustomerIdentifier) -> KnownCustomer:
    if who.email is not None:
        row = as_connection(db).execute(_BY_EMAIL, {"key": email_key(who.email)}).first()
    else:
        row = as_connection(db).execute(_BY_REF, {"key": who.customer_id}).first()
    if row is None:
        raise CustomerNotFound()
    return _known(row)


def _state(purpose: str, state: ledger.ConsentState, *, restricted: bool) -> schemas.ConsentState:
    return schemas.ConsentState(
        purpose=purpose,
        granted=state.granted,
        usable=state.granted and not restricted,
        changed_at=state.changed_at,
        channel=state.channel,
    )


def consents_of(
    db: Session | Connection, *, register: PurposeRegister, customer: KnownCustomer
) -> schemas.CustomerConsents:
    """Every consent-based purpose with the customer's latest answer; never asked reads as not given."""
    codes = [purpose.code for purpose in register.consent_based()]
    states = ledger.current_consents(db, customer_id=customer.id, purposes=codes)
    return schemas.CustomerConsents(
        customer_id=customer.retailer_ref,
        restricted=customer.restricted,
        policy_version=register.policy_version,
        consents=[_state(code, states[code], restricted=customer.restricted) for code in codes],
    )


def customer_consents(
    db: Session | Connection, *, register: PurposeRegister, who: schemas.CustomerIdentifier
) -> schemas.CustomerConsents:
    """The consents of the customer `who` identifies; CustomerNotFound when nobody (alive) matches."""
    return consents_of(db, register=register, customer=find_customer(db, who))


def record_consent_change(
    db: Session | Connection, *, register: PurposeRegister, change: schemas.ConsentChange, actor: str, now: datetime
) -> schemas.ConsentChangeResult:
    """Record an answer given on another channel; ConsentRefused explains a refusal, CustomerNotFound an unknown."""
    known = register.by_code.get(change.purpose)
    if known is None or not known.consent_based:  # checked first: a wrong purpose is wrong for every customer
        raise ledger.ConsentRefused(f"{change.purpose!r} is not a purpose customers consent to")
    if change.occurred_at is not None and change.occurred_at > now + CLOCK_SKEW:
        raise ledger.ConsentRefused("occurred_at is in the future", reason="in_future", field="occurred_at")
    customer = find_customer(db, change)
    changed = ledger.record_consent(
        db,
        register=register,
        customer_id=customer.id,
        purpose=change.purpose,
        granted=change.granted,
        channel=change.channel,
        actor=actor,
        now=now,
        locale=change.locale,
        occurred_at=change.occurred_at,
        shown_version=change.policy_version,
    )
    # record_consent writes with Core inserts, so the state read next on the same connection includes the answer.
    state = ledger.current_consents(db, customer_id=customer.id, purposes=[change.purpose])[change.purpose]
    return schemas.ConsentChangeResult(
        changed=changed, consent=_state(change.purpose, state, restricted=customer.restricted)
    )


def link_website_visitor(
    session: Session, *, register: PurposeRegister, link: schemas.VisitorLink, actor: str, now: datetime
) -> schemas.VisitorLinkResult:
    """The visitor of the website banner is this customer: their banner answers join the customer's consents, and
    the banner follows the customer's consents from now on. CustomerNotFound when nobody (alive) matches."""
    customer = find_customer(session, link)
    joined = ledger.link_visitor(
        session, register=register, visitor_id=link.visitor_id, customer_id=customer.id, actor=actor, now=now
    )
    return schemas.VisitorLinkResult(
        joined=joined.joined,
        changed=list(joined.changed),
        relinked=joined.relinked,
        consents=consents_of(session, register=register, customer=customer),
    )


# Built once, each with an expanding IN: ingestion runs for every batch the web shop sends (bench/README.md, issue 17).
_NOT_ERASED = Customer.erased_at.is_(None)
_BY_EMAIL_KEYS = select(*_CUSTOMER_COLUMNS, Customer.email_key).where(
    _NOT_ERASED, Customer.email_key.in_(bindparam("keys", expanding=True))
)
_BY_REFS = select(*_CUSTOMER_COLUMNS).where(_NOT_ERASED, Customer.retailer_ref.in_(bindparam("keys", expanding=True)))
# The website banner's visitors the web shop linked to a customer; an unlinked visitor matches nobody.
_BY_VISITORS = (
    select(*_CUSTOMER_COLUMNS, WebsiteVisitor.visitor_id)
    .join(WebsiteVisitor, WebsiteVisitor.customer_id == Customer.id)
    .where(_NOT_ERASED, WebsiteVisitor.visitor_id.in_(bindparam("keys", expanding=True)))
)


def _customers_for(
    db: Session | Connection, events: Sequence[schemas.BrowsingEvent]
) -> dict[tuple[str, str], KnownCustomer]:
    emails = sorted({email_key(e.email) for e in events if e.email is not None})
    refs = sorted({e.customer_id for e in events if e.customer_id is not None})
    visitors = sorted({e.visitor_id for e in events if e.visitor_id is not None})
    found: dict[tuple[str, str], KnownCustomer] = {}
    connection = as_connection(db)
    if emails:
        for row in connection.execute(_BY_EMAIL_KEYS, {"keys": emails}):
            found[("email", row.email_key)] = _known(row)
    if refs:
        for row in connection.execute(_BY_REFS, {"keys": refs}):
            found[("ref", row.retailer_ref)] = _known(row)
    if visitors:
        for row in connection.execute(_BY_VISITORS, {"keys": visitors}):
            found[("visitor", row.visitor_id)] = _known(row)
    return found


def _identifier_of(event: schemas.BrowsingEvent) -> tuple[str, str]:
    if event.email is not None:
        return ("email", email_key(event.email))
    if event.visitor_id is not None:
        return ("visitor", event.visitor_id)
    return ("ref", event.customer_id or "")


def ingest_browsing_events(
    db: Session | Connection, *, events: Sequence[schemas.BrowsingEvent], actor: str, now: datetime, timezone: str
) -> schemas.IngestionResult:
    """Keep each page view only if the customer's browsing consent stood at the moment of the view.

    Events without consent then (never given, not yet given, or withdrawn since) are dropped and counted, never
    stored. A batch with an invalid event is refused whole, so a sender never has to guess what was kept.
    """
    late = [(f"events.{i}.viewed_at", "in_future") for i, e in enumerate(events) if e.viewed_at > now + CLOCK_SKEW]
    if late:
        raise EventsRefused(late)
    customers = _customers_for(db, events)
    # Judged at each view's own moment: only the answers from the batch's oldest view on are read, not the ledger.
    timelines = ledger.consent_timelines(
        db,
        customer_ids={c.id for c in customers.values()},
        purposes=[ledger.BROWSING_PURPOSE],
        since=min((e.viewed_at for e in events), default=None),
    )
    dropped = {"no_consent": 0, "unknown_customer": 0, "restricted": 0}
    keep: list[tuple[int, datetime, str, str | None]] = []
    for event in events:
        customer = customers.get(_identifier_of(event))
        if customer is None:
            dropped["unknown_customer"] += 1
        elif customer.restricted:
            dropped["restricted"] += 1
        elif not timelines[(customer.id, ledger.BROWSING_PURPOSE)].stood_at(event.viewed_at):
            dropped["no_consent"] += 1
        else:
            keep.append((customer.id, event.viewed_at, event.url, event.title))
    record_page_views(db, keep, timezone=timezone)
    kept = len(keep)
    # One audit event per batch, with counts only: which pages someone viewed is not for the audit trail.
    # A Core insert: no ORM flush left for the commit (bench/README.md, browsing ingestion's profile).
    record_audit(db, actor=actor, action="browsing.ingested", detail={"kept": kept, **dropped}, now=now)
    return schemas.IngestionResult(
        received=len(events),
        kept=kept,
        dropped=len(events) - kept,
        dropped_because=schemas.DroppedCounts(**dropped),
    )
