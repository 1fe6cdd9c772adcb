"""Long consent ledgers, written in one multi-row insert (the statement-count and plan tests need 10,000 events)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine, insert

from portal.db import transaction
from portal.models import ConsentEvent


def add_consent_changes(
    engine: Engine, customer_id: int, count: int, *, purposes: tuple[str, ...], end: datetime, channel: str = "web"
) -> None:
    """`count` alternating answers (given, withdrawn, …) spread over `purposes`, one a minute, the last at `end`."""
    rows = []
    for n in range(count):
        purpose = purposes[n % len(purposes)]
        rows.append(
            {
                "customer_id": customer_id,
                "purpose": purpose,
                "granted": (n // len(purposes)) % 2 == 0,
                "occurred_at": end - timedelta(minutes=count - 1 - n),
                "channel": channel,
                "actor": f"customer:{customer_id}",
                "policy_version": "2026-01",
                "wording_hash": None,
            }
        )
    with transaction(engine) as session:
        session.execute(insert(ConsentEvent.__table__), rows)
