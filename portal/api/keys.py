"""API keys: created and revoked on the command line, shown once, kept as a keyed hash, limited to scopes.

A key reads `ppk_<prefix>.<secret>`. The prefix finds the row (and names the key in logs and the audit trail
without revealing it); the secret is compared as an HMAC under the server key, so a copy of the database cannot
be used to call the API.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import Connection, bindparam, select, update
from sqlmodel import Session

from portal.audit import record_audit
from portal.db import as_connection
from portal.identity.keys import keyed_hash, same_hash
from portal.models import API_SCOPES, ApiKey

KEY_PREFIX = "ppk_"
# Writing `last_used_at` on every call would turn each read into a write; once a minute is enough to audit use.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class ApiKeyError(ValueError):
    """A key cannot be created or revoked as asked; the message says why."""


@dataclasses.dataclass(frozen=True)
class ApiClient:
    """The caller of an API request, once its key is checked."""

    key_id: int
    prefix: str
    name: str
    scopes: frozenset[str]

    @property
    def actor(self) -> str:
        return f"api:{self.prefix}"


def _secret_hash(secret_key: str, secret: str) -> str:
    return keyed_hash(secret_key, "api-key", secret)


def parse_scopes(scopes: Iterable[str]) -> list[str]:
    wanted = sorted({scope.strip() for scope in scopes if scope.strip()})
    unknown = [scope for scope in wanted if scope not in API_SCOPES]
    if unknown:
        raise ApiKeyError(f"unknown scope(s) {', '.join(unknown)}; choose from {', '.join(API_SCOPES)}")
    if not wanted:
        raise ApiKeyError(f"give at least one scope: {', '.join(API_SCOPES)}")
    return wanted


def create_api_key(
    session: Session, *, secret_key: str, name: str, scopes: Iterable[str], now: datetime
) -> tuple[ApiKey, str]:
    """Create a key; returns the row and the full key, which is never shown again."""
    name = name.strip()
    if not name or len(name) > 100:
        raise ApiKeyError("give the key a name of 1 to 100 characters (what uses it: CRM, tills, web shop)")
    prefix = KEY_PREFIX + secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    key = ApiKey(
        prefix=prefix,
        secret_hash=_secret_hash(secret_key, secret),
        name=name,
        scopes=" ".join(parse_scopes(scopes)),
        created_at=now,
    )
    session.add(key)
    session.flush()
    record_audit(
        session, actor="cli", action="apikey.created", target=f"apikey:{prefix}", detail={"scopes": key.scopes}, now=now
    )
    return key, f"{prefix}.{secret}"


def revoke_api_key(session: Session, *, prefix: str, now: datetime) -> ApiKey:
    """Revoke at once: the next call made with the key is refused."""
    key = session.scalars(select(ApiKey).where(ApiKey.prefix == prefix.strip())).first()
    if key is None:
        raise ApiKeyError(f"no API key {prefix!r}; `portal apikey list` shows them")
    if key.revoked_at is None:
        key.revoked_at = now
        record_audit(session, actor="cli", action="apikey.revoked", target=f"apikey:{key.prefix}", now=now)
    return key


def list_api_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)))


# Built once: every API call runs it, and building a select costs more than running it on an indexed column.
_ACTIVE_KEY = select(ApiKey.id, ApiKey.name, ApiKey.scopes, ApiKey.secret_hash, ApiKey.last_used_at).where(
    ApiKey.prefix == bindparam("prefix"),
    ApiKey.revoked_at.is_(None),
)


def authenticate(db: Session | Connection, *, secret_key: str, presented: str, now: datetime) -> ApiClient | None:
    """The client a presented key belongs to, or None (unknown, malformed, wrong secret or revoked)."""
    prefix, dot, secret = presented.strip().partition(".")
    if not dot or not prefix.startswith(KEY_PREFIX) or len(prefix) > 24 or not secret:
        return None
    connection = as_connection(db)
    row = connection.execute(_ACTIVE_KEY, {"prefix": prefix}).first()
    if row is None or not same_hash(row.secret_hash, _secret_hash(secret_key, secret)):
        return None
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
        connection.execute(update(ApiKey).where(ApiKey.id == row.id).values(last_used_at=now))
    return ApiClient(key_id=row.id, prefix=prefix, name=row.name, scopes=frozenset(row.scopes.split()))
