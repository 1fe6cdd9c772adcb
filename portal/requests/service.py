"""Filing requests and reading them back for the customer. Plain values in, plain objects out."""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import BindParameter, Connection, bindparam, insert, or_, select
from sqlmodel import Session

from portal.audit import record_audit
from portal.db import as_connection, limit_parameter, per_dialect
from portal.errors import RequestNotFound
from portal.i18n import email_language, lazy_gettext
from portal.identity import ratelimit
from portal.mail.compose import EmailComposer
from portal.models import Customer, PrivacyRequest, RequestEvent
from portal.models.requests import OPEN_STATUSES, REQUEST_TYPES
from portal.outbox.enqueue import enqueue_email
from portal.requests.deadlines import due_at_for

# Crockford's base32 without I, L, O, U: no letters read as digits, nothing rude by accident.
REFERENCE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_reference() -> str:
    """A short, non-sequential public reference such as R-7K2Q-9XMD (40 random bits)."""
    chars = "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(8))
    return f"R-{chars[:4]}-{chars[4:]}"


def normalise_reference(raw: str) -> str | None:
    """The canonical form of a reference a person typed (case, dashes, O/0 and I/L/1 confusions), or None."""
    cleaned = (raw or "").upper().replace("-", "").replace(" ", "")
    cleaned = cleaned.removeprefix("R")
    cleaned = cleaned.translate(str.maketrans("OIL", "011"))
    if len(cleaned) != 8 or any(c not in REFERENCE_ALPHABET for c in cleaned):
        return None
    return f"R-{cleaned[:4]}-{cleaned[4:]}"


@dataclasses.dataclass(frozen=True)
class FiledRequest:
    id: int
    reference: str
    type: str
    received_at: datetime
    due_at: datetime
    created: bool  # False when an identical submission had already filed it


def file_request(
    db: Session | Connection,
    *,
    customer_id: int | None,
    type: str,
    channel: str,
    now: datetime,
    actor: str,
    details: dict | None = None,
    store_id: int | None = None,
    submission_key: str | None = None,
    timezone: str,
    request_id: str | None = None,
    submission_checked: bool = False,
) -> FiledRequest:
    """Record a request with its legal due date and the first step of its timeline (and audit it).

    `submission_checked`: the caller has just looked `submission_key` up itself (`make_request` does, before its
    limits) and found nothing, so it is not looked up twice.
    """
    if type not in REQUEST_TYPES:
        raise ValueError(f"unknown request type {type!r}")
    if not submission_checked:
        earlier = find_submission(db, submission_key)
        if earlier is not None:
            return earlier
    connection = as_connection(db)
    due_at = due_at_for(now, timezone=timezone)
    row = {
        "customer_id": customer_id,
        "type": type,
        "channel": channel,
        "store_id": store_id,
        "received_at": now,
        "due_at": due_at,
        "details": details,
        "submission_key": submission_key,
    }
    insert_new = _INSERT_NEW_REFERENCE[connection.dialect.name]
    # 40 random bits: a taken reference is rare, and drawn again rather than trusted away. The insert itself checks
    # it (no row comes back), one statement instead of a look-up before every insert.
    for _attempt in range(5):
        reference = new_reference()
        inserted = connection.execute(insert_new, {**row, "reference": reference}).first()
        if inserted is not None:
            break
    else:
        raise RuntimeError("no free request reference after 5 draws")
    record_request_event(db, request_id=inserted.id, occurred_at=now, actor=actor, kind="received")
    record_audit(
        db,
        actor=actor,
        action="request.received",
        target=f"request:{reference}",
        detail={"type": type, "channel": channel} | ({"store_id": store_id} if store_id else {}),
        now=now,
        request_id=request_id,
    )
    return FiledRequest(id=inserted.id, reference=reference, type=type, received_at=now, due_at=due_at, created=True)


# Prebuilt Core inserts (issue 17): filing a request and every staff action write these rows; the ORM's objects
# and flush cost more than SQLite's commit of them (bench/README.md, "Issue 17: the writes"). Column defaults
# (status "received", version 1, visible_to_customer) apply to Core inserts as they did to the ORM's.
def _insert_unless_reference_taken(insert):  # type: ignore[no-untyped-def]
    table = PrivacyRequest.__table__
    return insert(table).on_conflict_do_nothing(index_elements=[table.c.reference]).returning(table.c.id)


# A taken reference inserts nothing and returns no row; any other conflict (a submission key filed at the same
# moment by a second click) still raises, as a plain insert would.
_INSERT_NEW_REFERENCE = per_dialect(_insert_unless_reference_taken)
_INSERT_EVENT = insert(RequestEvent.__table__)
_BY_SUBMISSION = select(
    PrivacyRequest.id,
    PrivacyRequest.reference,
    PrivacyRequest.type,
    PrivacyRequest.received_at,
    PrivacyRequest.due_at,
    PrivacyRequest.extended_due_at,
).where(PrivacyRequest.submission_key == bindparam("key"))
# What filing and a request's steps need of the customer: whether they are still here, and how to write to them.
ADDRESSEE = select(Customer.email, Customer.first_name, Customer.preferred_language, Customer.erased_at).where(
    Customer.id == bindparam("customer_id")
)


def record_request_event(
    db: Session | Connection,
    *,
    request_id: int,
    occurred_at: datetime,
    actor: str,
    kind: str,
    note: str | None = None,
    visible_to_customer: bool = True,
) -> None:
    """Add one step to a request's timeline, in the caller's transaction."""
    as_connection(db).execute(
        _INSERT_EVENT,
        {
            "request_id": request_id,
            "occurred_at": occurred_at,
            "actor": actor,
            "kind": kind,
            "note": note,
            "visible_to_customer": visible_to_customer,
        },
    )


def find_submission(db: Session | Connection, submission_key: str | None) -> FiledRequest | None:
    """The request a form's submission key already filed (a double click, a reload), if any."""
    if not submission_key:
        return None
    row = as_connection(db).execute(_BY_SUBMISSION, {"key": submission_key}).first()
    if row is None:
        return None
    return FiledRequest(
        id=row.id,
        reference=row.reference,
        type=row.type,
        received_at=row.received_at,
        due_at=row.extended_due_at or row.due_at,
        created=False,
    )


@dataclasses.dataclass(frozen=True)
class RequestSummary:
    reference: str
    type: str
    status: str
    channel: str
    received_at: datetime
    due_at: datetime
    extended: bool
    closed_at: datetime | None
    details: dict | None


@dataclasses.dataclass(frozen=True)
class TimelineStep:
    occurred_at: datetime
    kind: str
    note: str | None
    by_customer: bool


def _summary(request: PrivacyRequest) -> RequestSummary:
    return RequestSummary(
        reference=request.reference,
        type=request.type,
        status=request.status,
        channel=request.channel,
        received_at=request.received_at,
        due_at=request.effective_due_at,
        extended=request.extended_due_at is not None,
        closed_at=request.closed_at,
        details=request.details,
    )


REQUESTS_PAGE_SIZE = 25
_R = PrivacyRequest.__table__.c
_LIST_COLUMNS = (
    _R.id,
    _R.reference,
    _R.type,
    _R.status,
    _R.channel,
    _R.received_at,
    _R.due_at,
    _R.extended_due_at,
    _R.closed_at,
    _R.details,
)
# A page of the list, newest first: a seek on ix_privacy_request_customer (customer_id, received_at), limit + 1 rows.
_LIST_NEWEST = (
    select(*_LIST_COLUMNS)
    .where(_R.customer_id == bindparam("customer_id"))
    .order_by(_R.received_at.desc(), _R.id.desc())
    .limit(limit_parameter())
)
# Spelled as a range plus a tie-breaker rather than a row value, so both engines seek in the index (as purchases).
_BEFORE_AT: BindParameter[datetime] = bindparam("before_at", type_=_R.received_at.type)
_LIST_OLDER = _LIST_NEWEST.where(
    _R.received_at <= _BEFORE_AT, or_(_R.received_at < _BEFORE_AT, _R.id < bindparam("before_id"))
)
# The page's cursor: one of the customer's own requests, by its public reference (no date, no id in URLs).
_LIST_CURSOR = select(_R.id, _R.received_at).where(
    _R.reference == bindparam("reference"), _R.customer_id == bindparam("customer_id")
)


class InvalidRequestsCursor(ValueError):
    """The link to older requests names no request of this customer."""


@dataclasses.dataclass(frozen=True)
class RequestsPage:
    """One page of the customer's requests, newest first."""

    requests: list[RequestSummary]
    after: str | None  # the reference this page starts after (None: the newest requests)
    next_after: str | None  # the cursor of the following page, None on the last one


def requests_of(
    db: Session | Connection, *, customer_id: int, after: str | None = None, page_size: int = REQUESTS_PAGE_SIZE
) -> RequestsPage:
    """The customer's requests, newest first, `page_size` at a time after the request `after` (a reference): a page
    costs the same whatever the number of requests. Raises InvalidRequestsCursor for a reference not theirs."""
    connection = as_connection(db)
    params: dict[str, object] = {"customer_id": customer_id, "limit": page_size + 1}
    statement = _LIST_NEWEST
    canonical = None
    if after is not None:
        canonical = normalise_reference(after)
        cursor = (
            connection.execute(_LIST_CURSOR, {"reference": canonical, "customer_id": customer_id}).first()
            if canonical
            else None
        )
        if cursor is None:
            raise InvalidRequestsCursor(after)
        statement = _LIST_OLDER
        params.update(before_id=cursor.id, before_at=cursor.received_at)
    rows = connection.execute(statement, params).all()
    summaries = [
        RequestSummary(
            reference=reference,
            type=type_,
            status=status,
            channel=channel,
            received_at=received_at,
            due_at=extended_due_at or due_at,
            extended=extended_due_at is not None,
            closed_at=closed_at,
            details=details,
        )
        for _id, reference, type_, status, channel, received_at, due_at, extended_due_at, closed_at, details in rows[
            :page_size
        ]
    ]
    next_after = summaries[-1].reference if len(rows) > page_size else None
    return RequestsPage(requests=summaries, after=canonical, next_after=next_after)


def find_request(session: Session, reference: str, *, customer_id: int | None = None) -> PrivacyRequest | None:
    """The request a typed reference names (None for a malformed or unknown one); with `customer_id`, only if it is
    that customer's, so that another customer's reference looks exactly like an unknown one."""
    canonical = normalise_reference(reference)
    if canonical is None:
        return None
    query = select(PrivacyRequest).where(PrivacyRequest.reference == canonical)
    if customer_id is not None:
        query = query.where(PrivacyRequest.customer_id == customer_id)
    return session.scalars(query).first()


def request_of(session: Session, *, customer_id: int, reference: str) -> tuple[RequestSummary, list[TimelineStep]]:
    """One of the customer's requests with the steps of its timeline they may see."""
    request = find_request(session, reference, customer_id=customer_id)
    if request is None:
        raise RequestNotFound(reference)
    events = session.scalars(
        select(RequestEvent)
        .where(RequestEvent.request_id == request.id, RequestEvent.visible_to_customer.is_(True))
        .order_by(RequestEvent.occurred_at, RequestEvent.id)
    )
    steps = [
        TimelineStep(occurred_at=e.occurred_at, kind=e.kind, note=e.note, by_customer=e.actor.startswith("customer:"))
        for e in events
    ]
    return _summary(request), steps


# --- Requests the customer makes on the portal -------------------------------------------------------------------

# What the "Make a request" page offers (rectification starts from the profile page, access and portability from
# the data pages).
CUSTOMER_REQUEST_TYPES = ("erasure", "objection", "restriction", "other")
# Asking twice for the same erasure while the first is open would only make two agents do the same work.
ONE_OPEN_AT_A_TIME = ("erasure", "objection", "restriction")
OPEN_PER_TYPE = 3  # open requests of one other type (questions, corrections) a customer may have at once
REQUESTS_PER_DAY = 10  # requests a customer may file a day from the portal
# Art. 18(1)(a)–(d): why the customer wants their data kept but not used.
RESTRICTION_GROUNDS = ("accuracy", "unlawful", "legal_claims", "objection_pending")
RESTRICTION_GROUND_LABELS = {
    "accuracy": lazy_gettext("I think my data is wrong, and you are checking it"),
    "unlawful": lazy_gettext("I think you should not use my data, but I prefer you keep it rather than erase it"),
    "legal_claims": lazy_gettext("You no longer need my data, but I need it kept for a legal claim"),
    "objection_pending": lazy_gettext("I objected to a use of my data, and you are checking whose reasons prevail"),
}
MESSAGE_LIMIT = 2000
FORM_MESSAGES = {
    "confirm_required": lazy_gettext("Tick the box to confirm that you understand what will happen."),
    "message_required": lazy_gettext("Write your question."),
    "message_too_long": lazy_gettext("Keep your message under 2,000 characters."),
    "ground_invalid": lazy_gettext("Choose one of the reasons in the list, or none."),
}


class RequestFormInvalid(ValueError):
    def __init__(self, errors: dict[str, str], values: Mapping[str, str]) -> None:
        super().__init__("invalid request form")
        self.errors = errors
        self.values = values


class TooManyRequests(Exception):
    """The customer filed as many requests today as anyone reasonably would; the next one can wait."""

    def __init__(self, retry_after: timedelta) -> None:
        super().__init__("too many requests")
        self.retry_after = retry_after


class TooManyOpen(Exception):
    """The customer already has OPEN_PER_TYPE open requests of this type: follow those first."""


class AlreadyRequested(Exception):
    """The customer already has an open request of this type; `reference` is the one to follow."""

    def __init__(self, reference: str) -> None:
        super().__init__(reference)
        self.reference = reference


def clean_request_form(type: str, form: Mapping[str, str]) -> tuple[dict[str, object], dict[str, str]]:
    """The details to file (the customer's words, their confirmation) and the errors, by field."""
    message = (form.get("message") or "").strip()
    errors: dict[str, str] = {}
    details: dict[str, object] = {}
    if type == "other":
        if not message:
            errors["message"] = "message_required"
    elif form.get("confirm") != "yes":
        errors["confirm"] = "confirm_required"
    else:
        details["confirmed"] = True
    if len(message) > MESSAGE_LIMIT:
        errors["message"] = "message_too_long"
    if message:
        details["message"] = message
    if type == "restriction":
        ground = (form.get("ground") or "").strip()
        if ground and ground not in RESTRICTION_GROUNDS:
            errors["ground"] = "ground_invalid"
        elif ground:
            details["ground"] = ground
    return details, errors


# The customer's open requests, read through their own index (customer_id, received_at), the type picked here: with
# `type = ?` in the WHERE, SQLite preferred the queue's (type, received_at) index and walked every request of that
# type, so filing slowed as the queue grew (bench/README.md, "Issue 17: the writes"). A customer has a handful.
OPEN_OF_CUSTOMER = (
    select(PrivacyRequest.reference, PrivacyRequest.type, PrivacyRequest.details)
    .where(PrivacyRequest.customer_id == bindparam("customer_id"), PrivacyRequest.status.in_(OPEN_STATUSES))
    .order_by(PrivacyRequest.received_at)
)


def admit_customer_request(
    db: Session | Connection, *, customer_id: int, type: str, details: Mapping[str, object], now: datetime
) -> None:
    """The limits on what a customer files themselves, each request of which emails them and lands in a queue.

    The same request again while the first is open answers with the first (AlreadyRequested), as does any second
    one of the ONE_OPEN_AT_A_TIME types; at most OPEN_PER_TYPE open of the others (TooManyOpen); at most
    REQUESTS_PER_DAY a day (TooManyRequests). Staff and store filings are not limited: a person answers for them.
    """
    open_ones = [
        (reference, held)
        for reference, held_type, held in as_connection(db).execute(OPEN_OF_CUSTOMER, {"customer_id": customer_id})
        if held_type == type
    ]
    wanted = _comparable(details)
    for reference, held in open_ones:
        if type in ONE_OPEN_AT_A_TIME or _comparable(held) == wanted:
            raise AlreadyRequested(reference)
    if len(open_ones) >= OPEN_PER_TYPE:
        raise TooManyOpen(type)
    # Counted in the transaction that files the request: a refused one counts nothing.
    result = ratelimit.hit(
        db, key=f"requests:customer:{customer_id}", limit=REQUESTS_PER_DAY, window=timedelta(days=1), now=now
    )
    if not result.allowed:
        raise TooManyRequests(result.retry_after)


def _comparable(details: Mapping[str, object] | None) -> dict[str, object]:
    """What makes two requests the same request: their content, whitespace and case aside."""
    return {
        key: " ".join(value.split()).casefold() if isinstance(value, str) else value
        for key, value in (details or {}).items()
        if key != "confirmed"
    }


def make_request(
    db: Session | Connection,
    *,
    composer: EmailComposer,
    customer_id: int,
    type: str,
    form: Mapping[str, str],
    language: str,
    now: datetime,
    timezone: str,
    request_id: str | None = None,
    channel: str = "web",
    actor: str | None = None,
    store_id: int | None = None,
) -> FiledRequest:
    """File the customer's request from the portal form and acknowledge it by email (reference and due date).

    The acknowledgement is in `language`, the one the customer is reading the page in. Raises RequestFormInvalid,
    AlreadyRequested, or LookupError for a type the form does not offer or a customer who is gone. The form's
    submission key makes a double click, a reload or a retry file one request.
    """
    if type not in CUSTOMER_REQUEST_TYPES:
        raise LookupError(type)
    customer = as_connection(db).execute(ADDRESSEE, {"customer_id": customer_id}).first()
    if customer is None or customer.erased_at is not None:
        raise LookupError(customer_id)
    details, errors = clean_request_form(type, form)
    if errors:
        raise RequestFormInvalid(errors, dict(form))
    key = (form.get("submission_key") or "").strip()[:40] or None
    submission_key = f"{customer_id}:{key}" if key else None
    earlier = find_submission(db, submission_key)
    if earlier is not None:
        return earlier
    admit_customer_request(db, customer_id=customer_id, type=type, details=details, now=now)
    filed = file_request(
        db,
        customer_id=customer_id,
        type=type,
        channel=channel,
        now=now,
        actor=actor or f"customer:{customer_id}",
        store_id=store_id,
        details=details,
        submission_key=submission_key,
        timezone=timezone,
        request_id=request_id,
        submission_checked=True,
    )
    if customer.email:
        acknowledge_receipt(db, customer, filed, composer=composer, language=language, now=now)
    return filed


class Addressee(Protocol):
    """Whom an acknowledgement is written to: a Customer, or the row of its columns that filing reads."""

    @property
    def email(self) -> str | None: ...
    @property
    def first_name(self) -> str | None: ...
    @property
    def preferred_language(self) -> str | None: ...


def acknowledge_receipt(
    db: Session | Connection,
    customer: Addressee,
    filed: FiledRequest,
    *,
    composer: EmailComposer,
    language: str,
    now: datetime,
) -> None:
    """Queue the "we received your request" email, with its reference and due date (the caller checks the address)."""
    enqueue_email(
        db,
        email=composer.compose(
            "request-received",
            to=customer.email,
            language=email_language(customer.preferred_language, acting_on_page=language),
            context={
                "first_name": customer.first_name or "",
                "reference": filed.reference,
                "type": filed.type,
                "received_at": filed.received_at,
                "due_at": filed.due_at,
            },
        ),
        topic="request-received",
        now=now,
    )
