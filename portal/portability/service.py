"""Downloads as requests, and the emailed download link. Plain values in, plain objects out; no HTTP here.

A download from the portal is itself an access/portability request (Art. 15 and 20): it is filed when the download
starts (its reference is written into the archive), completed when the last byte has left, and cancelled when the
customer went away before that, so the timeline and the audit trail say what really happened.

A request filed elsewhere (in store, by support) is answered with an emailed link (`send_download_link`). The link
names the request, not the person: it is signed with the server's key and carries its own expiry (7 days), so no
table is needed, and it only works in a browser signed in as that request's customer — i.e. after they proved
again that they control the email address on file.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import select, update
from sqlmodel import Session

from portal.audit import record_audit
from portal.errors import CustomerNotFound
from portal.i18n import email_language, gettext
from portal.labels import system_note
from portal.mail.compose import EmailComposer
from portal.models import Customer, PrivacyRequest
from portal.models.requests import OPEN_STATUSES
from portal.outbox.enqueue import enqueue_email
from portal.portability.archive import ArchiveProgress
from portal.requests import workflow
from portal.requests.service import file_request, find_request, normalise_reference, record_request_event
from portal.settings import Settings

LINK_VALIDITY = timedelta(days=7)
LINK_SALT = "portal.download-link"
# An archive answers these; a link for, say, an erasure request would be a mistake by whoever sends it.
LINK_REQUEST_TYPES = ("access", "portability")


class LinkRejected(Exception):
    """The download link cannot be used; `reason` is invalid | expired | not_yours."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class DownloadLinkRefused(ValueError):
    """The link cannot be sent; `message` is a translated sentence for the agent."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclasses.dataclass(frozen=True)
class DownloadStart:
    reference: str  # the request the archive answers
    via_link: bool


# --- The link -------------------------------------------------------------------------------------------------


# A download started from the portal files its request marked so; one that has not finished after this long was
# cut off by a crash or a restart (a finished or interrupted one is closed at once by finish_download).
DOWNLOAD_MARK = "portal_download"
ABANDONED_AFTER = timedelta(hours=2)


def _serializer(secret_key: str) -> URLSafeSerializer:
    return URLSafeSerializer(secret_key, salt=LINK_SALT)


def link_token(secret_key: str, *, reference: str, expires_at: datetime) -> str:
    return _serializer(secret_key).dumps({"r": reference, "e": int(expires_at.timestamp())})


def read_link_token(secret_key: str, token: str, *, now: datetime) -> str:
    """The reference a link was made for; LinkRejected("invalid" | "expired") otherwise."""
    try:
        payload = _serializer(secret_key).loads(token)
    except BadSignature as exc:
        raise LinkRejected("invalid") from exc
    reference = normalise_reference(str(payload.get("r", ""))) if isinstance(payload, dict) else None
    expires = payload.get("e") if isinstance(payload, dict) else None
    if reference is None or not isinstance(expires, int):
        raise LinkRejected("invalid")
    if now >= datetime.fromtimestamp(expires, tz=UTC):
        raise LinkRejected("expired")
    return reference


def link_request_of(session: Session, *, reference: str, customer_id: int) -> PrivacyRequest:
    """The request a link names, if it is this customer's; otherwise LinkRejected("not_yours") (one answer for a
    reference that does not exist and another customer's, so references cannot be probed)."""
    request = session.scalars(
        select(PrivacyRequest).where(PrivacyRequest.reference == reference, PrivacyRequest.customer_id == customer_id)
    ).first()
    if request is None:
        raise LinkRejected("not_yours")
    return request


def send_download_link(
    session: Session,
    *,
    customer_id: int,
    reference: str,
    actor: str,
    now: datetime,
    composer: EmailComposer,
    settings: Settings,
    request_id: str | None = None,
) -> None:
    """Email the customer a link to download their archive, valid 7 days, for an access or portability request.

    Raises DownloadLinkRefused when the request is not this customer's, is of another type, or the customer has no
    address (erased, or never gave one).
    """
    request = find_request(session, reference, customer_id=customer_id)
    if request is None:
        raise DownloadLinkRefused(gettext("This request does not belong to this customer."))
    if request.type not in LINK_REQUEST_TYPES:
        raise DownloadLinkRefused(gettext("A download link answers an access or portability request only."))
    customer = session.get(Customer, customer_id)
    if customer is None or customer.erased_at is not None or not customer.email:
        raise DownloadLinkRefused(gettext("This customer has no email address we could send the link to."))

    expires_at = now + LINK_VALIDITY
    token = link_token(settings.secret_key, reference=request.reference, expires_at=expires_at)
    email = composer.compose(
        "download-link",
        to=customer.email,
        language=email_language(customer.preferred_language),  # staff send it: the customer's own language
        context={
            "first_name": customer.first_name or "",
            "reference": request.reference,
            "link": f"{settings.base_url}/me/download/link?token={token}",
            "expires_at": expires_at,
            "days": LINK_VALIDITY.days,
        },
    )
    enqueue_email(session, email=email, topic="download-link", now=now)
    note = system_note("download_link_sent")  # read in the reader's language, wherever it is shown
    record_request_event(session, request_id=request.id, occurred_at=now, actor=actor, kind="message", note=note)
    # The timeline changed: agents holding the older version must reload before they act (optimistic locking).
    session.execute(
        update(PrivacyRequest).where(PrivacyRequest.id == request.id).values(version=PrivacyRequest.version + 1)
    )
    record_audit(
        session,
        actor=actor,
        action="portability.link_sent",
        target=f"request:{request.reference}",
        detail={"expires_at": expires_at.isoformat()},
        now=now,
        request_id=request_id,
    )


# --- A download, from start to end ---------------------------------------------------------------------------------


def start_download(
    session: Session,
    *,
    customer_id: int,
    now: datetime,
    link_reference: str | None = None,
    timezone: str,
    request_id: str | None = None,
) -> DownloadStart:
    """File the request the archive answers (or find the one the link names) before the first byte is written."""
    customer = session.get(Customer, customer_id)
    if customer is None or customer.erased_at is not None:
        raise CustomerNotFound(customer_id)
    actor = f"customer:{customer_id}"
    if link_reference is not None:
        request = link_request_of(session, reference=link_reference, customer_id=customer_id)
        record_audit(
            session,
            actor=actor,
            action="portability.link_used",
            target=f"request:{request.reference}",
            now=now,
            request_id=request_id,
        )
        return DownloadStart(reference=request.reference, via_link=True)
    filed = file_request(
        session,
        customer_id=customer_id,
        type="portability",
        channel="web",
        now=now,
        actor=actor,
        details={DOWNLOAD_MARK: True},
        timezone=timezone,
        request_id=request_id,
    )
    return DownloadStart(reference=filed.reference, via_link=False)


def close_abandoned_downloads(session: Session, *, now: datetime) -> int:
    """Cancel the requests of portal downloads that never reached `finish_download` (the process died mid-way):
    without this they would stay open for ever, due in a month, for a download nobody is waiting for."""
    candidates = session.scalars(
        select(PrivacyRequest).where(
            PrivacyRequest.type == "portability",
            PrivacyRequest.status.in_(OPEN_STATUSES),
            PrivacyRequest.received_at < now - ABANDONED_AFTER,
        )
    ).all()
    closed = 0
    for request in candidates:
        if not (request.details or {}).get(DOWNLOAD_MARK):
            continue  # filed by support or in store, answered by an emailed link: it waits for the customer
        workflow.close_own_download(
            session, reference=request.reference, actor="system", now=now, finished=False, request_id=None
        )
        record_audit(
            session,
            actor="system",
            action="portability.download_abandoned",
            target=f"request:{request.reference}",
            now=now,
        )
        closed += 1
    return closed


def finish_download(
    session: Session,
    *,
    start: DownloadStart,
    customer_id: int,
    now: datetime,
    progress: ArchiveProgress,
    request_id: str | None = None,
) -> None:
    """Complete the request once the whole archive left; record an interruption (and cancel a portal download's
    request) when the customer went away before the end."""
    actor = f"customer:{customer_id}"
    target = f"request:{start.reference}"
    via = "link" if start.via_link else "portal"
    if progress.finished:
        status = session.scalars(select(PrivacyRequest.status).where(PrivacyRequest.reference == start.reference)).one()
        if status in OPEN_STATUSES:
            workflow.close_own_download(
                session,
                reference=start.reference,
                actor=actor,
                now=now,
                finished=True,
                outcome=system_note("downloaded"),
                request_id=request_id,
            )
        record_audit(
            session,
            actor=actor,
            action="portability.archive_delivered",
            target=target,
            detail={"via": via, "files": len(progress.files), "rows": progress.rows, "bytes": progress.bytes_out},
            now=now,
            request_id=request_id,
        )
        return
    record_audit(
        session,
        actor=actor,
        action="portability.download_interrupted",
        target=target,
        detail={"via": via, "bytes": progress.bytes_out},
        now=now,
        request_id=request_id,
    )
    if not start.via_link:  # a link's request stays open: the customer may try again while the link lasts
        workflow.close_own_download(
            session, reference=start.reference, actor=actor, now=now, finished=False, request_id=request_id
        )
