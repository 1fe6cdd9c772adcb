"""Benchmark: reading a customer's current consent state, replaying the ledger (before issue 17) against the
latest-event-per-purpose read (`ledger.current_consents`), for ledgers of 8, 2,000 and 10,000 events.

    .venv/bin/python bench/consent_state.py [DATABASE_URL]     # a temporary SQLite file by default

In-process, best of 5 × 50 reads on one connection; prints milliseconds per read. Checks first that both give the
same state. Not a test: it prints figures (bench/README.md).
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import bindparam, select  # noqa: E402

from portal.consent import ledger  # noqa: E402
from portal.db import make_engine, migrate  # noqa: E402
from portal.models import ConsentEvent  # noqa: E402
from tests.consent_factories import add_consent_changes  # noqa: E402
from tests.factories import make_customer  # noqa: E402

E = ConsentEvent.__table__.c
# The read before issue 17: every event of the customer, in order, folded in Python.
REPLAY = (
    select(E.purpose, E.granted, E.occurred_at, E.channel)
    .where(E.customer_id == bindparam("customer_id"))
    .order_by(E.occurred_at, E.id)
)
CODES = ("email_newsletter", "sms_offers", "phone_calls", "postal_mail", "personalised_offers", "browsing_analytics",
         "partner_sharing")  # fmt: skip


def replay(connection, customer_id: int) -> dict[str, ledger.ConsentState]:  # type: ignore[no-untyped-def]
    states: dict[str, ledger.ConsentState] = {}
    for purpose, granted, at, channel in connection.execute(REPLAY, {"customer_id": customer_id}):
        first = states.get(purpose, ledger.ConsentState()).first_granted_at or (at if granted else None)
        states[purpose] = ledger.ConsentState(
            granted=bool(granted), changed_at=at, first_granted_at=first, channel=channel
        )
    return states


def best_ms(read, repeat: int = 5, number: int = 50) -> float:  # type: ignore[no-untyped-def]
    timings = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            read()
        timings.append((time.perf_counter() - start) / number)
    return min(timings) * 1000


def main() -> None:
    url = sys.argv[1] if len(sys.argv) > 1 else f"sqlite:///{tempfile.mkdtemp()}/consent-state.db"
    migrate(url)
    engine = make_engine(url)
    end = datetime(2026, 11, 1, tzinfo=UTC)
    ids = {}
    for size in (8, 2_000, 10_000):
        customer = make_customer(engine)
        add_consent_changes(engine, customer.id, size, purposes=CODES, end=end)
        ids[size] = customer.id
    with engine.connect() as connection:
        # Statistics, as a production database has them (PostgreSQL's autovacuum): the planner needs them.
        connection.exec_driver_sql("ANALYZE")
        connection.commit()
        for size, customer_id in ids.items():
            assert replay(connection, customer_id) == ledger.current_consents(connection, customer_id=customer_id)
            for name, read in (
                ("replay", lambda customer_id=customer_id: replay(connection, customer_id)),
                (
                    "latest per purpose",
                    lambda customer_id=customer_id: ledger.current_consents(connection, customer_id=customer_id),
                ),
            ):
                read()  # warm: the statement's compiled form is cached after the first call
                print(f"{engine.dialect.name:10} {size:6,} events  {name:20} {best_ms(read):8.3f} ms per read")


if __name__ == "__main__":
    main()
