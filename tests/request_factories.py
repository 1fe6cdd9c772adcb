"""Many privacy requests for one customer, in one multi-row insert (the list's pagination and statement tests)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine, insert

from portal.db import transaction
from portal.models import PrivacyRequest


def add_requests(engine: Engine, customer_id: int, count: int, *, end: datetime, prefix: str = "A") -> list[str]:
    """`count` closed access requests, one an hour, the last at `end`; their references, newest first."""
    rows = [
        {
            "reference": f"R-{prefix}{n // 1000 % 10}{n // 100 % 10}{n // 10 % 10}-{n % 10}0{prefix}0",
            "customer_id": customer_id,
            "type": "access",
            "channel": "web",
            "status": "completed",
            "received_at": end - timedelta(hours=count - 1 - n),
            "due_at": end - timedelta(hours=count - 1 - n) + timedelta(days=30),
            "closed_at": end - timedelta(hours=count - 1 - n) + timedelta(days=2),
        }
        for n in range(count)
    ]
    with transaction(engine) as session:
        session.execute(insert(PrivacyRequest.__table__), rows)
    return [row["reference"] for row in reversed(rows)]
