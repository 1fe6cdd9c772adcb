"""Benchmark: what one customer's archive download costs the other customers on the same worker.

    .venv/bin/python bench/archive_neighbours.py            # 8 rounds of 5 s (~2 min)
    .venv/bin/python bench/archive_neighbours.py --quick    # 2 rounds of 2 s (figures not reliable)
    .venv/bin/python bench/archive_neighbours.py --tree /work/main   # the portal of another checkout (before/after)

One uvicorn worker serves the demo (bench/pages.py's database). Each round measures another customer's overview
(GET /me, `wrk -t2 -c32`) twice, alternating the order: once on a quiet worker, once while the heavy customer
(10,000 purchases, 100,000 page views) downloads their archive (POST /me/download) over and over, read as fast as
the client can. The figure is the median of the per-round ratios busy/quiet with its min–max; a round is dropped
when the quiet run fell below 80% of its best or wrk saw errors, and the result is unreliable ("not established")
when fewer than 6 rounds survive or max/min > 1.15 (../shared/BENCHMARKS.md). Aim (issue 17): the others keep at
least 85% of their requests/s. Also printed: the archives completed and their records/s, loaded and quiet.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path
from urllib.parse import urlencode

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from _harness import (  # noqa: E402
    BenchError,
    Round,
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
from archive import Credentials, portal_environment, sign_in  # noqa: E402
from pages import HEAVY_CUSTOMER, PROJECT_ROOT, prepare_database  # noqa: E402

HOST = "127.0.0.1"
NEIGHBOUR = "leo.bernard@example.org"  # portal.demo.dataset.DEMO_CUSTOMERS[1]
AIM = 0.85  # the others keep at least 85% of their throughput


def _json_data(path: str) -> bool:
    return path.startswith("data/") and path.endswith(".json")


class Downloader:
    """Downloads the heavy customer's archive again and again in a thread until stopped; counts what it got."""

    def __init__(self, port: int, credentials: Credentials, scratch: Path) -> None:
        self.port, self.credentials, self.scratch = port, credentials, scratch
        self.stop = threading.Event()
        self.archives = 0
        self.records = 0
        self.seconds = 0.0
        self.error: str | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _one(self) -> None:
        connection = http.client.HTTPConnection(HOST, self.port, timeout=600)
        started = time.perf_counter()
        connection.request(
            "POST",
            "/me/download",
            body=urlencode({"csrf_token": self.credentials.csrf_token}),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Cookie": f"portal_session={self.credentials.cookie}",
            },
        )
        response = connection.getresponse()
        if response.status != 200:
            raise BenchError(f"the download answered {response.status}: {response.read(300)!r}")
        target = self.scratch / "archive.zip"
        with target.open("wb") as out:
            while chunk := response.read1(256 * 1024):
                out.write(chunk)
                if self.stop.is_set():  # a download cut short is not counted
                    connection.close()
                    return
        connection.close()
        with zipfile.ZipFile(target) as archive:
            files = json.loads(archive.read("manifest.json"))["files"]
        # Records, not file rows: each record is in data/<dataset>.json and again in its .csv twin.
        self.records += sum(
            f["rows"] or 0 for f in files if f["path"].startswith("data/") and f["path"].endswith(".json")
        )
        self.archives += 1
        self.seconds += time.perf_counter() - started

    def _run(self) -> None:
        try:
            while not self.stop.is_set():
                self._one()
        except Exception as exc:  # noqa: BLE001  reported by the round
            self.error = f"{type(exc).__name__}: {exc}"

    def __enter__(self) -> Downloader:
        self.thread.start()
        time.sleep(0.5)  # the first slices are under way
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=60)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--quick", action="store_true", help="2 rounds of 2 s")
    parser.add_argument("--tree", type=Path, default=PROJECT_ROOT, help="the checkout whose portal is served")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.duration = 2, 2.0
    return run_benchmark(lambda: run(args.rounds, args.duration, args.tree.resolve()))


def run(rounds: int, duration: float, tree: Path) -> int:
    wrk = find_wrk()
    print_machine(wrk)
    print(f"  portal served from {tree}", flush=True)
    with tempfile.TemporaryDirectory(prefix="portal-bench-") as tmp:
        scratch = Path(tmp)
        database_url = f"sqlite:///{scratch / 'demo.sqlite3'}"
        print("Preparing a fresh demo database…", flush=True)
        print("  " + prepare_database(database_url), flush=True)
        port = free_port()
        env = portal_environment(database_url, port, os.urandom(32).hex())
        _, heavy = sign_in(database_url, env, HEAVY_CUSTOMER)
        _, neighbour = sign_in(database_url, env, NEIGHBOUR)
        command = uvicorn_command("portal.app:create_app", port, factory=True, app_dir=tree)
        with running_server("portal", command, port=port, env=env, cwd=tree, log_dir=scratch) as portal:
            url = f"{portal.base_url}/me"
            headers = {"Cookie": f"portal_session={neighbour.cookie}"}

            def overview(seconds: float):  # type: ignore[no-untyped-def]
                return run_wrk(wrk, url, threads=2, connections=32, duration=seconds, headers=headers,
                               min_bytes_per_request=1000)  # fmt: skip

            overview(3.0)  # warm-up
            with Downloader(port, heavy, scratch) as warm:
                time.sleep(3.0)
            if warm.error:
                raise BenchError(f"the archive download failed: {warm.error}")
            print(f"\n{rounds} rounds of wrk -t2 -c32 -d{duration:g}s on GET /me, quiet and while an archive streams")
            results: list[Round] = []
            busy_archives = busy_records = 0
            busy_seconds = 0.0
            for index in range(rounds):
                order = ("quiet", "busy") if index % 2 == 0 else ("busy", "quiet")
                got = {}
                for which in order:
                    if which == "quiet":
                        got[which] = overview(duration)
                        continue
                    with Downloader(port, heavy, scratch) as downloader:
                        got[which] = overview(duration)
                    if downloader.error:
                        raise BenchError(f"the archive download failed: {downloader.error}")
                    busy_archives += downloader.archives
                    busy_records += downloader.records
                    busy_seconds += downloader.seconds
                r = Round(index + 1, order, got["quiet"], got["busy"])
                results.append(r)
                print(
                    f"  round {r.index}  {'/'.join(order):<10}  quiet {r.baseline.requests_per_sec:7,.0f} req/s  "
                    f"while downloading {r.subject.requests_per_sec:7,.0f} req/s  ratio {r.ratio:.3f}  "
                    f"load {load_average()}",
                    flush=True,
                )
            with Downloader(port, heavy, scratch) as alone:
                while alone.archives < 2 and not alone.error:
                    time.sleep(0.2)

    summary = summarise(results)
    print()
    print(
        f"GET /me while an archive streams: {summary.median:.3f} [{summary.low:.3f}–{summary.high:.3f}] of its quiet "
        f"throughput ({summary.subject_rps:,.0f} vs {summary.baseline_rps:,.0f} req/s), {summary.kept}/{rounds} "
        f"rounds kept{'' if summary.reliable else ' — unreliable: ' + summary.why_unreliable}"
    )
    for dropped in (x for x in summary.rounds if not x.kept):
        print(f"  round {dropped.index} dropped: {dropped.dropped_because}")
    if busy_archives:
        print(
            f"archives completed while /me was loaded: {busy_archives}, {busy_records / busy_seconds:,.0f} records/s; "
            f"alone: {alone.records / alone.seconds:,.0f} records/s ({alone.archives} archives)"
        )
    else:
        print(
            f"no archive completed while /me was loaded (each took longer than a round); alone: "
            f"{alone.records / max(alone.seconds, 1e-9):,.0f} records/s ({alone.archives} archives)"
        )
    met = summary.reliable and summary.median >= AIM
    if not summary.reliable:
        verdict = f"NOT ESTABLISHED ({summary.why_unreliable})"
    else:
        verdict = "MET" if met else f"NOT MET ({1 - summary.median:.0%} lost)"
    print(f"aim: the other customers keep at least {AIM:.0%} of their throughput: {verdict}")
    print(f"load average after the run: {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
