"""Benchmark: 1, 2 and 4 uvicorn worker processes plus a separate `portal worker`, on one PostgreSQL database.

    .venv/bin/python bench/processes.py --database postgresql+psycopg://postgres@127.0.0.1:5432/bench_processes
    .venv/bin/python bench/processes.py --database … --workers 1,2 --quick

The database must exist; its public schema is dropped, migrated and filled with the demo dataset. For each number of
app processes (`uvicorn --workers N`, the in-process outbox worker off, as in production) a separate `portal worker`
delivers the outbox, and the bare Starlette + Jinja2 page runs with the same N workers. Two loads, each in rounds
alternating with the bare page (median of the per-round ratios, bench/pages.py's drop and reliability rules):

  read     GET /me for the demo's heavy customer (10,000 purchases, 100,000 page views)
  toggle   POST /me/consents (plain form, 303) through the sessions of 40 customers, each request flipping the
           answer (bench/api.py's wrk script); the consent events written are counted in the database

Reported per N: requests/s, the ratio to the bare page with N workers, the speed-up over N = 1, and latency p50/p99 at
4 connections. The machine has 2 CPUs: beyond 2 processes the figure says what contention costs, not what more
cores would give. Not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))
sys.path.insert(0, str(PROJECT_ROOT))

from _harness import (  # noqa: E402
    UVICORN_FLAGS,
    BenchError,
    Round,
    WrkResult,
    find_wrk,
    free_port,
    http_get,
    load_average,
    print_machine,
    run_benchmark,
    run_wrk,
    running_server,
    summarise,
)
from api import BenchData, toggle_script  # noqa: E402
from pages import open_customer_session, portal_environment, prepare_database  # noqa: E402

TOGGLE_CUSTOMERS = 40
STARTUP_TIMEOUT = 120.0  # seconds: four processes importing the portal at once on a loaded 2-CPU machine


def uvicorn_workers(app: str, port: int, workers: int, *, factory: bool, app_dir: Path) -> list[str]:
    """_harness's command line with N worker processes instead of one."""
    flags = list(UVICORN_FLAGS)
    flags[flags.index("--workers") + 1] = str(workers)
    command = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port), *flags]
    return [*command, *(["--factory"] if factory else []), "--app-dir", str(app_dir)]


@dataclasses.dataclass(frozen=True)
class Load:
    name: str
    url: str
    headers: dict[str, str]
    script: Path | None
    min_bytes: float


@dataclasses.dataclass(frozen=True)
class Measured:
    workers: int
    load: str
    rps: float
    ratio: float
    low: float
    high: float
    reliable: bool
    why: str
    p50: float
    p99: float
    written: int  # consent events the toggle load recorded (0 for reads)
    machine_load: str
    dropped: tuple[str, ...] = ()  # why each dropped round was dropped, as the report prints it


def _wrk(wrk: str, load: Load, *, connections: int, duration: float, latency: bool = False) -> WrkResult:
    return run_wrk(
        wrk,
        load.url,
        threads=2 if connections >= 2 else 1,
        connections=connections,
        duration=duration,
        headers=load.headers,
        latency=latency,
        min_bytes_per_request=load.min_bytes,
        script=load.script,
    )


def wait_for_outbox(data: BenchData, timeout: float = 120.0) -> None:
    """Until the `portal worker` has sent what the last run queued: its catching up would otherwise run during the
    next bare run and drop that round (the toggles' emails and webhooks are their cost, measured with them)."""
    from sqlalchemy import func, select

    from portal.models import OutboxMessage, utcnow

    def due():  # type: ignore[no-untyped-def]
        return (
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.sent_at.is_(None), OutboxMessage.next_attempt_at <= utcnow())  # type: ignore[union-attr,operator]
        )

    deadline = time.monotonic() + timeout
    engine = data.engine()
    try:
        with engine.connect() as connection:
            while connection.execute(due()).scalar_one() and time.monotonic() < deadline:
                connection.rollback()
                time.sleep(0.2)
    finally:
        engine.dispose()


def measure(wrk: str, workers: int, portal: Load, bare: Load, args: argparse.Namespace, data: BenchData) -> Measured:
    machine_load = load_average()
    for target in (bare, portal):
        _wrk(wrk, target, connections=args.connections, duration=args.warmup)
    before = data.count("consent_events")
    rounds = []
    for index in range(args.rounds):
        order = (bare, portal) if index % 2 == 0 else (portal, bare)
        got = {}
        for target in order:
            got[target.name] = _wrk(wrk, target, connections=args.connections, duration=args.duration)
            if target is portal:
                wait_for_outbox(data)
        rounds.append(Round(index + 1, (order[0].name, order[1].name), got[bare.name], got[portal.name]))
        print(
            f"    {workers} worker(s) {portal.name:<6} round {index + 1}: bare {got[bare.name].requests_per_sec:,.0f}"
            f" req/s, portal {got[portal.name].requests_per_sec:,.0f} req/s",
            flush=True,
        )
    latencies = [_wrk(wrk, portal, connections=4, duration=2, latency=True) for _ in range(args.latency_runs)]
    written = data.count("consent_events") - before if portal.name == "toggle" else 0
    summary = summarise(rounds, min_rounds=min(6, args.rounds))
    return Measured(
        workers=workers,
        load=portal.name,
        rps=summary.subject_rps,
        ratio=summary.median,
        low=summary.low,
        high=summary.high,
        reliable=summary.reliable,
        why=summary.why_unreliable,
        p50=statistics.median(r.latency_ms.get(50, float("inf")) for r in latencies),
        p99=statistics.median(r.latency_ms.get(99, float("inf")) for r in latencies),
        written=written,
        machine_load=machine_load,
        dropped=tuple(f"round {r.index}: {r.dropped_because}" for r in summary.rounds if not r.kept),
    )


def prepare(database_url: str) -> None:
    from sqlalchemy import text

    from portal.db import make_engine

    engine = make_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    print("  " + prepare_database(database_url), flush=True)


def report(results: Sequence[Measured]) -> None:
    print("\nPer load and number of app processes (one `portal worker` beside them, one PostgreSQL):")
    header = ("load", "workers", "req/s", "× N=1", "ratio to bare N [min–max]", "c=4 p50/p99 ms", "events", "load avg")
    first = {r.load: r.rps for r in results if r.workers == min(x.workers for x in results if x.load == r.load)}
    rows = [
        (
            r.load,
            str(r.workers),
            f"{r.rps:,.0f}",
            f"{r.rps / first[r.load]:.2f}" if first.get(r.load) else "-",
            f"{r.ratio:.3f} [{r.low:.3f}–{r.high:.3f}]" + ("" if r.reliable else " ?"),
            f"{r.p50:.1f}/{r.p99:.1f}",
            f"{r.written:,}" if r.load == "toggle" else "",
            r.machine_load,
        )
        for r in results
    ]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        print("  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(row)))
    for r in results:
        if not r.reliable:
            print(f"  ? {r.load} with {r.workers} worker(s): {r.why}")
        for why in r.dropped:
            print(f"    dropped, {r.load} with {r.workers} worker(s), {why}")


def run(args: argparse.Namespace) -> int:
    wrk = find_wrk()
    print_machine(wrk)
    database_url = args.database
    print("Preparing the PostgreSQL database (demo dataset)…", flush=True)
    prepare(database_url)
    results: list[Measured] = []
    with tempfile.TemporaryDirectory(prefix="portal-bench-processes-") as tmp:
        tmp_dir = Path(tmp)
        for workers in args.workers:
            portal_port, bare_port = free_port(), free_port()
            portal_env = {**portal_environment(database_url, portal_port), "PORTAL_RUN_WORKER": "false"}
            data = BenchData(database_url, portal_env["PORTAL_SECRET_KEY"])
            data.prepare(portal_env, TOGGLE_CUSTOMERS)
            heavy_cookie = open_customer_session(database_url, portal_env)
            child_env = {**os.environ, **portal_env}
            bare_env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
            app = uvicorn_workers("portal.app:create_app", portal_port, workers, factory=True, app_dir=PROJECT_ROOT)
            bare_command = uvicorn_workers("baseline_app:app", bare_port, workers, factory=False, app_dir=BENCH_DIR)
            worker_command = [sys.executable, "-m", "portal.cli", "worker"]
            with (
                running_server(
                    f"portal-{workers}",
                    app,
                    port=portal_port,
                    env=child_env,
                    cwd=PROJECT_ROOT,
                    log_dir=tmp_dir,
                    timeout=STARTUP_TIMEOUT,
                ) as portal,
                running_server(
                    f"bare-{workers}", bare_command, port=bare_port, env=bare_env, cwd=PROJECT_ROOT, log_dir=tmp_dir
                ) as bare,
                running_server(
                    f"outbox-worker-{workers}",
                    worker_command,
                    port=portal_port,  # the worker serves nothing: ready once the portal answers
                    env=child_env,
                    cwd=PROJECT_ROOT,
                    log_dir=tmp_dir,
                ),
            ):
                headers = {"Cookie": f"portal_session={heavy_cookie}"}
                status, body = http_get(portal.base_url + "/me", headers=headers, timeout=60)
                if status != 200:
                    raise BenchError(f"GET /me answered {status} with {workers} worker(s)")
                _status, bare_body = http_get(f"{bare.base_url}/?bytes={len(body)}")
                read = Load("read", portal.base_url + "/me", headers, None, 0.9 * len(body))
                read_bare = Load("bare", f"{bare.base_url}/?bytes={len(body)}", {}, None, 0.9 * len(bare_body))
                script = toggle_script(
                    tmp_dir / f"toggle-{workers}.lua", data, threads=2, htmx=False, url_path="/me/consents"
                )
                toggle = Load("toggle", portal.base_url + "/me/consents", {}, script, 0)
                print(f"\n== {workers} app process(es) + portal worker   load {load_average()}", flush=True)
                results.append(measure(wrk, workers, read, read_bare, args, data))
                results.append(measure(wrk, workers, toggle, read_bare, args, data))
    print(f"\nload average after the run: {load_average()}")
    report(sorted(results, key=lambda r: (r.load, r.workers)))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", required=True, help="a PostgreSQL URL (its public schema is replaced)")
    parser.add_argument("--workers", default="1,2,4", help="numbers of uvicorn worker processes (1,2,4)")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--latency-runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="2 rounds of 2 s, one latency run (not reliable)")
    args = parser.parse_args(argv)
    if not args.database.startswith("postgresql"):
        parser.error("--database must be a PostgreSQL URL: the point is several processes on one server")
    if args.quick:
        args.rounds, args.duration, args.warmup, args.latency_runs = 2, 2.0, 1.0, 1
    args.workers = [int(n) for n in args.workers.split(",") if n.strip()]
    return run_benchmark(lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
