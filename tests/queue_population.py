"""Writing a large, realistic request queue fast (bench/staff_queue.py, tests/unit/backoffice/test_queue_plans.py).

Three years of requests (most closed, the last month's mostly open, a few old ones forgotten), customers with names,
20 stores, 10 agents. Deterministic for a seed. Rows go in with Core `executemany` in chunks of 20,000 while the
table's secondary indexes are set aside (rebuilt once at the end, far faster than updating fifteen B-trees row by
row), and the due date is computed once per local day (it only depends on the day a request was received).
"""

from __future__ import annotations

import dataclasses
import random
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

TIMEZONE = "Europe/Paris"
STORES = 20
AGENTS = 10
CHUNK = 20_000
TYPES = ("access", "rectification", "erasure", "portability", "objection", "restriction", "other")
TYPE_WEIGHTS = (30, 15, 25, 10, 10, 5, 5)
CHANNELS = ("web", "store", "support", "email", "phone", "post")
CHANNEL_WEIGHTS = (60, 20, 10, 6, 3, 1)
OPEN = ("received", "in_progress", "awaiting_customer")
CLOSED = ("completed", "completed", "completed", "completed", "completed", "completed", "rejected", "cancelled")
LAST_NAMES = ("Durand", "Martin", "Bernard", "Petit", "Robert", "Richard", "Moreau", "Lefèvre", "Garnier", "Roux")
FIRST_NAMES = ("Camille", "Léa", "Hugo", "Louis", "Chloé", "Jules", "Manon", "Lucas", "Inès", "Arthur")


@dataclasses.dataclass(frozen=True)
class Population:
    requests: int
    open: int
    customers: int
    sample_reference: str  # an existing reference, for the search by reference

    def describe(self) -> str:
        return f"{self.requests:,} requests ({self.open:,} open), {self.customers:,} customers"


_SECONDARY_INDEXES = {
    # (name, definition) of the indexes that are neither the primary key nor a unique constraint
    "sqlite": "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'privacy_request' "
    "AND sql IS NOT NULL AND sql NOT LIKE 'CREATE UNIQUE%'",
    "postgresql": "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'privacy_request' "
    "AND indexdef NOT LIKE 'CREATE UNIQUE%'",
}


def populate(database_url: str, *, count: int, now: datetime, seed: int = 5) -> Population:
    """Write `count` requests and their customers, stores and staff into a migrated, empty database; ANALYZE it."""
    from sqlalchemy import insert, text

    from portal.db import make_engine
    from portal.models import Customer, PrivacyRequest, StaffUser, Store
    from portal.requests.deadlines import due_at_for
    from portal.requests.service import REFERENCE_ALPHABET

    rng = random.Random(seed)
    zone = ZoneInfo(TIMEZONE)
    customers = max(1, count // 5)
    due_by_day: dict[tuple[date, int], datetime] = {}

    def due(received: datetime, months: int) -> datetime:
        key = (received.astimezone(zone).date(), months)
        found = due_by_day.get(key)
        if found is None:
            found = due_by_day[key] = due_at_for(received, months=months, timezone=TIMEZONE)
        return found

    engine = make_engine(database_url)
    opened = 0
    sample = ""
    try:
        with engine.begin() as connection:
            connection.execute(
                insert(Store),
                [
                    {"id": i, "code": f"S{i:03d}", "name": f"Maison Aubépine {i}", "city": "Lyon", "kind": "store"}
                    for i in range(1, STORES + 1)
                ],
            )
            connection.execute(
                insert(StaffUser),
                [
                    {
                        "id": i,
                        "email": f"agent{i}@staff.example.com",
                        "email_key": f"agent{i}@staff.example.com",
                        "name": f"Agent {i}",
                        "role": "agent",
                        "password_hash": "x",
                        "active": True,
                        "created_at": now,
                    }
                    for i in range(1, AGENTS + 1)
                ],
            )
            created = now - timedelta(days=2000)
            for start in range(1, customers + 1, CHUNK):
                connection.execute(
                    insert(Customer),
                    [
                        {
                            "id": i,
                            "email": f"customer{i}@example.com",
                            "email_key": f"customer{i}@example.com",
                            "first_name": FIRST_NAMES[i % len(FIRST_NAMES)],
                            "last_name": f"{LAST_NAMES[(i // 10) % len(LAST_NAMES)]}{i}",
                            "preferred_language": "fr",
                            "source": "store",
                            "created_at": created,
                            "updated_at": created,
                        }
                        for i in range(start, min(customers, start + CHUNK - 1) + 1)
                    ],
                )
            set_aside = connection.execute(text(_SECONDARY_INDEXES[engine.dialect.name])).all()
            for name, _definition in set_aside:
                connection.exec_driver_sql(f"DROP INDEX {name}")
            references: set[str] = set()
            rows: list[dict[str, object]] = []
            span = 3 * 365 * 86400
            for _ in range(count):
                received = now - timedelta(seconds=rng.random() * span)
                age_days = (now - received).days
                is_open = (age_days < 35 and rng.random() < 0.85) or rng.random() < 0.002
                opened += is_open
                channel = rng.choices(CHANNELS, CHANNEL_WEIGHTS)[0]
                while True:
                    chars = "".join(rng.choices(REFERENCE_ALPHABET, k=8))
                    reference = f"R-{chars[:4]}-{chars[4:]}"
                    if reference not in references:
                        references.add(reference)
                        break
                extended = rng.random() < 0.05
                rows.append(
                    {
                        "reference": reference,
                        "customer_id": rng.randint(1, customers),
                        "type": rng.choices(TYPES, TYPE_WEIGHTS)[0],
                        "channel": channel,
                        "store_id": rng.randint(1, STORES) if channel == "store" else None,
                        "status": rng.choice(OPEN) if is_open else rng.choice(CLOSED),
                        "received_at": received,
                        "due_at": due(received, 1),
                        "extended_due_at": due(received, 3) if extended else None,
                        "assignee_id": rng.randint(1, AGENTS) if rng.random() < 0.6 else None,
                        "closed_at": None if is_open else min(now, received + timedelta(days=rng.uniform(1, 40))),
                        "version": 1,
                    }
                )
                if is_open and not sample:
                    sample = reference
                if len(rows) == CHUNK:
                    connection.execute(insert(PrivacyRequest), rows)
                    rows = []
            if rows:
                connection.execute(insert(PrivacyRequest), rows)
            for _name, definition in set_aside:
                connection.exec_driver_sql(definition)
        with engine.begin() as connection:  # planner statistics after a bulk load, as a live database has them
            connection.exec_driver_sql("ANALYZE")
    finally:
        engine.dispose()
    return Population(requests=count, open=opened, customers=customers, sample_reference=sample)
