"""Benchmark: the signed-in overview page (/me) of the demo's heavy customer against a bare Starlette + Jinja2 page.

    .venv/bin/python bench/overview.py            # full run: 8 alternating rounds of 5 s, then latency (~2 min)
    .venv/bin/python bench/overview.py --quick    # smoke check: 2 rounds of 2 s (figures not reliable)

Follows ../shared/BENCHMARKS.md: both servers run with identical uvicorn flags (one worker, no access log), rounds
alternate baseline/portal so that both see the same machine, and the result is the median of the per-round ratios.
Not a test: it prints figures. See bench/README.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import secrets
import signal
import sqlite3
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import date
from importlib import metadata
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))  # `_harness` sits next to this script

from _harness import (  # noqa: E402
    BenchError,
    RatioSummary,
    Round,
    Server,
    WrkResult,
    find_wrk,
    free_port,
    http_get,
    run_wrk,
    running_server,
    summarise,
    uvicorn_command,
    wrk_version,
)

HEAVY_CUSTOMER = "camille.durand@example.com"  # portal.demo.dataset.DEMO_CUSTOMERS[0]
PURCHASE_FIGURES = ("10,000", "10 000", "10\u202f000", "10\xa0000", "10&nbsp;000")  # en, fr and their spaces
AIM = 0.40  # the overview should serve at least 40% of the bare page's requests/s
SESSION_MINUTES = "600"  # the customer session must outlive the run (the default idle timeout is 15 min)
LATENCY_CONNECTIONS = (1, 4)


@dataclasses.dataclass(frozen=True)
class Options:
    rounds: int
    duration: float
    connections: int
    threads: int
    warmup: float
    latency_duration: float
    json_path: Path | None


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=8, help="alternating rounds (default 8, the minimum)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run in a round (default 5)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections for throughput (default 32)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads for throughput (default 2)")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds of warm-up per server (default 5)")
    parser.add_argument(
        "--latency-duration", type=float, default=5.0, help="seconds per low-concurrency latency run (default 5)"
    )
    parser.add_argument("--quick", action="store_true", help="smoke check: 2 rounds of 2 s, short warm-up/latency")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the raw figures to PATH as JSON")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.duration, args.warmup, args.latency_duration = 2, 2.0, 1.0, 2.0
    if args.rounds < 1 or args.duration < 1 or args.connections < 1 or args.threads < 1:
        parser.error("--rounds, --duration, --connections and --threads must be at least 1")
    if args.threads > args.connections:
        parser.error("wrk needs at least as many connections as threads")
    return Options(
        rounds=args.rounds,
        duration=args.duration,
        connections=args.connections,
        threads=args.threads,
        warmup=args.warmup,
        latency_duration=args.latency_duration,
        json_path=args.json,
    )


# --- Preparing the portal ----------------------------------------------------------------------------------------


def portal_environment(database_url: str, port: int) -> dict[str, str]:
    return {
        "PORTAL_ENVIRONMENT": "test",
        "PORTAL_SECRET_KEY": secrets.token_urlsafe(48),
        "PORTAL_DATABASE_URL": database_url,
        "PORTAL_BASE_URL": f"http://127.0.0.1:{port}",
        "PORTAL_RUN_WORKER": "false",
        "PORTAL_CUSTOMER_IDLE_MINUTES": SESSION_MINUTES,
        "PORTAL_CUSTOMER_ABSOLUTE_MINUTES": SESSION_MINUTES,
    }


def prepare_database(database_url: str) -> str:
    """Migrate a fresh database and write the demo dataset into it; returns the dataset's summary line."""
    from portal.db import make_engine, migrate
    from portal.demo.dataset import ensure_demo_data

    migrate(database_url)
    engine = make_engine(database_url)
    try:
        return ensure_demo_data(engine).describe()
    finally:
        engine.dispose()


def open_customer_session(database_url: str, portal_env: dict[str, str]) -> str:
    """Sign the heavy customer in directly in the database; returns the `portal_session` cookie value."""
    from itsdangerous import Signer
    from sqlalchemy import select

    from portal.db import make_engine, transaction
    from portal.identity.sessions import open_session
    from portal.models import Customer, email_key, utcnow
    from portal.settings import load_settings

    settings = load_settings(environ=portal_env)
    engine = make_engine(database_url)
    try:
        with transaction(engine) as session:
            customer_id = session.scalars(
                select(Customer.id).where(Customer.email_key == email_key(HEAVY_CUSTOMER))
            ).one()
            raw_id = open_session(session, settings=settings, kind="customer", customer_id=customer_id, now=utcnow())
    finally:
        engine.dispose()
    return Signer(settings.secret_key, salt="portal.session").sign(raw_id).decode()


def check_overview(portal: Server, headers: dict[str, str]) -> int:
    """One GET /me: it must be the heavy customer's page, signed in (no redirect). Returns the body's size."""
    status, body = http_get(portal.base_url + "/me", headers)
    text = body.decode("utf-8", errors="replace")
    if status != 200:
        raise BenchError(f"GET /me answered {status}, not 200: the session cookie was not accepted.\n{text[:500]}")
    if not any(figure in text for figure in PURCHASE_FIGURES):
        raise BenchError(f"GET /me does not show the heavy customer's 10,000 purchases:\n{text[:2000]}")
    return len(body)


# --- Measuring ---------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Target:
    name: str
    url: str
    headers: dict[str, str]
    min_bytes: float  # smallest plausible response (the body alone); anything smaller is a redirect or an error


def measure_rounds(wrk: str, baseline: Target, portal: Target, options: Options) -> list[Round]:
    rounds = []
    for index in range(options.rounds):
        # baseline, portal | portal, baseline | baseline, portal …: each gets the first slot half of the time.
        order = (baseline, portal) if index % 2 == 0 else (portal, baseline)
        results: dict[str, WrkResult] = {}
        for target in order:
            results[target.name] = run_wrk(
                wrk,
                target.url,
                threads=options.threads,
                connections=options.connections,
                duration=options.duration,
                headers=target.headers,
                min_bytes_per_request=target.min_bytes,
            )
        r = Round(index + 1, (order[0].name, order[1].name), results[baseline.name], results[portal.name])
        note = (
            f"  ({r.baseline.describe_failure() or r.subject.describe_failure()})"
            if (r.baseline.failed or r.subject.failed)
            else ""
        )
        print(
            f"  round {r.index:>2}  {order[0].name:>8} first   bare {r.baseline.requests_per_sec:>9,.0f} req/s   "
            f"overview {r.subject.requests_per_sec:>8,.0f} req/s   ratio {r.ratio:.3f}{note}",
            flush=True,
        )
        rounds.append(r)
    return rounds


def measure_latency(wrk: str, targets: Sequence[Target], options: Options) -> dict[str, dict[int, WrkResult]]:
    latency: dict[str, dict[int, WrkResult]] = {target.name: {} for target in targets}
    for connections in LATENCY_CONNECTIONS:
        for target in targets:
            result = run_wrk(
                wrk,
                target.url,
                threads=1,
                connections=connections,
                duration=options.latency_duration,
                headers=target.headers,
                latency=True,
                min_bytes_per_request=target.min_bytes,
            )
            latency[target.name][connections] = result
            p = result.latency_ms
            failure = f"  ({result.describe_failure()})" if result.failed else ""
            print(
                f"  c={connections}  {target.name:>8}  p50 {p.get(50, 0):7.2f} ms  p99 {p.get(99, 0):7.2f} ms  "
                f"({result.requests_per_sec:,.0f} req/s){failure}",
                flush=True,
            )
    return latency


# --- Reporting ---------------------------------------------------------------------------------------------------


def versions() -> dict[str, str]:
    found = {"python": platform.python_version(), "sqlite": sqlite3.sqlite_version}
    for package in ("starlette", "uvicorn", "jinja2", "sqlalchemy", "sqlmodel", "uvloop", "httptools"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "?"
    return found


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def report(
    summary: RatioSummary,
    latency: dict[str, dict[int, WrkResult]],
    sizes: dict[str, int],
    options: Options,
) -> None:
    def lat(name: str, connections: int) -> str:
        result = latency[name][connections]
        mark = " !" if result.failed else ""
        return f"{result.latency_ms.get(50, 0):.2f} / {result.latency_ms.get(99, 0):.2f} ms{mark}"

    rows = [
        (
            f"requests/s (median, c={options.connections})",
            f"{summary.baseline_rps:,.0f}",
            f"{summary.subject_rps:,.0f}",
        ),
        *((f"latency c={c} p50 / p99", lat("bare", c), lat("overview", c)) for c in LATENCY_CONNECTIONS),
        ("page size (body)", f"{sizes['bare']:,} B", f"{sizes['overview']:,} B"),
    ]
    width = max(len(row[0]) for row in rows)
    print()
    print(f"{'':<{width}}  {'bare page':>22}  {'overview /me':>22}")
    for label, bare, overview in rows:
        print(f"{label:<{width}}  {bare:>22}  {overview:>22}")
    print()
    reliability = "reliable" if summary.reliable else f"UNRELIABLE: {summary.why_unreliable}"
    print(
        f"ratio overview/bare (median of per-round ratios): {summary.median:.3f} "
        f"[{summary.low:.3f}–{summary.high:.3f}], {summary.kept} of {len(summary.rounds)} rounds kept, {reliability}"
    )
    for r in summary.rounds:
        if not r.kept:
            print(f"  round {r.index} dropped: {r.dropped_because}")
    met = summary.kept > 0 and summary.median >= AIM
    verdict = "MET" if met else "NOT MET"
    if not summary.reliable:
        verdict += " (on unreliable figures)"
    print(f"aim: overview >= {AIM:.0%} of the bare page's throughput: {verdict} ({summary.median:.0%})")


def to_json(
    summary: RatioSummary, latency: dict[str, dict[int, WrkResult]], sizes: dict[str, int], options: Options
) -> dict[str, Any]:
    return {
        "date": date.today().isoformat(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "versions": versions()},
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(options).items()},
        "sizes": sizes,
        "rounds": [
            {
                "index": r.index,
                "order": r.order,
                "bare_rps": r.baseline.requests_per_sec,
                "overview_rps": r.subject.requests_per_sec,
                "ratio": r.ratio,
                "kept": r.kept,
                "dropped_because": r.dropped_because,
            }
            for r in summary.rounds
        ],
        "ratio": {"median": summary.median, "min": summary.low, "max": summary.high, "kept": summary.kept},
        "reliable": summary.reliable,
        "why_unreliable": summary.why_unreliable,
        "rps_median": {"bare": summary.baseline_rps, "overview": summary.subject_rps},
        "latency_ms": {
            name: {str(c): {"p50": r.latency_ms.get(50), "p99": r.latency_ms.get(99)} for c, r in by_c.items()}
            for name, by_c in latency.items()
        },
        "aim": AIM,
        "aim_met": summary.kept > 0 and summary.median >= AIM,
    }


# --- The run -----------------------------------------------------------------------------------------------------


def run(options: Options) -> int:
    wrk = find_wrk()
    print(f"{date.today().isoformat()}  {os.cpu_count()} CPUs  {wrk_version(wrk)}")
    print("  " + "  ".join(f"{name} {version}" for name, version in versions().items()), flush=True)
    print(f"  load average before the run: {load_average()} (other work on the machine skews absolute figures)")
    with tempfile.TemporaryDirectory(prefix="portal-bench-") as tmp:
        tmp_dir = Path(tmp)
        database_url = f"sqlite:///{tmp_dir / 'demo.sqlite3'}"
        print("Preparing a fresh demo database…", flush=True)
        print("  " + prepare_database(database_url), flush=True)

        portal_port, baseline_port = free_port(), free_port()
        portal_env = portal_environment(database_url, portal_port)
        cookie = open_customer_session(database_url, portal_env)
        portal_headers = {"Cookie": f"portal_session={cookie}"}
        child_env = {**os.environ, **portal_env}
        child_env.pop("BENCH_BASELINE_BYTES", None)

        portal_command = uvicorn_command("portal.app:create_app", portal_port, factory=True, app_dir=PROJECT_ROOT)
        with running_server(
            "overview", portal_command, port=portal_port, env=child_env, cwd=PROJECT_ROOT, log_dir=tmp_dir
        ) as portal:
            page_bytes = check_overview(portal, portal_headers)
            print(f"Portal on {portal.base_url}: GET /me 200, heavy customer's page, {page_bytes:,} bytes", flush=True)

            baseline_env = {key: value for key, value in os.environ.items() if not key.startswith("PORTAL_")} | {
                "BENCH_BASELINE_BYTES": str(page_bytes)
            }
            baseline_command = uvicorn_command("baseline_app:app", baseline_port, app_dir=BENCH_DIR)
            with running_server(
                "bare", baseline_command, port=baseline_port, env=baseline_env, cwd=PROJECT_ROOT, log_dir=tmp_dir
            ) as baseline:
                status, body = http_get(baseline.base_url + "/")
                if status != 200:
                    raise BenchError(f"the bare page answered {status}")
                sizes = {"bare": len(body), "overview": page_bytes}
                print(f"Bare page on {baseline.base_url}: {len(body):,} bytes", flush=True)

                bare_target = Target("bare", baseline.base_url + "/", {}, min_bytes=len(body))
                portal_target = Target("overview", portal.base_url + "/me", portal_headers, min_bytes=page_bytes)

                print(f"Warming up ({options.warmup:g} s each)…", flush=True)
                for target in (bare_target, portal_target):
                    run_wrk(
                        wrk,
                        target.url,
                        threads=options.threads,
                        connections=options.connections,
                        duration=options.warmup,
                        headers=target.headers,
                    )

                print(
                    f"Throughput: {options.rounds} rounds, wrk -t{options.threads} -c{options.connections} "
                    f"-d{options.duration:g}s per page and round",
                    flush=True,
                )
                rounds = measure_rounds(wrk, bare_target, portal_target, options)
                print(
                    f"Latency at low concurrency: wrk -t1 -c1/-c4 -d{options.latency_duration:g}s --latency", flush=True
                )
                latency = measure_latency(wrk, (bare_target, portal_target), options)

                check_overview(portal, portal_headers)  # still signed in: the figures are the real page's

    print(f"load average after the run: {load_average()}")
    summary = summarise(rounds)
    report(summary, latency, sizes, options)
    if options.json_path:
        options.json_path.write_text(json.dumps(to_json(summary, latency, sizes, options), indent=2) + "\n")
        print(f"raw figures written to {options.json_path}")
    if options.rounds < 8:
        print(f"note: {options.rounds} rounds is a smoke check; BENCHMARKS.md asks for at least 8 rounds of 5 s.")
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM too goes through the `finally` blocks that stop the servers


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started in the background (SIG_IGN)
    started = time.monotonic()
    try:
        code = run(options)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted; servers stopped.", file=sys.stderr)
        return 130
    print(f"({time.monotonic() - started:.0f} s)")
    return code


if __name__ == "__main__":
    sys.exit(main())
