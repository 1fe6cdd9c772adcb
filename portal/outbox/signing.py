"""Signing webhook deliveries, the Standard Webhooks way, and verifying them (for the retailer's receivers).

An action queues ONE event in the outbox (`portal.outbox.enqueue.queue_webhook`) in its own transaction; the
worker later fans it out to every active endpoint subscribed to its topic and POSTs each copy, signed the Standard
Webhooks way (standardwebhooks.com):

    webhook-id:        the event id (stable across retries: receivers deduplicate on it)
    webhook-timestamp: unix seconds of this attempt
    webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}" keyed with the endpoint's secret>

Events carry references (our customer id, the retailer's own id when known), never names, addresses or values.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

SECRET_PREFIX = "whsec_"  # noqa: S105  (the format's prefix, not a secret)
DEFAULT_TOLERANCE = timedelta(minutes=5)


def new_secret() -> str:
    """A signing secret in the Standard Webhooks format: `whsec_` and 24 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def event_body(event: dict) -> str:
    """The bytes that are signed and sent: compact JSON, serialised once and stored so retries send the same."""
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False)


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def sign(secret: str, *, msg_id: str, timestamp: int, body: str) -> str:
    """The `v1,<base64>` signature of one attempt."""
    content = f"{msg_id}.{timestamp}.{body}".encode()
    digest = hmac.new(_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(secret: str, *, msg_id: str, body: str, now: datetime) -> dict[str, str]:
    timestamp = int(now.timestamp())
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id=msg_id, timestamp=timestamp, body=body),
    }


# --- For receivers ----------------------------------------------------------------------------------------------
# What follows uses the standard library only: the retailer's developers can copy it as it is.


class WebhookVerificationError(ValueError):
    """The request was not signed by the portal with this secret, or is too old (a replay)."""


def verify_signature(
    secret: str,
    headers: Mapping[str, str],
    body: bytes | str,
    now: datetime | None = None,
    tolerance: timedelta = DEFAULT_TOLERANCE,
) -> dict:
    """Check a delivery and return its event; raises WebhookVerificationError.

    `body` must be the raw request body, byte for byte (never re-serialised JSON).
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    msg_id = lowered.get("webhook-id", "")
    timestamp = lowered.get("webhook-timestamp", "")
    signatures = lowered.get("webhook-signature", "")
    if not (msg_id and timestamp and signatures):
        raise WebhookVerificationError("missing webhook-id, webhook-timestamp or webhook-signature header")
    try:
        sent_at = datetime.fromtimestamp(int(timestamp), UTC)
    except (ValueError, OverflowError, OSError):
        raise WebhookVerificationError("malformed webhook-timestamp") from None
    now = now or datetime.now(UTC)
    if abs(now - sent_at) > tolerance:
        raise WebhookVerificationError("timestamp outside the tolerance (replayed or clock skew)")
    text = body.decode() if isinstance(body, bytes) else body
    key = base64.b64decode(secret.removeprefix("whsec_"))
    expected = base64.b64encode(
        hmac.new(key, f"{msg_id}.{timestamp}.{text}".encode(), hashlib.sha256).digest()
    ).decode()
    # The header may list several space-separated signatures (e.g. while a secret is being rotated).
    for candidate in signatures.split():
        version, _, signature = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(signature, expected):
            return json.loads(text)
    raise WebhookVerificationError("no matching signature")
