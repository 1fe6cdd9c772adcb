"""Benchmark: the staff request queue with 100,000 requests in the database, beside a bare page of its size.

    .venv/bin/python bench/staff_queue.py                 # 4 alternating rounds of 4 s per page + latency (~3 min)
    .venv/bin/python bench/staff_queue.py --quick         # 2 rounds of 2 s (figures not reliable)
    .venv/bin/python bench/staff_queue.py --requests 20000

Pages: the queue's first page (`/staff/requests`: open requests by effective due date) and a filtered page
(`/staff/requests?type=erasure&due=week`), signed in as an agent (the session is opened directly in the database).
The queue's ordering index comes with the schema (migration 0006); the tables are ANALYZEd after the bulk load.
Follows the method in bench/README.md like pages.py: same uvicorn flags for both servers, alternating rounds, median of
the per-round ratios, latency at 1 and 4 connections. Not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))
sys.path.insert(0, str(PROJECT_ROOT))

from _harness import (  # noqa: E402
    BenchError,
    Round,
    find_wrk,
    free_port,
    http_get,
    load_average,
    run_wrk,
    running_server,
    summarise,
    uvicorn_command,
    versions,
    wrk_version,
)

PAGES = {
    "queue": "/staff/requests",
    "filtered": "/staff/requests?type=erasure&due=week",
}
AIM_P99_MS = 100.0


def generate_requests(database_url: str, *, count: int, now: datetime, seed: int = 5) -> dict[str, int]:
    """Write `count` requests over three years (most closed, the last month's open), customers, stores and staff.

    Deterministic for a seed. Core bulk inserts: 100,000 requests take a few seconds.
    """
    from sqlalchemy import insert

    from portal.db import make_engine
    from portal.models import Customer, PrivacyRequest, StaffUser, Store
    from portal.requests.deadlines import due_at_for
    from portal.requests.service import REFERENCE_ALPHABET

    rng = random.Random(seed)
    engine = make_engine(database_url)
    customers = max(1, count // 5)
    types = ("access", "rectification", "erasure", "portability", "objection", "restriction", "other")
    weights = (30, 15, 25, 10, 10, 5, 5)
    channels = ("web", "store", "support", "email", "phone", "post")
    channel_weights = (60, 20, 10, 6, 3, 1)
    try:
        with engine.begin() as connection:
            connection.execute(
                insert(Store),
                [
                    {"id": i, "code": f"S{i:03d}", "name": f"Maison Aubépine {i}", "city": "Lyon", "kind": "store"}
                    for i in range(1, 21)
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
                    for i in range(1, 11)
                ],
            )
            connection.execute(
                insert(Customer),
                [
                    {
                        "id": i,
                        "email": f"customer{i}@example.com",
                        "email_key": f"customer{i}@example.com",
                        "first_name": "Camille",
                        "preferred_language": "fr",
                        "source": "store",
                        "created_at": now - timedelta(days=2000),
                        "updated_at": now - timedelta(days=2000),
                    }
                    for i in range(1, customers + 1)
                ],
            )
            rows = []
            opened = 0
            references: set[str] = set()
            for _ in range(count):
                received = now - timedelta(seconds=rng.uniform(0, 3 * 365 * 86400))
                due = due_at_for(received, timezone="Europe/Paris")
                age_days = (now - received).days
                # Recent requests are mostly open; a few older ones were forgotten (overdue).
                is_open = age_days < 35 and rng.random() < 0.85 or rng.random() < 0.002
                status = rng.choice(("received", "in_progress", "awaiting_customer")) if is_open else "completed"
                opened += is_open
                channel = rng.choices(channels, channel_weights)[0]
                while True:
                    chars = "".join(rng.choice(REFERENCE_ALPHABET) for _ in range(8))
                    reference = f"R-{chars[:4]}-{chars[4:]}"
                    if reference not in references:
                        references.add(reference)
                        break
                extended = rng.random() < 0.05
                rows.append(
                    {
                        "reference": reference,
                        "customer_id": rng.randint(1, customers),
                        "type": rng.choices(types, weights)[0],
                        "channel": channel,
                        "store_id": rng.randint(1, 20) if channel == "store" else None,
                        "status": status,
                        "received_at": received,
                        "due_at": due,
                        "extended_due_at": due_at_for(received, months=3, timezone="Europe/Paris")
                        if extended
                        else None,
                        "assignee_id": rng.randint(1, 10) if rng.random() < 0.6 else None,
                        "closed_at": None if is_open else min(now, received + timedelta(days=rng.uniform(1, 40))),
                        "version": 1,
                    }
                )
                if len(rows) == 5000:
                    connection.execute(insert(PrivacyRequest), rows)
                    rows = []
            if rows:
                connection.execute(insert(PrivacyRequest), rows)
    finally:
        engine.dispose()
    return {"requests": count, "open": opened, "customers": customers}


def open_staff_session(database_url: str, portal_env: dict[str, str]) -> str:
    from portal.db import make_engine, transaction
    from portal.identity.sessions import open_session
    from portal.identity.staff_sessions import staff_signer
    from portal.models import utcnow
    from portal.settings import load_settings

    settings = load_settings(environ=portal_env)
    engine = make_engine(database_url)
    try:
        with transaction(engine) as session:
            raw_id = open_session(session, settings=settings, kind="staff", customer_id=None, staff_id=1, now=utcnow())
    finally:
        engine.dispose()
    return staff_signer(settings).sign(raw_id).decode()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--duration", type=float)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--quick", action="store_true")
    options = parser.parse_args()
    rounds = options.rounds or (2 if options.quick else 4)
    duration = options.duration or (2.0 if options.quick else 4.0)
    wrk = find_wrk()
    print(f"{datetime.now():%Y-%m-%d %H:%M}  {os.cpu_count()} CPUs  {wrk_version(wrk)}  load {load_average()}")
    print("  " + "  ".join(f"{name} {version}" for name, version in versions().items()), flush=True)
    from portal.db import make_engine, migrate

    with tempfile.TemporaryDirectory(prefix="portal-bench-queue-") as tmp:
        tmp_dir = Path(tmp)
        database_url = f"sqlite:///{tmp_dir / 'queue.sqlite3'}"
        migrate(database_url)
        started = time.monotonic()
        counts = generate_requests(database_url, count=options.requests, now=datetime.now(UTC))
        print(f"Generated {counts} in {time.monotonic() - started:.1f} s", flush=True)
        engine = make_engine(database_url)
        with engine.begin() as connection:  # planner statistics after a bulk load, as a live database has them
            connection.exec_driver_sql("ANALYZE")
        engine.dispose()
        portal_port, bare_port = free_port(), free_port()
        portal_env = {
            "PORTAL_ENVIRONMENT": "test",
            "PORTAL_SECRET_KEY": secrets.token_urlsafe(48),
            "PORTAL_DATABASE_URL": database_url,
            "PORTAL_BASE_URL": f"http://127.0.0.1:{portal_port}",
            "PORTAL_RUN_WORKER": "false",
        }
        cookie = open_staff_session(database_url, portal_env)
        headers = {"Cookie": f"portal_staff={cookie}", "Accept-Language": "en"}
        bare_env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
        with (
            running_server(
                "portal",
                uvicorn_command("portal.app:create_app", portal_port, factory=True, app_dir=PROJECT_ROOT),
                port=portal_port,
                env={**os.environ, **portal_env},
                cwd=PROJECT_ROOT,
                log_dir=tmp_dir,
            ) as portal,
            running_server(
                "bare",
                uvicorn_command("baseline_app:app", bare_port, app_dir=BENCH_DIR),
                port=bare_port,
                env=bare_env,
                cwd=PROJECT_ROOT,
                log_dir=tmp_dir,
            ) as bare,
        ):
            failed = False
            for name, path in PAGES.items():
                status, body = http_get(portal.base_url + path, headers=headers)
                if status != 200 or b"R-" not in body:
                    raise BenchError(f"{path} answered {status}: {body[:300]!r}")
                bare_url = f"{bare.base_url}/?bytes={len(body)}"
                _status, bare_body = http_get(bare_url)
                print(f"\n== {name}: GET {path} ({len(body):,} B; bare {len(bare_body):,} B)", flush=True)
                targets = {
                    "bare": (bare_url, {}, 0.9 * len(bare_body)),
                    "page": (portal.base_url + path, headers, 0.9 * len(body)),
                }
                for url, hdrs, _min_bytes in targets.values():  # warm-up
                    run_wrk(wrk, url, threads=2, connections=options.connections, duration=2, headers=hdrs)
                measured = []
                for index in range(rounds):
                    order = ("bare", "page") if index % 2 == 0 else ("page", "bare")
                    got = {}
                    for who in order:
                        url, hdrs, min_bytes = targets[who]
                        got[who] = run_wrk(
                            wrk,
                            url,
                            threads=2,
                            connections=options.connections,
                            duration=duration,
                            headers=hdrs,
                            min_bytes_per_request=min_bytes,
                        )
                    measured.append(Round(index + 1, order, got["bare"], got["page"]))  # type: ignore[arg-type]
                    print(
                        f"    round {index + 1}: bare {got['bare'].requests_per_sec:,.0f} req/s, "
                        f"page {got['page'].requests_per_sec:,.0f} req/s",
                        flush=True,
                    )
                summary = summarise(measured, min_rounds=min(rounds, 6))
                print(
                    f"  req/s (median): bare {summary.baseline_rps:,.0f}, page {summary.subject_rps:,.0f}; "
                    f"ratio {summary.median:.3f} [{summary.low:.3f}–{summary.high:.3f}]"
                    + ("" if summary.reliable else f" (unreliable: {summary.why_unreliable})"),
                    flush=True,
                )
                for connections in (1, 4):
                    p50s: dict[str, list[float]] = {"bare": [], "page": []}
                    p99s: dict[str, list[float]] = {"bare": [], "page": []}
                    for _run in range(2):
                        for who, (url, hdrs, _min_bytes) in targets.items():
                            result = run_wrk(
                                wrk, url, threads=1, connections=connections, duration=2, headers=hdrs, latency=True
                            )
                            p50s[who].append(result.latency_ms.get(50, 0.0))
                            p99s[who].append(result.latency_ms.get(99, 0.0))
                    page_p99 = statistics.median(p99s["page"])
                    failed |= page_p99 >= AIM_P99_MS
                    print(
                        f"  latency c={connections}: bare p50/p99 {statistics.median(p50s['bare']):.2f}/"
                        f"{statistics.median(p99s['bare']):.2f} ms, page p50/p99 {statistics.median(p50s['page']):.2f}/"
                        f"{page_p99:.2f} ms {'(aim p99 < 100 ms met)' if page_p99 < AIM_P99_MS else '(aim MISSED)'}",
                        flush=True,
                    )
    print(f"\nload average after the run: {load_average()}")
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
