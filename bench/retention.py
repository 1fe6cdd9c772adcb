"""Benchmark: a nightly `portal retention` run over the demo database enlarged to 1,000,000 page views and 100,000
customers, on SQLite and (with PORTAL_BENCH_DATABASE_URL) PostgreSQL.

    .venv/bin/python bench/retention.py
    .venv/bin/python bench/retention.py --customers 20000 --page-views 200000     # a quicker look
    PORTAL_BENCH_DATABASE_URL=postgresql+psycopg://… .venv/bin/python bench/retention.py   # also on PostgreSQL

The database is the demo's (`ensure_demo_data`), enlarged with bulk inserts: customers up to `--customers`, of whom
`--inactive` have had no contact for five years (the rest answered a consent question last month), half of those
warned 31 days ago (so the run anonymises them) and half never warned (so the run warns them, and anonymises nobody
unwarned: PORTAL_INACTIVITY_NOTICE_DAYS, 30 by default), and page views up
to `--page-views`, spread evenly over the last 30 months through `browsing.records.record_page_views` (so the day and
customer counts are right), which puts a little more than half of them past the register's 13 months. The run is the
real command, `python -m portal.cli retention`, in a child process: its wall time, the time and rows/s of each rule
(from the progress lines it prints, timestamped as they arrive), its CPU time and its peak RSS (`RUSAGE_CHILDREN`),
with the load average before and after (the machine is shared: CPU time is the steadier figure). `--engines` picks
SQLite, PostgreSQL or both. The PostgreSQL database must be a scratch one: its schema is dropped. It is not a test:
it prints figures.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the portal package, when run from anywhere

from sqlalchemy import func, insert, select, text, update  # noqa: E402

from portal.browsing.records import record_page_views  # noqa: E402
from portal.db import make_engine, migrate, transaction  # noqa: E402
from portal.demo.dataset import ensure_demo_data  # noqa: E402
from portal.models import ConsentEvent, Customer, PageView  # noqa: E402

PROGRESS = re.compile(r"^(\w+): (\d+) ")


def enlarge(url: str, *, customers: int, page_views: int, inactive: int, seed: int = 7) -> dict[str, int]:
    now = datetime.now(UTC)
    engine = make_engine(url)
    random.seed(seed)
    with transaction(engine) as session:
        have = session.scalar(select(func.count()).select_from(Customer)) or 0
        have_views = session.scalar(select(func.count()).select_from(PageView)) or 0
    new = max(customers - have, 0)
    long_ago = now - timedelta(days=5 * 365)
    rows = [
        {
            "email": f"bench{n}@example.com",
            "email_key": f"bench{n}@example.com",
            "first_name": "Bench",
            "preferred_language": "fr",
            "source": "import",
            "created_at": long_ago,
            "updated_at": long_ago,
        }
        for n in range(new)
    ]
    with transaction(engine) as session:
        for start in range(0, len(rows), 10_000):
            session.execute(insert(Customer.__table__), rows[start : start + 10_000])
        ids = session.scalars(select(Customer.id).where(Customer.email_key.like("bench%")).order_by(Customer.id)).all()
    active = ids[inactive:]
    warned = ids[: inactive // 2]  # warned a month ago, silent since: the run anonymises them
    with transaction(engine) as session:
        for start in range(0, len(warned), 1000):
            session.execute(
                update(Customer)
                .where(Customer.id.in_(warned[start : start + 1000]))
                .values(inactivity_warned_at=now - timedelta(days=31))
            )
    with transaction(engine) as session:  # last month's consent answer keeps them out of the inactivity rule
        events = [
            {
                "customer_id": c,
                "purpose": "email_newsletter",
                "granted": True,
                "occurred_at": now - timedelta(days=30),
                "channel": "import",
                "actor": "bench",
                "policy_version": "bench",
            }  # fmt: skip
            for c in active
        ]
        for start in range(0, len(events), 10_000):
            session.execute(insert(ConsentEvent.__table__), events[start : start + 10_000])
    span = 30 * 30 * 86_400
    missing = max(page_views - have_views, 0)
    for start in range(0, missing, 20_000):
        batch = [
            (random.choice(active), now - timedelta(seconds=random.randrange(span)), f"https://shop.example/p/{i}", "P")
            for i in range(start, min(start + 20_000, missing))
        ]
        with transaction(engine) as session:
            record_page_views(session, batch, timezone="Europe/Paris")
    if engine.dialect.name == "postgresql":
        # A production database has its statistics (autovacuum); freshly bulk-loaded tables have none, and the
        # planner then nests seq scans under the inactivity rule's anti-joins (171 s for one dry run's count).
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("ANALYZE"))
    with transaction(engine) as session:
        totals = {
            "customers": session.scalar(select(func.count()).select_from(Customer)) or 0,
            "page_views": session.scalar(select(func.count()).select_from(PageView)) or 0,
        }
    engine.dispose()
    return totals


def run_cli(url: str, *args: str) -> tuple[float, dict[str, tuple[int, float]], str, int, float]:
    """Run `portal retention`; returns wall time, per rule (removed, seconds), its stdout, the children's peak RSS so
    far, and the child's CPU time (user + system)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    environment = {**os.environ, "PORTAL_DATABASE_URL": url, "PORTAL_ENVIRONMENT": "development"}
    started = time.perf_counter()
    child = subprocess.Popen(  # noqa: S603  (explicit argument list, no shell)
        [sys.executable, "-m", "portal.cli", "retention", "--lang", "en", *args],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stderr is not None and child.stdout is not None
    rules: dict[str, tuple[int, float]] = {}
    mark = started  # each progress line closes a batch of its rule: the time since the previous line is that batch's
    for line in child.stderr:
        match = PROGRESS.match(line)
        if not match:
            print(line, end="", file=sys.stderr)
            continue
        now = time.perf_counter()
        rule, removed = match.group(1), int(match.group(2))
        previous = rules.get(rule)
        elapsed = (previous[1] if previous else 0.0) + (now - mark)
        rules[rule] = (removed, elapsed)
        mark = now
    output = child.stdout.read()
    child.wait()
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return wall, rules, output, after.ru_maxrss, cpu


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def measure(name: str, url: str, args: argparse.Namespace) -> None:
    print(f"\n== {name}")
    started = time.perf_counter()
    migrate(url)
    engine = make_engine(url)
    ensure_demo_data(engine, reset=True)
    engine.dispose()
    totals = enlarge(url, customers=args.customers, page_views=args.page_views, inactive=args.inactive)
    print(f"database ready in {time.perf_counter() - started:.0f} s: {totals['customers']:,} customers, "
          f"{totals['page_views']:,} page views")  # fmt: skip
    wall, _, output, _, cpu = run_cli(url, "--dry-run")
    print(f"dry run: {wall:.1f} s wall, {cpu:.1f} s CPU (load {load()})\n{output}")
    print(f"load before the run: {load()}")
    wall, rules, output, peak_kb, cpu = run_cli(url, "--batch-size", str(args.batch_size))
    print(f"run: {wall:.1f} s wall, {cpu:.1f} s CPU, peak RSS {peak_kb / 1024:.0f} MB (batch size {args.batch_size}), "
          f"load after {load()}")  # fmt: skip
    for rule, (removed, seconds) in rules.items():
        rate = f"{removed / seconds:,.0f} rows/s" if seconds > 0 and removed else "-"
        verb = "warned " if rule == "inactivity_warnings" else "removed"
        print(f"  {rule:<20} {removed:>9,} {verb} in {seconds:7.1f} s  {rate}")
    print(output)
    wall, _, output, _, cpu = run_cli(url)
    print(f"second run (nothing left but what the first run warned): {wall:.1f} s wall, {cpu:.1f} s CPU\n{output}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--page-views", type=int, default=1_000_000)
    parser.add_argument("--inactive", type=int, default=2_000, help="bench customers with no contact for 5 years")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--engines", default="sqlite,postgresql", help="which to measure (comma-separated)")
    args = parser.parse_args()
    engines = {name.strip() for name in args.engines.split(",")}
    if "sqlite" in engines:
        with tempfile.TemporaryDirectory() as directory:
            measure("SQLite", f"sqlite:///{Path(directory) / 'bench.sqlite3'}", args)
    pg_url = os.environ.get("PORTAL_BENCH_DATABASE_URL", "")
    if "postgresql" not in engines:
        pass
    elif pg_url:
        engine = make_engine(pg_url)
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
        engine.dispose()
        measure("PostgreSQL", pg_url, args)
    else:
        print("\nPostgreSQL: skipped (set PORTAL_BENCH_DATABASE_URL to a scratch database to measure it)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
