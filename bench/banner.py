"""Benchmark: consent answers recorded per second on the website banner's public endpoint, and p99 at c=32, next to
the bare JSON baseline (bench/baseline_json_app.py), on SQLite and on PostgreSQL.

    .venv/bin/python bench/banner.py                                  # SQLite: 8 alternating rounds of 5 s
    .venv/bin/python bench/banner.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/DB   # an empty database
    .venv/bin/python bench/banner.py --quick                          # smoke check: 2 rounds of 2 s (not reliable)

What wrk sends: POST /consent/v1/answers from an allowed Origin, each request a new random visitor (as real traffic
is: one answer per visitor), the buttons in turn accept all / refuse all / choose (one purpose). A new visitor's first
answer writes an event per purpose of the banner (2 by default): events per answer are counted in the database
(events and audited answers, before and after each run, once the requests in flight are done), and events/s is the
answers/s wrk saw times that. Each answer also counts two rate limits (per IP, per visitor),
three monthly counters and an audit event, all in the one transaction. The rate limits are set out of reach (one
client address sends everything here). The baseline reads, parses and checks the same JSON body and answers about
as many bytes. Method of bench/README.md: identical uvicorn flags, one worker, alternating rounds, median of the
per-round ratios, rounds dropped when the baseline fell below 80% of its best or a run saw errors.
Not a test: it prints figures.
"""

from __future__ import annotations

import argparse
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
sys.path.insert(1, str(PROJECT_ROOT))

from _harness import (  # noqa: E402
    BenchError,
    Round,
    WrkResult,
    find_wrk,
    free_port,
    load_average,
    print_machine,
    run_benchmark,
    run_wrk,
    running_server,
    summarise,
    uvicorn_command,
)
from pages import portal_environment  # noqa: E402

ORIGIN = "https://www.shop.example"
PATH = "/consent/v1/answers"
BASELINE_PATH = "/json?bytes=32"  # the portal answers {"recorded":2,"linked":false}: about 30 bytes

LUA = """
local policy, version, origin = "%(policy)s", "%(version)s", "%(origin)s"
local choices = {
  {"accept_all", "true", "true"},
  {"refuse_all", "false", "false"},
  {"custom", "true", "false"},
}
local counter = 0
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("id", threads)
end

function init(args)
  math.randomseed(os.time() * 1000 + (id or 0) * 7919)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Origin"] = origin
end

local function hex(n)
  local digits = {}
  for i = 1, n do digits[i] = string.format("%%x", math.random(0, 15)) end
  return table.concat(digits)
end

local function visitor()
  return hex(8) .. "-" .. hex(4) .. "-4" .. hex(3) .. "-" .. ({"8", "9", "a", "b"})[math.random(1, 4)] .. hex(3)
    .. "-" .. hex(12)
end

request = function()
  counter = counter + 1
  local c = choices[(counter %% 3) + 1]
  local body = '{"visitor_id":"' .. visitor() .. '","choice":"' .. c[1] .. '","consents":{"browsing_analytics":'
    .. c[2] .. ',"personalised_offers":' .. c[3] .. '},"policy_version":"' .. policy .. '","banner_version":"'
    .. version .. '","locale":"fr"}'
  return wrk.format(nil, nil, nil, body)
end
"""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", metavar="URL", help="run on this (empty, throw-away) PostgreSQL database")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="2 rounds of 2 s: a smoke check, figures not reliable")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.duration = 2, 2.0
    return args


def count_rows(database_url: str) -> tuple[int, int]:
    """(consent events, answers recorded) in the database, once the server has finished the requests in flight
    when wrk stopped (the counts stay still for half a second)."""
    from sqlalchemy import func, select

    from portal.db import make_engine
    from portal.models import AuditEvent, ConsentEvent

    engine = make_engine(database_url)
    answered = select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "banner.answered")
    try:
        previous = (-1, -1)
        while True:
            with engine.connect() as connection:
                counts = (
                    int(connection.execute(select(func.count()).select_from(ConsentEvent)).scalar_one()),
                    int(connection.execute(answered).scalar_one()),
                )
            if counts == previous:
                return counts
            previous = counts
            time.sleep(0.5)
    finally:
        engine.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from portal.consent.register import load_register
    from portal.db import migrate
    from portal.settings import load_settings

    wrk = find_wrk()
    load = print_machine(wrk)
    with tempfile.TemporaryDirectory(prefix="bench-banner-") as tmp:
        work = Path(tmp)
        database_url = args.postgres or f"sqlite:///{work / 'portal.sqlite3'}"
        engine_name = "PostgreSQL" if args.postgres else "SQLite"
        migrate(database_url)
        register = load_register(load_settings(environ={}).purposes_file)
        script = work / "answers.lua"
        script.write_text(LUA % {"policy": register.policy_version, "version": "0123456789ab", "origin": ORIGIN})
        portal_port, bare_port = free_port(), free_port()
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")},
            **portal_environment(database_url, portal_port),
            "PORTAL_BANNER_ORIGINS": ORIGIN,
            "PORTAL_BANNER_LIMIT_PER_IP": "1000000000",
            "PORTAL_BANNER_LIMIT_PER_VISITOR": "1000000000",
            "PORTAL_LOG_LEVEL": "warning",
        }
        portal_cmd = uvicorn_command("portal.app:create_app", portal_port, factory=True)
        bare_cmd = uvicorn_command("baseline_json_app:app", bare_port, app_dir=BENCH_DIR)
        with (
            running_server("portal", portal_cmd, port=portal_port, env=env, cwd=PROJECT_ROOT, log_dir=work,
                           ready_path="/healthz") as portal,
            running_server("bare", bare_cmd, port=bare_port, env=env, cwd=PROJECT_ROOT, log_dir=work) as bare,
        ):  # fmt: skip

            def hit(url: str, duration: float) -> WrkResult:
                return run_wrk(
                    wrk, url, threads=args.threads, connections=args.connections, duration=duration,
                    latency=True, script=script,
                )  # fmt: skip

            hit(portal.base_url + PATH, 2)  # warm-up, both
            hit(bare.base_url + BASELINE_PATH, 2)
            rounds: list[Round] = []
            events_per_s: list[float] = []
            for index in range(args.rounds):
                order = ("bare", "portal") if index % 2 == 0 else ("portal", "bare")
                results: dict[str, WrkResult] = {}
                for name in order:
                    if name == "bare":
                        results[name] = hit(bare.base_url + BASELINE_PATH, args.duration)
                    else:
                        events_before, answers_before = count_rows(database_url)
                        results[name] = hit(portal.base_url + PATH, args.duration)
                        events_after, answers_after = count_rows(database_url)
                        # Events per answer as the database holds them, times the answers wrk saw answered.
                        per_answer = (events_after - events_before) / max(1, answers_after - answers_before)
                        events_per_s.append(results[name].requests_per_sec * per_answer)
                rounds.append(Round(index, order, results["bare"], results["portal"]))
            summary = summarise(rounds)
        kept = [r for r in summary.rounds if r.kept]
        kept_events = [e for r, e in zip(summary.rounds, events_per_s, strict=True) if r.kept]
        print(f"\n{engine_name}, POST {PATH}, wrk -t{args.threads} -c{args.connections}, {args.rounds} rounds of "
              f"{args.duration:.0f} s (load average before: {load})")  # fmt: skip
        for r, events in zip(summary.rounds, events_per_s, strict=True):
            mark = "" if r.kept else f"  dropped: {r.dropped_because}"
            print(
                f"  round {r.index + 1}: bare {r.baseline.requests_per_sec:8,.0f} req/s p99 "
                f"{r.baseline.latency_ms.get(99, 0):6.1f} ms | portal {r.subject.requests_per_sec:6,.0f} answers/s "
                f"{events:6,.0f} events/s p99 {r.subject.latency_ms.get(99, 0):6.1f} ms | ratio {r.ratio:.3f}{mark}"
            )
        if not kept:
            raise BenchError("no round survived (see the drops above)")
        p99_portal = statistics.median(r.subject.latency_ms.get(99, 0) for r in kept)
        p99_bare = statistics.median(r.baseline.latency_ms.get(99, 0) for r in kept)
        print(
            f"  portal: {summary.subject_rps:,.0f} answers/s = {statistics.median(kept_events):,.0f} consent events/s,"
            f" p99 {p99_portal:.1f} ms at c={args.connections}"
        )
        print(f"  bare JSON baseline: {summary.baseline_rps:,.0f} req/s, p99 {p99_bare:.1f} ms")
        verdict = "" if summary.reliable else f"  — not established: {summary.why_unreliable}"
        print(
            f"  ratio portal/bare (median of {summary.kept} kept rounds): {summary.median:.3f} "
            f"[{summary.low:.3f}–{summary.high:.3f}]{verdict}"
        )
        print(f"  load average after: {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(run_benchmark(main))
