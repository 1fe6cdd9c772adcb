"""Benchmark: importing 1,000,000 purchase lines (about 250,000 receipts of 100,000 customers) from a CSV file.

    .venv/bin/python bench/import.py                       # SQLite; 1,000,000 lines, 2 rounds
    .venv/bin/python bench/import.py --lines 200000 --rounds 1      # a quicker look
    PORTAL_BENCH_DATABASE_URL=postgresql+psycopg://… .venv/bin/python bench/import.py   # also on PostgreSQL

Each round starts from a fresh database holding the stores and the 100,000 customers, then runs, alternately, in a
subprocess of its own (its wall time, CPU time and peak RSS read by /usr/bin/time):

- the import: `python -m portal.cli import purchases FILE`, the command the retailer runs (both passes: every row
  checked and its receipt spooled, packed, then written in batches, one transaction each);
- the ceiling: the same rows grouped into receipts and written with a bare DB-API `executemany` into the same two
  tables (`purchase`, `purchase_line`), with no validation, no customer matching and no totals.

It reports wall time, CPU time (user + system), lines/s of each, peak RSS and the load average, and the import's time
as a multiple of the ceiling's (the median of the per-round ratios, rounds alternating which goes first). The speed
target (1,000,000 lines in under a minute) is judged on CPU time: on this shared 2-core machine the wall clock also
counts the time other processes held the cores. The PostgreSQL database PORTAL_BENCH_DATABASE_URL
points to must be a scratch database: every round empties it. It is not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the portal package, when run from anywhere

from sqlalchemy import insert  # noqa: E402

from portal.db import make_engine, migrate  # noqa: E402
from portal.models import Customer, Store  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BATCH_ROWS = 5000
TIME = "/usr/bin/time"  # GNU time (Debian package `time`)
STORES = [*(f"S{n:02d}" for n in range(1, 21)), "WEB"]
HEADER = ["receipt_number", "store_code", "purchased_at", "customer_id", "sku", "label", "quantity", "unit_price"]
SECRET = "bench-" + "k" * 40
START = datetime(2025, 1, 1, 8, tzinfo=UTC)


# --- The data ------------------------------------------------------------------------------------------------------


def write_purchases_csv(path: Path, lines: int, customers: int) -> int:
    """`lines` purchase lines in receipts of 1 to 7 lines (4 on average) of random customers; the receipt count."""
    rng = random.Random(11)
    receipts = 0
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(HEADER)
        written = 0
        while written < lines:
            receipts += 1
            count = min(rng.randint(1, 7), lines - written)
            moment = (START + timedelta(minutes=receipts * 2 + rng.randint(0, 1))).isoformat()
            store = rng.choice(STORES)
            customer = f"C{rng.randrange(customers):06d}"
            for line in range(count):
                sku = rng.randrange(5000)
                price = f"{rng.randint(100, 9999) // 100}.{rng.randint(0, 99):02d}"
                writer.writerow(
                    [
                        f"R{receipts:08d}",
                        store,
                        moment,
                        customer,
                        f"SKU{sku:05d}",
                        f"Article {sku}",
                        line % 3 + 1,
                        price,
                    ]
                )
            written += count
    return receipts


def seed(database_url: str, customers: int) -> None:
    """A fresh schema with the stores and `customers` customers, as `portal import stores|customers` leaves them."""
    if database_url.startswith("sqlite:///"):
        for suffix in ("", "-wal", "-shm"):
            Path(database_url.removeprefix("sqlite:///") + suffix).unlink(missing_ok=True)
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            if engine.dialect.name == "postgresql":
                connection.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        migrate(database_url)
        with engine.begin() as connection:
            connection.execute(
                insert(Store.__table__),
                [
                    {
                        "code": code,
                        "name": f"Magasin {code}",
                        "city": "Paris",
                        "kind": "web" if code == "WEB" else "store",
                    }
                    for code in STORES
                ],
            )
            created = datetime(2024, 1, 1, tzinfo=UTC)
            connection.execute(
                insert(Customer.__table__),
                [
                    {
                        "retailer_ref": f"C{n:06d}",
                        "email": f"client{n:06d}@example.fr",
                        "email_key": f"client{n:06d}@example.fr",
                        "loyalty_number": f"FID{n:08d}",
                        "preferred_language": "fr",
                        "source": "import",
                        "created_at": created,
                        "updated_at": created,
                    }
                    for n in range(customers)
                ],
            )
            if engine.dialect.name == "postgresql":
                connection.exec_driver_sql("ANALYZE")
    finally:
        engine.dispose()


# --- The two children ------------------------------------------------------------------------------------------


def child_ceiling(database_url: str, path: Path) -> dict[str, object]:
    """The same rows into the same tables by bare `executemany`, receipts grouped as the file has them."""
    engine = make_engine(database_url)
    raw = engine.raw_connection()
    cursor = raw.cursor()
    mark = "?" if engine.dialect.name == "sqlite" else "%s"
    cursor.execute("SELECT id, code FROM store")
    stores = {code: store_id for store_id, code in cursor.fetchall()}
    cursor.execute("SELECT id, retailer_ref FROM customer")
    customers = {ref: customer_id for customer_id, ref in cursor.fetchall()}
    cursor.execute("SELECT COALESCE(MAX(id), 0) FROM purchase")
    next_id = cursor.fetchone()[0]
    purchase_sql = (
        "INSERT INTO purchase (id, customer_id, store_id, channel, purchased_at, receipt_number, total_cents, currency)"
        f" VALUES ({', '.join([mark] * 8)})"
    )
    line_sql = (
        "INSERT INTO purchase_line (purchase_id, sku, label, quantity, unit_price_cents)"
        f" VALUES ({', '.join([mark] * 5)})"
    )
    sqlite = engine.dialect.name == "sqlite"
    rows = 0
    purchases: list[tuple] = []  # type: ignore[type-arg]
    lines: list[tuple] = []  # type: ignore[type-arg]
    last = None

    def flush() -> None:
        cursor.executemany(purchase_sql, purchases)
        cursor.executemany(line_sql, lines)
        raw.commit()
        purchases.clear()
        lines.clear()

    with path.open(newline="", encoding="utf-8") as file:
        reader = csv.reader(file)
        next(reader)
        for receipt, store, moment, customer, sku, label, quantity, price in reader:
            rows += 1
            cents = int(price.replace(".", ""))
            if receipt != last:
                if len(lines) >= BATCH_ROWS:
                    flush()
                next_id += 1
                at = moment[:19].replace("T", " ") if sqlite else moment
                purchases.append((next_id, customers[customer], stores[store], "in_store", at, receipt, 0, "EUR"))
                last = receipt
            lines.append((next_id, sku, label, int(quantity), cents))
    flush()
    raw.close()
    engine.dispose()
    return {"rows": rows}


# --- Measuring -------------------------------------------------------------------------------------------------


def measured(command: list[str], database_url: str) -> tuple[float, float, int, str]:
    """Wall seconds, CPU seconds, peak RSS in MB and standard output of `command`, run alone in a subprocess.

    CPU time is printed beside wall time because this machine is shared: under load the wall clock also counts the
    time other processes held the two cores."""
    environment = os.environ | {
        "PORTAL_DATABASE_URL": database_url,
        "PORTAL_ENVIRONMENT": "test",
        "PORTAL_SECRET_KEY": SECRET,
    }
    # Through /usr/bin/time, a small process: Linux gives a child the peak RSS of the process it was forked from
    # (this one, which built the file and the customers), so os.wait4's figure would be ours, not the import's.
    with tempfile.TemporaryFile() as output, tempfile.TemporaryFile() as errors:
        started = time.perf_counter()
        timed = [TIME, "-f", "peak_kb=%M cpu=%U+%S", *command]
        completed = subprocess.run(timed, cwd=ROOT, env=environment, stdout=output, stderr=errors, check=False)  # noqa: S603
        seconds = time.perf_counter() - started
        output.seek(0)
        errors.seek(0)
        problems = errors.read().decode()
        if completed.returncode != 0:
            raise SystemExit(f"{' '.join(command[:4])}… failed:\n{problems[-3000:]}")
        peak_kb, cpu = re.findall(r"peak_kb=(\d+) cpu=([\d.]+\+[\d.]+)", problems)[-1]
        user, system = cpu.split("+")
        return seconds, float(user) + float(system), int(peak_kb) // 1024, output.read().decode()


def one_database(name: str, database_url: str, path: Path, lines: int, customers: int, rounds: int) -> None:
    print(f"\n{name}:")
    ratios, cpu_ratios = [], []
    for number in range(rounds):
        figures, cpu_figures = {}, {}
        order = ("ceiling", "import") if number % 2 == 0 else ("import", "ceiling")
        for which in order:
            seed(database_url, customers)
            command = (
                [sys.executable, "-m", "portal.cli", "import", "purchases", str(path)]
                if which == "import"
                else [sys.executable, __file__, "--child", "ceiling", database_url, str(path)]
            )
            seconds, cpu, rss, output = measured(command, database_url)
            figures[which] = seconds
            cpu_figures[which] = cpu
            load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
            print(
                f"  round {number + 1} {which:8} wall {seconds:6.1f} s  {lines / seconds:9,.0f} lines/s"
                f"  CPU {cpu:6.1f} s ({lines / cpu:9,.0f} lines/CPU s)  peak RSS {rss:4d} MB  load {load}"
                f"  {output.strip().splitlines()[-1] if output.strip() else ''}"
            )
        ratios.append(figures["import"] / figures["ceiling"])
        cpu_ratios.append(cpu_figures["import"] / cpu_figures["ceiling"])
    for name, values in (("wall time", ratios), ("CPU time", cpu_ratios)):
        print(
            f"  import / bare executemany, {name}: median {statistics.median(values):.2f}x"
            f" (min {min(values):.2f}, max {max(values):.2f}, {len(values)} rounds)"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=1_000_000, help="purchase lines in the file (default 1,000,000)")
    parser.add_argument("--customers", type=int, default=100_000, help="customers (default 100,000)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds per database, each import and ceiling (2)")
    parser.add_argument(
        "--only", choices=("sqlite", "postgresql"), help="measure one database (both by default, PostgreSQL when set)"
    )
    parser.add_argument("--child", nargs=3, metavar=("WHICH", "URL", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _which, url, file = args.child
        result = child_ceiling(url, Path(file))
        print(json.dumps(result))
        return 0
    print("load average:", " ".join(Path("/proc/loadavg").read_text().split()[:3]))
    with tempfile.TemporaryDirectory(prefix="bench-import-") as directory:
        path = Path(directory) / "purchases.csv"
        started = time.perf_counter()
        receipts = write_purchases_csv(path, args.lines, args.customers)
        print(
            f"{args.lines:,} lines in {receipts:,} receipts of {args.customers:,} customers,"
            f" {path.stat().st_size / 1e6:.0f} MB, written in {time.perf_counter() - started:.0f} s"
        )
        sqlite_url = f"sqlite:///{Path(directory) / 'portal.sqlite3'}"
        if args.only != "postgresql":
            one_database("SQLite", sqlite_url, path, args.lines, args.customers, args.rounds)
        pg_url = os.environ.get("PORTAL_BENCH_DATABASE_URL", "")
        if args.only == "sqlite":
            pass
        elif pg_url:
            one_database("PostgreSQL", pg_url, path, args.lines, args.customers, args.rounds)
        else:
            print("\nPostgreSQL: skipped (set PORTAL_BENCH_DATABASE_URL to a scratch database to measure it)")
    print("load average:", " ".join(Path("/proc/loadavg").read_text().split()[:3]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
