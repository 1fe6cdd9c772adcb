"""Benchmark: erasing the demo's heavy customer (10,000 purchases, 100,000 page views), in one transaction.

    .venv/bin/python bench/erasure.py                # 3 rounds on a fresh demo SQLite database each
    .venv/bin/python bench/erasure.py --rounds 5
    PORTAL_BENCH_DATABASE_URL=postgresql+psycopg://… .venv/bin/python bench/erasure.py   # also on PostgreSQL

Each round files an erasure request for camille.durand@example.com, times the plan the agent sees (`plan_erasure`)
and then the erasure itself (`execute_erasure`, committed), and checks the result: one COMMIT for the whole
erasure (counted with a SQLAlchemy `commit` event listener on the engine), the tombstone, 10,000 purchases detached,
no page view left. SQLite rounds each start from a copy of one freshly generated demo database. PostgreSQL rounds
regenerate the demo data in the database PORTAL_BENCH_DATABASE_URL points to: it must be a scratch database, as
everything in it is deleted. It is not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the portal package, when run from anywhere

from sqlalchemy import Engine, event, func, select  # noqa: E402

from portal.consent.register import load_register  # noqa: E402
from portal.db import make_engine, migrate, transaction  # noqa: E402
from portal.demo.dataset import DEMO_CUSTOMERS, ensure_demo_data  # noqa: E402
from portal.mail.compose import EmailComposer  # noqa: E402
from portal.models import Customer, PageView, Purchase, email_key  # noqa: E402
from portal.requests import erasure  # noqa: E402
from portal.requests.service import file_request  # noqa: E402
from portal.retailer import load_retailer  # noqa: E402
from portal.settings import load_settings  # noqa: E402
from portal.web.templating import make_environment  # noqa: E402

HEAVY_CUSTOMER = DEMO_CUSTOMERS[0]
NOW = datetime(2026, 11, 23, 10, tzinfo=UTC)


@contextmanager
def commits_counted(engine: Engine) -> Iterator[list[int]]:
    """Count the COMMITs the engine's connections send while the block runs."""
    counter = [0]

    def on_commit(_connection) -> None:  # type: ignore[no-untyped-def]
        counter[0] += 1

    event.listen(engine, "commit", on_commit)
    try:
        yield counter
    finally:
        event.remove(engine, "commit", on_commit)


def one_round(database_url: str) -> dict[str, float | int]:
    settings = load_settings(environ={}, environment="test", secret_key="bench-" + "k" * 40, database_url=database_url)
    composer = EmailComposer(make_environment(settings=settings, retailer=load_retailer(settings.retailer_file)))
    register = load_register(settings.purposes_file)
    engine = make_engine(database_url)
    try:
        with transaction(engine) as session:
            customer_id = session.scalars(
                select(Customer.id).where(Customer.email_key == email_key(HEAVY_CUSTOMER))
            ).one()
            reference = file_request(
                session,
                customer_id=customer_id,
                type="erasure",
                channel="web",
                now=NOW,
                actor="bench",
                timezone="Europe/Paris",
            ).reference
        started = time.perf_counter()
        with transaction(engine) as session:
            plan = erasure.plan_erasure(session, customer_id=customer_id, register=register)
        plan_seconds = time.perf_counter() - started
        with commits_counted(engine) as commits:
            started = time.perf_counter()
            with transaction(engine) as session:
                report = erasure.execute_erasure(
                    session,
                    reference=reference,
                    actor="staff:1",
                    now=NOW,
                    composer=composer,
                    settings=settings,
                    register=register,
                )
            seconds = time.perf_counter() - started
        with transaction(engine) as session:
            customer = session.get(Customer, customer_id)
            detached = session.execute(
                select(func.count()).select_from(Purchase).where(Purchase.customer_id.is_(None))
            ).scalar_one()  # type: ignore[union-attr]
            views = session.execute(
                select(func.count()).select_from(PageView).where(PageView.customer_id == customer_id)
            ).scalar_one()
        planned = {line.category: line.count for line in plan.lines}
        problems = []
        if commits[0] != 1:
            problems.append(f"{commits[0]} commits instead of 1")
        if customer is None or customer.erased_at is None or customer.email is not None:
            problems.append("the customer is not a tombstone")
        if detached < planned["purchases"] or views:
            problems.append(f"{detached} purchases detached, {views} page views left")
        if problems:
            raise SystemExit("erasure check failed: " + "; ".join(problems))
        return {
            "plan_ms": plan_seconds * 1000,
            "erase_ms": seconds * 1000,
            "commits": commits[0],
            "purchases": report.counts["purchases"],
            "page_views": report.counts["browsing"],
            "consents": report.counts["consents"],
        }
    finally:
        engine.dispose()


def summarise(name: str, rounds: list[dict[str, float | int]]) -> None:
    first = rounds[0]
    print(
        f"\n{name}: heavy customer, {first['purchases']:,} purchases detached, {first['page_views']:,} page views "
        f"deleted, {first['consents']} consents withdrawn; {first['commits']} COMMIT per erasure in every round"
    )
    for key, label in (("plan_ms", "plan (agent's preview)"), ("erase_ms", "erasure, committed")):
        values = [r[key] for r in rounds]
        print(
            f"  {label:24} median {statistics.median(values):8.1f} ms   min {min(values):8.1f}   max {max(values):8.1f}"
            f"   ({len(values)} rounds)"
        )


def sqlite_rounds(count: int) -> list[dict[str, float | int]]:
    with tempfile.TemporaryDirectory(prefix="bench-erasure-") as directory:
        template = Path(directory) / "template.sqlite3"
        url = f"sqlite:///{template}"
        migrate(url)
        engine = make_engine(url)
        print(ensure_demo_data(engine).describe())
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        engine.dispose()
        results = []
        for number in range(count):
            copy = Path(directory) / f"round{number}.sqlite3"
            shutil.copy(template, copy)
            results.append(one_round(f"sqlite:///{copy}"))
        return results


def postgres_rounds(url: str, count: int) -> list[dict[str, float | int]]:
    migrate(url)
    results = []
    for _number in range(count):
        engine = make_engine(url)
        try:
            ensure_demo_data(engine, reset=True)
            with engine.connect() as connection:
                connection.exec_driver_sql("ANALYZE")
        finally:
            engine.dispose()
        results.append(one_round(url))
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="erasures per database (default 3)")
    args = parser.parse_args()
    print("load average:", " ".join(Path("/proc/loadavg").read_text().split()[:3]))
    summarise("SQLite", sqlite_rounds(args.rounds))
    pg_url = os.environ.get("PORTAL_BENCH_DATABASE_URL", "")
    if pg_url:
        summarise("PostgreSQL", postgres_rounds(pg_url, args.rounds))
    else:
        print("\nPostgreSQL: skipped (set PORTAL_BENCH_DATABASE_URL to a scratch database to measure it)")
    print("load average:", " ".join(Path("/proc/loadavg").read_text().split()[:3]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
