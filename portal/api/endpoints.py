"""The retailer's webhook endpoints: added, listed, disabled, re-enabled, their secrets rotated; each change audited.

Secrets are shown once, when made; listings never include them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlmodel import Session

from portal.audit import record_audit
from portal.models import WEBHOOK_TOPICS, WebhookEndpoint
from portal.outbox.signing import new_secret


class EndpointRefused(ValueError):
    """The URL, topics or description cannot be accepted; the message says why. Nothing was saved."""


class EndpointNotFound(LookupError):
    pass


@dataclasses.dataclass(frozen=True)
class EndpointSummary:
    id: int
    url: str
    topics: tuple[str, ...]
    description: str
    created_at: datetime
    disabled_at: datetime | None

    @property
    def active(self) -> bool:
        return self.disabled_at is None


@dataclasses.dataclass(frozen=True)
class NewSecret:
    endpoint_id: int
    secret: str


def clean_topics(topics: Iterable[str]) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(t.strip() for t in topics if t.strip()))
    if not chosen:
        raise EndpointRefused(f"choose at least one topic among {', '.join(WEBHOOK_TOPICS)}")
    unknown = [t for t in chosen if t not in WEBHOOK_TOPICS]
    if unknown:
        raise EndpointRefused(f"unknown topic {', '.join(unknown)}; known topics: {', '.join(WEBHOOK_TOPICS)}")
    return chosen


def clean_url(url: str, *, require_https: bool) -> str:
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise EndpointRefused(f"{url!r} is not an absolute http(s) URL")
    if require_https and parts.scheme != "https":
        raise EndpointRefused("webhook URLs must use https in production: events are signed, not encrypted")
    if parts.username or parts.password:
        raise EndpointRefused("put no credentials in the URL: deliveries are authenticated by their signature")
    if len(url) > 500:
        raise EndpointRefused("the URL is longer than 500 characters")
    return url


def _target(endpoint_id: int) -> str:
    return f"webhook_endpoint:{endpoint_id}"


def add_endpoint(
    session: Session,
    *,
    url: str,
    topics: Iterable[str],
    description: str = "",
    require_https: bool,
    actor: str,
    now: datetime,
) -> NewSecret:
    """Register a receiver; returns its id and its signing secret (shown once). Raises EndpointRefused."""
    url = clean_url(url, require_https=require_https)
    chosen = clean_topics(topics)
    description = " ".join(description.split())
    if len(description) > 100:
        raise EndpointRefused("the description is longer than 100 characters")
    secret = new_secret()
    endpoint = WebhookEndpoint(url=url, topics=" ".join(chosen), secret=secret, description=description, created_at=now)
    session.add(endpoint)
    session.flush()
    # The host names the receiver in the trail; the path and query could hold a receiver's own token.
    endpoint_id: int = endpoint.id  # type: ignore[assignment]  # an id: set since the row was flushed
    detail = {"host": urlsplit(url).hostname, "topics": list(chosen)}
    record_audit(
        session, actor=actor, action="webhook_endpoint.added", target=_target(endpoint_id), detail=detail, now=now
    )
    return NewSecret(endpoint_id=endpoint_id, secret=secret)


def list_endpoints(session: Session) -> list[EndpointSummary]:
    endpoints = session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.id))
    return [
        EndpointSummary(
            id=e.id,
            url=e.url,
            topics=tuple(e.topics.split()),
            description=e.description,
            created_at=e.created_at,
            disabled_at=e.disabled_at,
        )
        for e in endpoints
    ]


def _endpoint(session: Session, endpoint_id: int) -> WebhookEndpoint:
    endpoint = session.get(WebhookEndpoint, endpoint_id, with_for_update=True)
    if endpoint is None:
        raise EndpointNotFound(endpoint_id)
    return endpoint


def disable_endpoint(session: Session, *, endpoint_id: int, actor: str, now: datetime) -> bool:
    """Stop delivering to the endpoint; its pending deliveries wait (nothing is lost). False if already disabled."""
    endpoint = _endpoint(session, endpoint_id)
    if endpoint.disabled_at is not None:
        return False
    endpoint.disabled_at = now
    record_audit(session, actor=actor, action="webhook_endpoint.disabled", target=_target(endpoint_id), now=now)
    return True


def enable_endpoint(session: Session, *, endpoint_id: int, actor: str, now: datetime) -> bool:
    """Resume deliveries, the waiting ones first. False if it was active."""
    endpoint = _endpoint(session, endpoint_id)
    if endpoint.disabled_at is None:
        return False
    endpoint.disabled_at = None
    record_audit(session, actor=actor, action="webhook_endpoint.enabled", target=_target(endpoint_id), now=now)
    return True


def rotate_secret(session: Session, *, endpoint_id: int, actor: str, now: datetime) -> NewSecret:
    """Replace the signing secret; every later attempt, retries included, is signed with the new one."""
    endpoint = _endpoint(session, endpoint_id)
    endpoint.secret = new_secret()
    record_audit(session, actor=actor, action="webhook_endpoint.secret_rotated", target=_target(endpoint_id), now=now)
    return NewSecret(endpoint_id=endpoint_id, secret=endpoint.secret)
