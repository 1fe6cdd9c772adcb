"""Benchmark: what one statement and one thread hop cost in CPU, on SQLite and on PostgreSQL, and the ceiling that
sets on a PostgreSQL page against the same page on SQLite (issue 17's aim: ≥ 0.7).

    .venv/bin/python bench/statement_cost.py postgresql+psycopg://postgres@127.0.0.1:5432/test
    .venv/bin/python bench/statement_cost.py URL --page-ms 0.80 --statements 2 --hops 2   # the ceiling for /me

One indexed point read (`SELECT … WHERE id = :id` on a 100,000-row table), run through SQLAlchemy Core as the portal
runs its statements, 5 × 2,000 times on one connection: wall time, this process's CPU time, and on PostgreSQL the
server process's CPU time (its backend's /proc/<pid>/stat, so the server must run on this machine). Then one hop to
a worker thread and back (`anyio.to_thread.run_sync`, which `portal.db.run_db` uses on PostgreSQL) in this process's
CPU time. Best of the five rounds each: the least disturbed by other work on the machine.

A page served from one worker is bound by the CPU it costs: the PostgreSQL page costs what the SQLite page does,
plus, per statement, PostgreSQL's extra client and server CPU, plus its thread hops (SQLite runs on the event loop).
On a machine where the database server shares the CPUs, the best throughput ratio a page can reach is therefore

    SQLite page ms / (SQLite page ms + statements × (PostgreSQL CPU − SQLite CPU) + hops × hop CPU)

`--page-ms` is the SQLite page's whole cost per request (bench/pages.py: 1 / its req/s); `--statements` and `--hops`
what the PostgreSQL page runs (tests/web/test_statement_counts.py counts them). Not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import anyio  # noqa: E402
import anyio.to_thread  # noqa: E402
from sqlalchemy import Connection, Engine, text  # noqa: E402

from portal.db import make_engine  # noqa: E402

ROWS = 100_000
ROUNDS, NUMBER = 5, 2_000
TABLE = "bench_statement_cost"
READ = text(f"SELECT id, label FROM {TABLE} WHERE id = :id")  # noqa: S608  (a constant name)


def _server_cpu(pid: int | None) -> float:
    """The CPU seconds the PostgreSQL backend `pid` has used (user + system), 0 when there is none."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _fill(connection: Connection) -> int | None:
    """A temporary indexed table of ROWS rows; returns the PostgreSQL backend's pid (None on SQLite)."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(
            f"CREATE TEMPORARY TABLE {TABLE} AS SELECT g AS id, 'row ' || g AS label FROM generate_series(1, {ROWS}) g"
        )
        connection.exec_driver_sql(f"CREATE UNIQUE INDEX ON {TABLE} (id)")
        connection.exec_driver_sql(f"ANALYZE {TABLE}")
        return int(connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())
    connection.exec_driver_sql(f"CREATE TEMPORARY TABLE {TABLE} (id INTEGER PRIMARY KEY, label TEXT)")
    # SQLite's generate_series is an extension the standard library's build may lack: a recursive count instead.
    connection.exec_driver_sql(
        f"WITH RECURSIVE n(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM n WHERE v < {ROWS}) "
        f"INSERT INTO {TABLE} SELECT v, 'row ' || v FROM n"
    )
    return None


def statement_cost(engine: Engine) -> tuple[float, float, float]:
    """(wall, client CPU, server CPU) in µs per point read: the best of ROUNDS rounds of NUMBER reads."""
    best = (float("inf"), float("inf"), float("inf"))
    with engine.connect() as connection:
        pid = _fill(connection)
        for n in range(500):  # warm: compiled statement, prepared on the server, pages in memory
            connection.execute(READ, {"id": n + 1}).all()
        for round_ in range(ROUNDS):
            server = _server_cpu(pid)
            wall, cpu = time.perf_counter(), time.process_time()
            for n in range(NUMBER):
                connection.execute(READ, {"id": (round_ * NUMBER + n) % ROWS + 1}).all()
            figures = (
                (time.perf_counter() - wall) / NUMBER * 1e6,
                (time.process_time() - cpu) / NUMBER * 1e6,
                (_server_cpu(pid) - server) / NUMBER * 1e6,
            )
            if figures[1] + figures[2] < best[1] + best[2]:
                best = figures
        connection.rollback()
    return best


def hop_cost() -> float:
    """This process's CPU µs for one hop to a worker thread and back (anyio's, as `portal.db.run_db` makes)."""

    async def hops() -> float:
        best = float("inf")
        for _ in range(ROUNDS):
            cpu = time.process_time()
            for _ in range(NUMBER):
                await anyio.to_thread.run_sync(int)
            best = min(best, (time.process_time() - cpu) / NUMBER * 1e6)
        return best

    return anyio.run(hops)


def ceiling(page_ms: float, statements: int, hops: int, extra_us: float, hop_us: float) -> float:
    """The best PostgreSQL/SQLite throughput ratio of a page (module docstring)."""
    return page_ms / (page_ms + (statements * extra_us + hops * hop_us) / 1000)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("database_url", help="a PostgreSQL database on this machine (only a temporary table is made)")
    parser.add_argument("--page-ms", type=float, default=0.80, help="the SQLite page's cost per request (0.80)")
    parser.add_argument("--statements", type=int, default=2, help="statements the page runs (2: /me)")
    parser.add_argument("--hops", type=int, default=2, help="thread hops the page makes on PostgreSQL (2)")
    args = parser.parse_args(argv)
    engines: dict[str, Callable[[], Engine]] = {
        "sqlite": lambda: make_engine(f"sqlite:///{tempfile.mkdtemp()}/statement-cost.sqlite3"),
        "postgresql": lambda: make_engine(args.database_url),
    }
    costs = {}
    print(f"one indexed point read through SQLAlchemy Core, best of {ROUNDS} × {NUMBER:,} (µs per statement)")
    for name, make in engines.items():
        engine = make()
        try:
            costs[name] = statement_cost(engine)
        finally:
            engine.dispose()
        wall, client, server = costs[name]
        print(f"  {name:10}  wall {wall:6.0f}  client CPU {client:6.0f}  server CPU {server:6.0f}  "
              f"CPU in all {client + server:6.0f}")  # fmt: skip
    hop = hop_cost()
    print(f"one thread hop and back (anyio.to_thread.run_sync): {hop:.0f} µs of CPU")
    extra = sum(costs["postgresql"][1:]) - sum(costs["sqlite"][1:])
    client_extra = costs["postgresql"][1] - costs["sqlite"][1]
    print(f"PostgreSQL costs {extra:.0f} µs more CPU a statement ({client_extra:.0f} µs of it in this process)")
    for statements, hops in ((args.statements, args.hops), (args.statements, 1), (1, 0)):
        shared = ceiling(args.page_ms, statements, hops, extra, hop)
        apart = ceiling(args.page_ms, statements, hops, client_extra, hop)
        print(
            f"ceiling of a {args.page_ms:.2f} ms SQLite page with {statements} statement(s) and {hops} hop(s): "
            f"{shared:.2f} with the server on these CPUs, {apart:.2f} with it on another machine"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
