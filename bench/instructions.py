"""Benchmark: the CPU instructions one write costs, counted by valgrind's callgrind, for this checkout and another.

    .venv/bin/python bench/instructions.py                                  # request, note, profile, code, signin
    .venv/bin/python bench/instructions.py --tree /path/to/other/checkout   # and the same writes on another checkout
    .venv/bin/python bench/instructions.py --scenarios note,request --requests 200

Why: on a shared machine the wall-clock benches (writes.py, pages.py) swing by a quarter from one round to the next,
and most of issue 17's ratios came out "unreliable". callgrind counts the instructions a process runs: the same for
the same code and inputs, whether the machine is idle or busy (bench/README.md). What it leaves out is the kernel's
work (SQLite's writes to the WAL, sockets) and time spent waiting, which a change to Python code rarely moves.

How: the scenarios and their prepared data are bench/writes.py's (the same filers, staff note, customers and sign-in
challenges, in a demo database made once and copied for every run). For each tree and scenario, a child process
builds the portal's application from that tree (`portal.app.create_app`, SQLite) under callgrind, sends 30 writes
to it in-process (ASGI calls: no HTTP, no uvicorn), then N more, each of which must answer its 303. It runs twice,
with N = 0 and N = --requests; the difference divided by N is what one write costs, start-up and warm-up cancelled
out. Each tree's modules are compiled before the runs, so neither run pays for it. Not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = BENCH_DIR.parent
SCENARIOS = ("request", "note", "profile", "code", "signin")
WARMUP = 30


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--scenarios", default=",".join(SCENARIOS), help="comma-separated, among " + ", ".join(SCENARIOS)
    )
    parser.add_argument("--requests", type=int, default=200, help="writes measured per run (default 200)")
    parser.add_argument("--tree", type=Path, help="another checkout, measured beside this one (before/after)")
    parser.add_argument("--child", nargs=4, metavar=("TREE", "DATA", "SCENARIO", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    unknown = set(args.scenarios.split(",")) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    return args


# --- In the child: the application of one tree, N writes -----------------------------------------------------


def child(tree: str, data_dir: str, scenario: str, count: int) -> None:
    sys.path.insert(0, tree)
    from portal.app import create_app
    from portal.identity.keys import keyed_hash
    from portal.settings import load_settings

    data = json.loads(Path(data_dir, "data.json").read_text())
    work = Path(tempfile.mkdtemp(prefix="instructions-"))
    try:
        shutil.copy(Path(data_dir, "db.sqlite3"), work / "db.sqlite3")
        env = {**data["env"], "PORTAL_DATABASE_URL": f"sqlite:///{work / 'db.sqlite3'}"}
        settings = load_settings(environ=env)
        app = create_app(settings)
        items: list[list[str]] = data["items"].get(scenario, [])
        if scenario == "signin":  # a new address from a new address each time, as writes.py's script sends them
            base = secrets.token_urlsafe(24)
            token = keyed_hash(settings.secret_key, "csrf", base)
            items = [
                ["/signin", f"portal_csrf={base}", f"10.{n // 62_500 % 250}.{n // 250 % 250}.{n % 250 + 1}",
                 f"csrf_token={token}&email=instructions{n}%40example.com"]
                for n in range(WARMUP + count)
            ]  # fmt: skip
        if len(items) < WARMUP + count:
            raise SystemExit(f"{scenario}: {len(items)} prepared writes, {WARMUP + count} needed")
        asyncio.run(_send(app, items[: WARMUP + count]))
    finally:
        shutil.rmtree(work, ignore_errors=True)


async def _send(app: Any, items: list[list[str]]) -> None:
    async with app.router.lifespan_context(app):
        for path, cookie, ip, form in items:
            status = await _post(app, path, cookie, ip, form.encode())
            if status != 303:
                raise SystemExit(f"POST {path} answered {status}")


async def _post(app: Any, path: str, cookie: str, ip: str, body: bytes) -> int:
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8000"), (b"cookie", cookie.encode()),
                    (b"content-type", b"application/x-www-form-urlencoded"),
                    (b"content-length", str(len(body)).encode())],
        "client": (ip, 50000), "server": ("127.0.0.1", 8000),
    }  # fmt: skip
    received = False
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        nonlocal received
        if not received:
            received = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # the client never disconnects
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    await app(scope, receive, send)
    return statuses[0]


# --- In the parent: the data once, then two runs per tree and scenario -----------------------------------------


def prepare(data_dir: Path, scenarios: Sequence[str], count: int) -> None:
    sys.path.insert(0, str(BENCH_DIR))
    sys.path.insert(0, str(PROJECT_ROOT))
    from pages import portal_environment, prepare_database
    from writes import BenchData, Scripts

    url = f"sqlite:///{data_dir / 'db.sqlite3'}"
    prepare_database(url)
    env = portal_environment(url, 8000)
    data = BenchData(database_url=url, portal_env=env)
    needed = WARMUP + count
    data.prepare([s for s in scenarios if s != "signin"], capacity=needed + 10)
    items = {}
    for name in scenarios:
        if name != "signin":
            items[name] = Scripts(name, data, data_dir, env["PORTAL_SECRET_KEY"])._items(needed)
    data_dir.joinpath("data.json").write_text(json.dumps({"env": env, "items": items}))


def instructions(tree: Path, data_dir: Path, scenario: str, count: int) -> int:
    """The instructions the child ran in all, `count` measured writes after the warm-up."""
    out = data_dir / f"callgrind-{secrets.token_hex(4)}.out"
    command = [
        "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
        sys.executable, __file__, "--child", str(tree), str(data_dir), scenario, str(count),
    ]  # fmt: skip
    environ = {**os.environ, "PORTAL_ENVIRONMENT": "test"}
    done = subprocess.run(command, capture_output=True, text=True, env=environ, check=False)  # noqa: S603
    if done.returncode != 0:
        raise SystemExit(f"{scenario} on {tree}: the child failed:\n{done.stderr[-2000:]}")
    totals = re.search(r"^(?:summary|totals): (\d+)", out.read_text(), re.MULTILINE)
    out.unlink()
    if totals is None:
        raise SystemExit(f"{scenario} on {tree}: no total in callgrind's output")
    return int(totals[1])


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        tree, data_dir, scenario, count = args.child
        child(tree, data_dir, scenario, int(count))
        return 0
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    scenarios = args.scenarios.split(",")
    trees = [PROJECT_ROOT] + ([args.tree.resolve()] if args.tree else [])
    for tree in trees:  # compiled once, so that neither run of a pair compiles and the other not
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree / "portal")], check=True)  # noqa: S603
    with tempfile.TemporaryDirectory(prefix="bench-instructions-") as tmp:
        data_dir = Path(tmp)
        prepare(data_dir, scenarios, args.requests)
        print(f"{args.requests} writes measured per run, after {WARMUP}; instructions per write (millions)")
        print(
            f"{'scenario':<10}"
            + "".join(f"{str(tree):>36}" for tree in trees)
            + ("   this / other" if args.tree else "")
        )
        for scenario in scenarios:
            per_write = []
            for tree in trees:
                idle = instructions(tree, data_dir, scenario, 0)
                busy = instructions(tree, data_dir, scenario, args.requests)
                per_write.append((busy - idle) / args.requests)
            row = f"{scenario:<10}" + "".join(f"{value / 1e6:>36.3f}" for value in per_write)
            if args.tree:
                row += f"   {per_write[0] / per_write[1]:.3f}"
            print(row, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
