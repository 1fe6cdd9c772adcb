"""Customer sign-in by emailed link or 6-digit code (DESIGN §5).

Link token and code come from `secrets` and are stored as keyed hashes; consuming them is one UPDATE that can
succeed once. The answer to "send me a link" is the same whether or not the address is known: an unknown address
gets an email saying we hold nothing for it, and a challenge that can never succeed, so timing and pages match.
"""

from __future__ import annotations

import dataclasses
import re
import secrets
from datetime import datetime, timedelta

from sqlalchemy import Connection, bindparam, insert, select, update
from sqlmodel import Session

from portal.audit import record_audit
from portal.db import as_connection
from portal.i18n import email_language
from portal.identity import ratelimit
from portal.identity.keys import keyed_hash, same_hash
from portal.identity.sessions import end_session, open_session
from portal.mail.compose import EmailComposer
from portal.models import Customer, LoginChallenge, email_key
from portal.outbox.enqueue import enqueue_email
from portal.settings import Settings

# Deliberately loose: the mailbox proves the address; this only catches typos before we send anything.
CODE_FAILURE_WINDOW = timedelta(days=1)
EMAIL_SHAPE = re.compile(r"^[^@\s<>\"',;]+@[^@\s<>\"',;]+\.[^@\s<>\"',;.]{2,}$")


class SignInError(Exception):
    """Base of the expected failures; views turn each into a clear page, never a 500."""


class InvalidEmail(SignInError):
    pass


class TooManyAttempts(SignInError):
    def __init__(self, retry_after: timedelta) -> None:
        super().__init__("rate limited")
        self.retry_after = retry_after


class LinkRejected(SignInError):
    """reason: invalid (unknown or tampered), expired, used (or voided by a newer request)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CodeRejected(SignInError):
    """reason: wrong (tries remain), exhausted (no tries left), expired (or used, voided, unknown flow)."""

    def __init__(self, reason: str, remaining: int = 0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.remaining = remaining


@dataclasses.dataclass(frozen=True)
class SignedIn:
    customer_id: int
    session_id: str  # raw id for the cookie
    language: str


# Statements built once, run on the session's connection: rebuilding them on every sign-in cost more than SQLite's
# answer (bench/README.md, "Issue 17: the writes"). Same rows as the ORM wrote, without its objects and flush.
_CHALLENGE = LoginChallenge.__table__.c
_CUSTOMER = Customer.__table__.c
_FIND_CUSTOMER = select(_CUSTOMER.id, _CUSTOMER.first_name, _CUSTOMER.preferred_language).where(
    _CUSTOMER.email_key == bindparam("email_key"), _CUSTOMER.erased_at.is_(None)
)
_INSERT_CHALLENGE = insert(LoginChallenge.__table__)
# One conditional UPDATE counts the try and hands back what checking the code needs: no second read.
_COUNT_CODE_TRY = (
    update(LoginChallenge.__table__)
    .where(
        _CHALLENGE.flow_id == bindparam("flow"),
        _CHALLENGE.attempts < bindparam("allowed"),
        _CHALLENGE.used_at.is_(None),
        _CHALLENGE.voided_at.is_(None),
        _CHALLENGE.expires_at > bindparam("now"),
    )
    .values(attempts=_CHALLENGE.attempts + 1)
    .returning(
        _CHALLENGE.id,
        _CHALLENGE.attempts,
        _CHALLENGE.flow_id,
        _CHALLENGE.customer_id,
        _CHALLENGE.code_hash,
        _CHALLENGE.email_digest,
        _CHALLENGE.language,
    )
)
_EXHAUSTED = select(_CHALLENGE.id).where(
    _CHALLENGE.flow_id == bindparam("flow"), _CHALLENGE.attempts >= bindparam("allowed")
)
_CONSUME = (
    update(LoginChallenge.__table__)
    .where(
        _CHALLENGE.id == bindparam("challenge"),
        _CHALLENGE.used_at.is_(None),
        _CHALLENGE.voided_at.is_(None),
        _CHALLENGE.expires_at > bindparam("now"),
    )
    .values(used_at=bindparam("used_at"))
)


def normalise_email(raw: str) -> str:
    """The address as typed, trimmed; raises InvalidEmail when it cannot be an address."""
    address = (raw or "").strip()
    if len(address) > 254 or not EMAIL_SHAPE.match(address):
        raise InvalidEmail(address)
    return address


def _code_hash(settings: Settings, flow_id: str, code: str) -> str:
    # The flow id salts the code: a million possible codes must not share one hash table across challenges.
    return keyed_hash(settings.secret_key, "login-code", f"{flow_id}:{code}")


def _token_hash(settings: Settings, token: str) -> str:
    return keyed_hash(settings.secret_key, "login-token", token)


def _limit(db: Session | Connection, *, key: str, limit: int, settings: Settings, now: datetime) -> None:
    result = ratelimit.hit(db, key=key, limit=limit, window=settings.rate_limit_window, now=now)
    if not result.allowed:
        raise TooManyAttempts(result.retry_after)


def request_sign_in(
    db: Session | Connection,
    *,
    settings: Settings,
    composer: EmailComposer,
    email: str,
    language: str,
    ip: str,
    now: datetime,
    request_id: str | None = None,
) -> str:
    """Send a sign-in email to `email` and return the flow id the code form is tied to.

    Raises InvalidEmail or TooManyAttempts (per IP). Beyond the per-address limit nothing is sent and the answer
    is the same. Earlier links stay valid until used or expired: a newer request (perhaps someone else's, typing the
    address) never voids the link its owner already has. Rate limits are committed by the caller even when it
    raises, so call it in its own transaction.
    """
    address = normalise_email(email)
    key = email_key(address)
    email_digest = keyed_hash(settings.secret_key, "email", key)
    _limit(db, key=f"signin:ip:{ip}", limit=settings.signin_limit_per_ip, settings=settings, now=now)
    per_address = ratelimit.hit(
        db,
        key=f"signin:email:{email_digest}",
        limit=settings.signin_limit_per_email,
        window=settings.rate_limit_window,
        now=now,
    )
    if not per_address.allowed:
        # Whoever floods an address must not lock its owner out: no 429 (which the owner would get too) and no
        # new email; the links already sent stay valid, since a new request no longer voids the live ones.
        record_audit(db, actor="anonymous", action="signin.throttled", detail=None, now=now, request_id=request_id)
        return secrets.token_urlsafe(24)

    connection = as_connection(db)
    customer = connection.execute(_FIND_CUSTOMER, {"email_key": key}).first()

    flow_id = secrets.token_urlsafe(24)
    token = secrets.token_urlsafe(32)
    code = f"{secrets.randbelow(1_000_000):06d}"
    connection.execute(
        _INSERT_CHALLENGE,
        {
            "flow_id": flow_id,
            "email_digest": email_digest,
            "customer_id": customer.id if customer else None,
            "token_hash": _token_hash(settings, token),
            # An unknown address gets a code hash nobody knows the code of.
            "code_hash": _code_hash(settings, flow_id, code if customer else secrets.token_urlsafe(16)),
            "language": language,
            "created_at": now,
            "expires_at": now + settings.login_ttl,
            "attempts": 0,
            "used_at": None,
            "voided_at": None,
        },
    )
    minutes = int(settings.login_ttl.total_seconds() // 60)
    language = email_language(customer.preferred_language if customer else None, acting_on_page=language)
    if customer:
        message = composer.compose(
            "sign-in",
            to=address,
            language=language,
            context={
                "link": f"{settings.base_url}/signin/link?token={token}",
                "code": code,
                "minutes": minutes,
                "first_name": customer.first_name or "",
            },
        )
        topic = "sign-in"
    else:
        message = composer.compose(
            "sign-in-unknown", to=address, language=language, context={"portal_url": settings.base_url}
        )
        topic = "sign-in-unknown"
    enqueue_email(db, email=message, topic=topic, now=now)
    record_audit(
        db,
        actor="anonymous",
        action="signin.requested",
        target=f"customer:{customer.id}" if customer else None,
        detail=None if customer else {"address": "unknown"},
        now=now,
        request_id=request_id,
    )
    return flow_id


def _live_challenge(session: Session, token_hash: str) -> LoginChallenge | None:
    return session.scalars(select(LoginChallenge).where(LoginChallenge.token_hash == token_hash)).first()


def check_link(session: Session, *, settings: Settings, token: str, now: datetime) -> None:
    """Raise LinkRejected unless the link could sign in now (looking does not consume it)."""
    challenge = _live_challenge(session, _token_hash(settings, token or ""))
    if challenge is None or challenge.customer_id is None:
        raise LinkRejected("invalid")
    if challenge.used_at is not None or challenge.voided_at is not None:
        raise LinkRejected("used")
    if now >= challenge.expires_at or challenge.attempts >= settings.code_attempts:
        raise LinkRejected("expired")


def _consume(db: Session | Connection, challenge_id: int, now: datetime) -> bool:
    """Mark the challenge used; True for the one caller whose UPDATE won."""
    result = as_connection(db).execute(_CONSUME, {"challenge": challenge_id, "now": now, "used_at": now})
    return result.rowcount == 1


def _signed_in(
    db: Session | Connection,
    *,
    settings: Settings,
    customer_id: int,
    language: str,
    method: str,
    now: datetime,
    request_id: str | None,
    kind: str = "customer",
    staff_id: int | None = None,
) -> SignedIn:
    raw_id = open_session(db, settings=settings, kind=kind, customer_id=customer_id, now=now, staff_id=staff_id)
    record_audit(
        db,
        actor=f"customer:{customer_id}",
        action="signin.succeeded",
        target=f"customer:{customer_id}",
        detail={"method": method} if staff_id is None else {"method": method, "assisted_by": f"staff:{staff_id}"},
        now=now,
        request_id=request_id,
    )
    return SignedIn(customer_id=customer_id, session_id=raw_id, language=language)


def sign_in_with_link(
    session: Session, *, settings: Settings, token: str, now: datetime, request_id: str | None = None
) -> SignedIn:
    """Exchange the emailed link for a session (once). Raises LinkRejected."""
    check_link(session, settings=settings, token=token, now=now)
    challenge = _live_challenge(session, _token_hash(settings, token))
    assert challenge is not None and challenge.id is not None and challenge.customer_id is not None
    if not _consume(session, challenge.id, now):
        raise LinkRejected("used")  # another request consumed it between our read and our write
    return _signed_in(
        session,
        settings=settings,
        customer_id=challenge.customer_id,
        language=challenge.language,
        method="link",
        now=now,
        request_id=request_id,
    )


def sign_in_with_code(
    db: Session | Connection,
    *,
    settings: Settings,
    flow_id: str,
    code: str,
    ip: str,
    now: datetime,
    request_id: str | None = None,
    kind: str = "customer",
    staff_id: int | None = None,
) -> SignedIn:
    """Exchange the 6-digit code of flow `flow_id` for a session. Raises CodeRejected or TooManyAttempts.

    Each try is counted by one conditional UPDATE, so parallel guesses cannot exceed the allowed tries. A store
    tablet opens a session of kind "tablet" tied to the staff member assisting (`staff_id`).
    """
    _limit(db, key=f"code:ip:{ip}", limit=settings.signin_limit_per_ip, settings=settings, now=now)
    code = "".join(ch for ch in (code or "") if not ch.isspace())
    connection = as_connection(db)
    tried = {"flow": flow_id or "", "allowed": settings.code_attempts}
    challenge = connection.execute(_COUNT_CODE_TRY, {**tried, "now": now}).first()
    if challenge is None:
        exhausted = connection.execute(_EXHAUSTED, tried).first()
        raise CodeRejected("exhausted" if exhausted else "expired")
    # Codes are 6 digits: wrong codes are capped per address per day, after which only the link signs in, so that
    # guessing across new challenges stays hopeless (10 a day: 1 chance in 3,000 a month).
    failures_key = f"codefail:{challenge.email_digest}"
    if ratelimit.count(db, key=failures_key, window=CODE_FAILURE_WINDOW, now=now) >= settings.code_failures_per_day:
        raise CodeRejected("codes_off")
    remaining = settings.code_attempts - challenge.attempts
    valid = (
        len(code) == 6
        and code.isdigit()
        and same_hash(_code_hash(settings, challenge.flow_id, code), challenge.code_hash)
    )
    if not valid or challenge.customer_id is None:
        ratelimit.hit(db, key=failures_key, limit=settings.code_failures_per_day, window=CODE_FAILURE_WINDOW, now=now)
        record_audit(
            db,
            actor="anonymous",
            action="signin.code_failed",
            target=f"customer:{challenge.customer_id}" if challenge.customer_id else None,
            detail={"remaining": remaining},
            now=now,
            request_id=request_id,
        )
        raise CodeRejected("wrong" if remaining > 0 else "exhausted", remaining=remaining)
    if not _consume(db, challenge.id, now):
        raise CodeRejected("expired")
    return _signed_in(
        db,
        settings=settings,
        customer_id=challenge.customer_id,
        language=challenge.language,
        method="code",
        now=now,
        request_id=request_id,
        kind=kind,
        staff_id=staff_id,
    )


def sign_out(
    session: Session, *, settings: Settings, raw_id: str, now: datetime, request_id: str | None = None
) -> None:
    """End the customer's session on the server, and audit it (an unknown or ended session has nothing to end)."""
    customer_id = end_session(session, settings=settings, raw_id=raw_id, now=now)
    if customer_id is not None:
        record_audit(
            session,
            actor=f"customer:{customer_id}",
            action="signout",
            target=f"customer:{customer_id}",
            now=now,
            request_id=request_id,
        )
