"""Benchmark: the streamed portability archive (POST /me/download) of the heavy demo customer and of a synthetic big
customer, against writing the same rows with `zipfile` to /dev/null in the same run.

    .venv/bin/python bench/archive.py                 # heavy customer + 200,000 purchases / 1,000,000 page views
    .venv/bin/python bench/archive.py --quick         # heavy customer + 20,000 purchases / 100,000 page views
    .venv/bin/python bench/archive.py --purchases 50000 --page-views 250000 --rounds 3

For each customer, `--rounds` alternating runs (baseline, portal | portal, baseline | …):
- portal: one uvicorn worker (bench/_harness.py's flags) serves the download to a client reading as fast as it can;
  time to first byte, time to last byte, bytes, records (from the archive's own manifest.json: the rows of the JSON
  files, each record being written once as JSON and once as CSV), records/s, and the peak
  RSS of the server process while it streams (VmRSS sampled every 20 ms, and VmHWM);
- baseline: a child process reads the same rows with the stdlib sqlite3 module and writes them as JSON and CSV
  with `zipfile` (same compression level) to /dev/null; its time, records/s and peak RSS (VmHWM).
Aims (issue 6): peak RSS under 150 MB for the big customer, and at least half the baseline's records/s.
See bench/README.md for the method and the latest figures.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import http.client
import io
import json
import os
import random
import secrets
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent))  # `_harness` sits next to this script
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the portal itself

from _harness import (  # noqa: E402
    HOST,
    BenchError,
    free_port,
    load_average,
    running_server,
    uvicorn_command,
    versions,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
HEAVY_CUSTOMER = "camille.durand@example.com"
BIG_CUSTOMER = "big.customer@example.com"
SESSION_MINUTES = "600"
PARIS = ZoneInfo("Europe/Paris")
RSS_LIMIT_MB = 150
THROUGHPUT_AIM = 0.5


# --- The synthetic big customer ------------------------------------------------------------------------------------

_STAMP = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy stores a naive UTC datetime in SQLite (UTCDateTime)
_INSERT_PAGE_VIEW = "INSERT INTO page_view (customer_id, viewed_at, url, title) VALUES (?, ?, ?, ?)"


def add_big_customer(path: Path, *, purchases: int, page_views: int, seed: int = 6) -> int:
    """Insert one customer with `purchases` purchases (two lines each) and `page_views` page views, straight into
    the SQLite file with executemany, and the per-customer totals the pages read. Returns the customer id."""
    rng = random.Random(seed)
    now = datetime(2026, 11, 1, 9, tzinfo=UTC)
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA synchronous=OFF")
        stores = [row[0] for row in db.execute("SELECT id FROM store ORDER BY id")]
        created = (now - timedelta(days=6 * 365)).strftime(_STAMP)
        cursor = db.execute(
            "INSERT INTO customer (email, email_key, first_name, last_name, preferred_language, source, created_at, "
            "updated_at) VALUES (?, ?, 'Grand', 'Client', 'fr', 'store', ?, ?)",
            (BIG_CUSTOMER, BIG_CUSTOMER, created, created),
        )
        customer_id = int(cursor.lastrowid)  # type: ignore[arg-type]
        next_purchase = (db.execute("SELECT COALESCE(MAX(id), 0) FROM purchase").fetchone()[0] or 0) + 1
        span = 6 * 365 * 86400
        totals: dict[tuple[int, int], list] = {}
        batch_p: list[tuple] = []
        batch_l: list[tuple] = []
        for n in range(purchases):
            purchase_id = next_purchase + n
            at = now - timedelta(seconds=span * (purchases - n) / purchases)
            store = stores[rng.randrange(len(stores))]
            first, second = rng.randrange(100, 9900), rng.randrange(100, 4900)
            total = first + 2 * second
            batch_p.append(
                (purchase_id, customer_id, store, "in_store", at.strftime(_STAMP), f"BIG{purchase_id:010d}", total)
            )
            batch_l.append((purchase_id, f"SKU-{first}", "Arrosoir galvanisé 10 L", 1, first))
            batch_l.append((purchase_id, f"SKU-{second}", "Terreau universel 40 L", 2, second))
            cell = totals.setdefault((store, at.astimezone(PARIS).year), [0, 0, at, at])
            cell[0] += 1
            cell[1] += total
            cell[3] = at
            if len(batch_p) >= 20_000:
                _flush_purchases(db, batch_p, batch_l)
        _flush_purchases(db, batch_p, batch_l)
        db.executemany(
            "INSERT INTO purchase_total (customer_id, store_id, year, purchase_count, amount_cents, "
            "first_purchase_at, last_purchase_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (customer_id, store, year, c, a, f.strftime(_STAMP), last.strftime(_STAMP))
                for (store, year), (c, a, f, last) in totals.items()
            ],
        )

        pages = [f"https://www.maison-aubepine.example/jardin/produit-{i}" for i in range(5000)]
        days: dict[str, int] = {}
        batch_v: list[tuple] = []
        last = now
        for n in range(page_views):
            at = now - timedelta(seconds=(400 * 86400) * (page_views - n) / page_views)
            page = rng.randrange(len(pages))
            batch_v.append((customer_id, at.strftime(_STAMP), f"{pages[page]}?ref={n % 97}", f"Produit {page}"))
            day = at.astimezone(PARIS).date().isoformat()
            days[day] = days.get(day, 0) + 1
            last = at
            if len(batch_v) >= 50_000:
                db.executemany(
                    "INSERT INTO page_view (customer_id, viewed_at, url, title) VALUES (?, ?, ?, ?)", batch_v
                )
                batch_v.clear()
        db.executemany("INSERT INTO page_view (customer_id, viewed_at, url, title) VALUES (?, ?, ?, ?)", batch_v)
        db.executemany(
            "INSERT INTO page_view_day (customer_id, day, view_count) VALUES (?, ?, ?)",
            [(customer_id, day, count) for day, count in days.items()],
        )
        if page_views:
            db.execute(
                "INSERT INTO page_view_total (customer_id, view_count, last_viewed_at) VALUES (?, ?, ?)",
                (customer_id, page_views, last.strftime(_STAMP)),
            )
        db.commit()
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return customer_id
    finally:
        db.close()


def _flush_purchases(db: sqlite3.Connection, purchases: list[tuple], lines: list[tuple]) -> None:
    db.executemany(
        "INSERT INTO purchase (id, customer_id, store_id, channel, purchased_at, receipt_number, total_cents, currency)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, 'EUR')",
        purchases,
    )
    db.executemany(
        "INSERT INTO purchase_line (purchase_id, sku, label, quantity, unit_price_cents) VALUES (?, ?, ?, ?, ?)", lines
    )
    purchases.clear()
    lines.clear()


# --- The baseline: the same rows, stdlib only ---------------------------------------------------------------------

BASELINE_QUERIES = {
    "profile": "SELECT * FROM customer WHERE id = :c",
    "purchases": "SELECT p.id, p.receipt_number, p.purchased_at, p.channel, s.code, s.name, s.city, s.kind, "
    "p.total_cents, p.currency FROM purchase p JOIN store s ON s.id = p.store_id WHERE p.customer_id = :c "
    "ORDER BY p.purchased_at, p.id",
    "purchase_lines": "SELECT p.id, p.receipt_number, l.id, l.sku, l.label, l.quantity, l.unit_price_cents, "
    "p.currency FROM purchase_line l JOIN purchase p ON p.id = l.purchase_id WHERE p.customer_id = :c "
    "ORDER BY p.purchased_at, p.id, l.id",
    "browsing": "SELECT viewed_at, url, title FROM page_view WHERE customer_id = :c ORDER BY viewed_at, id",
    "consent_events": "SELECT e.occurred_at, e.purpose, e.granted, e.channel, e.actor, e.policy_version, "
    "e.wording_hash, w.locale, w.text FROM consent_event e LEFT JOIN consent_wording w ON w.hash = e.wording_hash "
    "WHERE e.customer_id = :c ORDER BY e.occurred_at, e.id",
    "requests": "SELECT * FROM privacy_request WHERE customer_id = :c ORDER BY received_at, id",
    "request_events": "SELECT r.reference, e.* FROM request_event e JOIN privacy_request r ON r.id = e.request_id "
    "WHERE r.customer_id = :c ORDER BY r.received_at, r.id, e.occurred_at, e.id",
    "profile_changes": "SELECT * FROM profile_change WHERE customer_id = :c ORDER BY changed_at, id",
}


def baseline_child(path: str, customer_id: int, compresslevel: int) -> None:
    """Write every dataset as JSON and CSV with zipfile to /dev/null; print seconds and rows as JSON."""
    started = time.perf_counter()
    db = sqlite3.connect(path)
    rows_written = 0
    with (
        open(os.devnull, "wb") as sink,
        zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=compresslevel) as archive,
    ):
        for name, query in BASELINE_QUERIES.items():
            for suffix in ("json", "csv"):
                cursor = db.execute(query, {"c": customer_id})
                columns = [d[0] for d in cursor.description]
                with archive.open(f"data/{name}.{suffix}", "w") as handle:
                    text = io.StringIO()
                    writer = csv.writer(text) if suffix == "csv" else None
                    handle_rows = 0
                    if writer:
                        writer.writerow(columns)
                    else:
                        text.write("[")
                    while batch := cursor.fetchmany(500):
                        if writer:
                            writer.writerows(batch)
                        else:
                            objects = (dict(zip(columns, row, strict=True)) for row in batch)
                            text.write(",\n" if handle_rows else "")
                            text.write(",\n".join(json.dumps(o, ensure_ascii=False) for o in objects))
                        if not writer:  # records, not file rows: the CSV twin holds the same records again
                            rows_written += len(batch)
                        handle_rows += len(batch)
                        handle.write(text.getvalue().encode())
                        text.seek(0)
                        text.truncate()
                    handle.write(text.getvalue().encode() + (b"" if writer else b"]\n"))
    seconds = time.perf_counter() - started
    # VmHWM, not ru_maxrss: the latter still counts the parent's pages this process had before exec.
    peak_kb = next(
        int(line.split()[1]) for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("VmHWM:")
    )
    print(json.dumps({"seconds": seconds, "rows": rows_written, "peak_kb": peak_kb}))


@dataclasses.dataclass(frozen=True)
class BaselineRun:
    seconds: float
    rows: int
    peak_rss_mb: float

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def run_baseline(path: Path, customer_id: int, compresslevel: int) -> BaselineRun:
    completed = subprocess.run(  # noqa: S603  (this interpreter running this script)
        [sys.executable, __file__, "--baseline-child", str(path), str(customer_id), str(compresslevel)],
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise BenchError(f"the baseline failed:\n{completed.stderr}")
    figures = json.loads(completed.stdout)
    return BaselineRun(figures["seconds"], figures["rows"], figures["peak_kb"] / 1024)


# --- The portal -----------------------------------------------------------------------------------------------------


def portal_environment(database_url: str, port: int, secret: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("PORTAL_")}
    env.update(
        {
            "PORTAL_ENVIRONMENT": "test",
            "PORTAL_SECRET_KEY": secret,
            "PORTAL_DATABASE_URL": database_url,
            "PORTAL_BASE_URL": f"http://{HOST}:{port}",
            "PORTAL_RUN_WORKER": "false",
            "PORTAL_CUSTOMER_IDLE_MINUTES": SESSION_MINUTES,
            "PORTAL_CUSTOMER_ABSOLUTE_MINUTES": SESSION_MINUTES,
        }
    )
    return env


@dataclasses.dataclass(frozen=True)
class Credentials:
    cookie: str
    csrf_token: str


def sign_in(database_url: str, env: dict[str, str], email: str) -> tuple[int, Credentials]:
    """A customer session opened directly in the database, and the CSRF token the page would carry."""
    from itsdangerous import Signer
    from sqlalchemy import select

    from portal.db import make_engine, transaction
    from portal.identity.keys import keyed_hash
    from portal.identity.sessions import open_session
    from portal.models import Customer, email_key, utcnow
    from portal.settings import load_settings

    settings = load_settings(environ=env)
    engine = make_engine(database_url)
    try:
        with transaction(engine) as session:
            customer_id = session.scalars(select(Customer.id).where(Customer.email_key == email_key(email))).one()
            raw_id = open_session(session, settings=settings, kind="customer", customer_id=customer_id, now=utcnow())
    finally:
        engine.dispose()
    cookie = Signer(settings.secret_key, salt="portal.session").sign(raw_id).decode()
    return customer_id, Credentials(cookie=cookie, csrf_token=keyed_hash(settings.secret_key, "csrf", raw_id))


class RssSampler:
    """Peak resident memory of a process while a block runs, from /proc (VmRSS every 20 ms)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_kb = 0
        self._stop = threading.Event()

    def _read(self, field: str) -> int:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith(field):
                    return int(line.split()[1])
        return 0

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kb = max(self.peak_kb, self._read("VmRSS:"))
            time.sleep(0.02)

    @contextlib.contextmanager
    def sampling(self):  # type: ignore[no-untyped-def]
        thread = threading.Thread(target=self._run, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()

    @property
    def high_water_mb(self) -> float:
        return self._read("VmHWM:") / 1024


@dataclasses.dataclass(frozen=True)
class PortalRun:
    first_byte: float
    last_byte: float
    bytes: int
    rows: int
    peak_rss_mb: float
    rss_before_mb: float

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.last_byte if self.last_byte else 0.0


def download(port: int, pid: int, credentials: Credentials, scratch: Path) -> PortalRun:
    body = urlencode({"csrf_token": credentials.csrf_token})
    sampler = RssSampler(pid)
    before = sampler._read("VmRSS:") / 1024
    target = scratch / "archive.zip"
    with sampler.sampling():
        connection = http.client.HTTPConnection(HOST, port, timeout=600)
        started = time.perf_counter()
        connection.request(
            "POST",
            "/me/download",
            body=body,
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Cookie": f"portal_session={credentials.cookie}",
            },
        )
        response = connection.getresponse()
        if response.status != 200 or response.getheader("content-type") != "application/zip":
            raise BenchError(f"the download answered {response.status}: {response.read(500)!r}")
        first = None
        size = 0
        with target.open("wb") as out:
            while chunk := response.read1(256 * 1024):
                first = first or time.perf_counter() - started
                size += len(chunk)
                out.write(chunk)
        last = time.perf_counter() - started
        connection.close()
    with zipfile.ZipFile(target) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    # Records, not file rows: each record is written twice, once in data/<dataset>.json and once in its .csv twin;
    # summing every file's rows counted it twice and doubled the rows/s reported (the baseline's likewise).
    rows = sum(entry["rows"] or 0 for entry in manifest["files"] if _is_json_data(entry["path"]))
    target.unlink()
    return PortalRun(first or last, last, size, rows, sampler.peak_kb / 1024, before)


def _is_json_data(path: str) -> bool:
    return path.startswith("data/") and path.endswith(".json")


# --- The run ---------------------------------------------------------------------------------------------------


def measure(
    name: str, port: int, pid: int, credentials: Credentials, path: Path, customer_id: int, rounds: int, level: int
) -> dict[str, object]:
    portal_runs: list[PortalRun] = []
    baseline_runs: list[BaselineRun] = []
    for index in range(rounds):
        order = ("baseline", "portal") if index % 2 == 0 else ("portal", "baseline")
        for which in order:
            if which == "portal":
                portal_runs.append(download(port, pid, credentials, path.parent))
            else:
                baseline_runs.append(run_baseline(path, customer_id, level))
        p, b = portal_runs[-1], baseline_runs[-1]
        print(
            f"  {name} round {index + 1}/{rounds} ({' then '.join(order)}): portal {p.rows:,} records, "
            f"{p.bytes / 1e6:.1f} MB, first byte {p.first_byte * 1000:.0f} ms, last byte {p.last_byte:.2f} s, "
            f"{p.rows_per_second:,.0f} records/s, server RSS {p.rss_before_mb:.0f} → peak {p.peak_rss_mb:.0f} MB | "
            f"baseline {b.rows:,} records in {b.seconds:.2f} s, {b.rows_per_second:,.0f} records/s, "
            f"RSS {b.peak_rss_mb:.0f} MB",
            flush=True,
        )
    ratios = [p.rows_per_second / b.rows_per_second for p, b in zip(portal_runs, baseline_runs, strict=True)]
    return {
        "customer": name,
        "rows": portal_runs[-1].rows,
        "baseline_rows": baseline_runs[-1].rows,
        "bytes": portal_runs[-1].bytes,
        "first_byte_ms": statistics.median(p.first_byte for p in portal_runs) * 1000,
        "last_byte_s": statistics.median(p.last_byte for p in portal_runs),
        "rows_per_s": statistics.median(p.rows_per_second for p in portal_runs),
        "baseline_s": statistics.median(b.seconds for b in baseline_runs),
        "baseline_rows_per_s": statistics.median(b.rows_per_second for b in baseline_runs),
        "ratio": statistics.median(ratios),
        "ratio_range": (min(ratios), max(ratios)),
        "peak_rss_mb": max(p.peak_rss_mb for p in portal_runs),
        "baseline_rss_mb": max(b.peak_rss_mb for b in baseline_runs),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a tenth of the big customer, 1 round")
    parser.add_argument("--purchases", type=int, default=None)
    parser.add_argument("--page-views", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    purchases = args.purchases if args.purchases is not None else (20_000 if args.quick else 200_000)
    page_views = args.page_views if args.page_views is not None else (100_000 if args.quick else 1_000_000)
    rounds = args.rounds or (1 if args.quick else 3)

    from portal.portability.archive import COMPRESSLEVEL

    print("versions:", ", ".join(f"{k} {v}" for k, v in versions().items()))
    print(f"load average at start: {load_average()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-archive-") as scratch_dir:
        scratch = Path(scratch_dir)
        path = scratch / "portal.sqlite3"
        database_url = f"sqlite:///{path}"
        started = time.perf_counter()
        from pages import prepare_database  # the demo dataset, as the page benchmark builds it

        print("demo dataset:", prepare_database(database_url), f"({time.perf_counter() - started:.1f} s)", flush=True)
        started = time.perf_counter()
        big_id = add_big_customer(path, purchases=purchases, page_views=page_views)
        print(
            f"big customer: {purchases:,} purchases ({2 * purchases:,} lines), {page_views:,} page views "
            f"({time.perf_counter() - started:.1f} s)",
            flush=True,
        )
        port = free_port()
        env = portal_environment(database_url, port, secrets.token_urlsafe(48))
        heavy_id, heavy = sign_in(database_url, env, HEAVY_CUSTOMER)
        _, big = sign_in(database_url, env, BIG_CUSTOMER)
        results = []
        with running_server(
            "portal",
            uvicorn_command("portal.app:create_app", port, factory=True),
            port=port,
            env=env,
            cwd=PROJECT_ROOT,
            log_dir=scratch,
            ready_path="/healthz",
        ) as server:
            pid = server.process.pid
            for name, credentials, customer_id in (("heavy", heavy, heavy_id), ("big", big, big_id)):
                results.append(measure(name, port, pid, credentials, path, customer_id, rounds, COMPRESSLEVEL))
            high_water = RssSampler(pid).high_water_mb
    print(f"load average at end: {load_average()}")
    print()
    print(
        "| customer | records | archive | first byte | last byte | records/s | baseline records/s | ratio [min–max] "
        "| peak RSS server | baseline RSS |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---|---:|---:|")
    for r in results:
        low, high = r["ratio_range"]  # type: ignore[misc]
        print(
            f"| {r['customer']} | {r['rows']:,} | {r['bytes'] / 1e6:.1f} MB | {r['first_byte_ms']:.0f} ms "
            f"| {r['last_byte_s']:.2f} s | {r['rows_per_s']:,.0f} | {r['baseline_rows_per_s']:,.0f} "
            f"| {r['ratio']:.2f} [{low:.2f}–{high:.2f}] | {r['peak_rss_mb']:.0f} MB | {r['baseline_rss_mb']:.0f} MB |"
        )
    print(f"server VmHWM over the whole run: {high_water:.0f} MB")
    big_result = results[-1]
    rss_ok = float(big_result["peak_rss_mb"]) < RSS_LIMIT_MB  # type: ignore[arg-type]
    speed_ok = all(float(r["ratio"]) >= THROUGHPUT_AIM for r in results)  # type: ignore[arg-type]
    print(
        f"aims: peak RSS < {RSS_LIMIT_MB} MB for the big customer: {'yes' if rss_ok else 'NO'}; "
        f"≥ {THROUGHPUT_AIM:.0%} of the baseline's records/s: {'yes' if speed_ok else 'NO'}"
        + ("" if purchases >= 200_000 and page_views >= 1_000_000 else " (smaller than the issue's big customer)")
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--baseline-child":
        baseline_child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
        sys.exit(0)
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
