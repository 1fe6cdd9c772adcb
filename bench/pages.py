"""Benchmark: the signed-in pages of the demo's heavy customer, each against ONE fixed bare page (Starlette + Jinja2,
a 50-row table) and against a bare page of its own size.

    .venv/bin/python bench/pages.py                  # full run: 8 rotating rounds of 5 s + latency per page (~20 min)
    .venv/bin/python bench/pages.py --quick          # smoke check: 2 rounds of 2 s per page (figures not reliable)
    .venv/bin/python bench/pages.py --pages overview,purchases-50
    .venv/bin/python bench/pages.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench  # an EMPTY db
    .venv/bin/python bench/pages.py --tree /work/main    # the portal of another checkout, same bench (before/after)

Pages: every customer page but /me/consents and /me/requests (bench/api.py measures those): overview (GET /me),
profile (/me/profile), purchases-1 (/me/purchases), purchases-50 (the 50th page of the list, reached by following
"Show older purchases" 49 times from the first), receipt (/me/purchases/{id}), browsing (/me/browsing), processing
(/me/processing) and download (/me/download).

Follows the method in bench/README.md: the portal and the bare page run with identical uvicorn flags (one worker, no
access log); for each page, rounds alternate bare/page so that both see the same machine, and the result is the
median of the per-round ratios; latency is measured apart at 1 and 4 connections, in alternating runs whose p50 and
p99 are reported as medians over the runs (one stall of the shared machine moves one run, not the figure). Not a
test: it prints figures.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import html
import json
import os
import platform
import re
import secrets
import statistics
import sys
import tempfile
from collections.abc import Callable, Sequence
from datetime import date
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
    load_average,
    print_machine,
    run_benchmark,
    run_wrk,
    running_server,
    summarise,
    uvicorn_command,
    versions,
)

HEAVY_CUSTOMER = "camille.durand@example.com"  # portal.demo.dataset.DEMO_CUSTOMERS[0]
SESSION_MINUTES = "600"  # the customer session must outlive the run (the default idle timeout is 15 min)
LATENCY_CONNECTIONS = (1, 4)
# A latency run is "disturbed" when the bare page's own p99 exceeds this multiple of its p50: the bare page does
# the same work on every request, so a long tail there is the machine (other jobs), not the application.
NOISY_TAIL = 5.0

# The aims, for every page (issue 17): on one worker, at least half the throughput of the one fixed bare page (a
# 50-row table) AND of the bare page of the page's own size, and p99 under 50 ms at 1 and at 4 connections.
AIM_RATIO = 0.50
AIM_P99_MS = 50.0
FIXED_PATH = "/table50"  # bench/baseline_app.py

PURCHASES_URL = "/me/purchases"
PURCHASES_PAGE = 50  # the deep page: reached by following the "older purchases" link PURCHASES_PAGE - 1 times
PURCHASES_PER_PAGE = 25  # portal.purchases.service.PAGE_SIZE


def _figure(number: int) -> tuple[str, ...]:
    """`number` as the portal may print it: en (10,000) or fr (10 000 with a space, a no-break or narrow one)."""
    thousands = f"{number:,}"
    return tuple(thousands.replace(",", sep) for sep in (",", " ", "\u202f", "\xa0", "&nbsp;", "&#8239;"))


HEAVY_PURCHASES = _figure(10_000)
HEAVY_PAGE_VIEWS = _figure(100_000)
RECEIPT_LINK = re.compile(r'href="/me/purchases/(\d+)"')
OLDER_LINK = re.compile(r'<tr class="purchase-more">.*?<a\b[^>]*?\bhref="([^"]+)"', re.DOTALL)


@dataclasses.dataclass(frozen=True)
class Defaults:
    rounds: int = 8  # ../shared/BENCHMARKS.md: at least 8 rounds of 5 s
    duration: float = 5.0
    warmup: float = 3.0
    latency_runs: int = 3
    latency_duration: float = 2.0


@dataclasses.dataclass(frozen=True)
class Options:
    pages: tuple[str, ...]
    rounds: int
    duration: float
    connections: int
    threads: int
    warmup: float
    latency_runs: int
    latency_duration: float
    json_path: Path | None
    database_url: str | None = None  # None: a fresh SQLite file in a temporary directory
    tree: Path = PROJECT_ROOT  # the checkout whose portal is measured


# --- The pages ---------------------------------------------------------------------------------------------------


class PageProblem(Exception):
    """The page is not the heavy customer's real page (redirect, error, missing content); the message says how."""


@dataclasses.dataclass(frozen=True)
class PageSpec:
    name: str
    label: str
    # Finds the page's URL path and checks its content; returns (path, body). Raises PageProblem.
    resolve: Callable[[Server, dict[str, str]], tuple[str, bytes]]
    # A page still being written: when it is not a real page yet, it is reported as skipped instead of failing.
    optional: bool = False


def fetch(portal: Server, path: str, headers: dict[str, str]) -> str:
    """GET `path` signed in; anything but a 200 is a PageProblem (a 303 to /signin means the cookie was refused)."""
    try:
        status, body = http_get(portal.base_url + path, headers, timeout=30.0)
    except OSError as exc:
        raise PageProblem(f"GET {path} failed: {exc}") from exc
    text = body.decode("utf-8", errors="replace")
    if status != 200:
        raise PageProblem(f"GET {path} answered {status}, not 200{_signin_hint(status)}: {_snippet(text)}")
    return text


def _signin_hint(status: int) -> str:
    return " (a redirect: the session cookie was not accepted?)" if status in (301, 302, 303, 307, 308) else ""


def _snippet(text: str, length: int = 200) -> str:
    """What a page is, in a few words: its <title> when it has one (an error page, the sign-in page…)."""
    title = re.search(r"<title>(.*?)</title>", text, re.DOTALL | re.IGNORECASE)
    if title:
        return f"page titled {html.unescape(' '.join(title[1].split()))!r}"
    return " ".join(text.split())[:length] or "(empty body)"


def _require(text: str, path: str, figures: tuple[str, ...], what: str) -> None:
    if not any(figure in text for figure in figures):
        raise PageProblem(f"GET {path} does not show {what}: {_snippet(text)}")


def _receipts(text: str, path: str) -> list[int]:
    ids = [int(n) for n in RECEIPT_LINK.findall(text)]
    if len(ids) != PURCHASES_PER_PAGE:
        raise PageProblem(f"GET {path} lists {len(ids)} receipts, expected {PURCHASES_PER_PAGE}: {_snippet(text)}")
    return ids


def older_link(text: str, path: str) -> str:
    """The href of the page's "Show older purchases" link (templates/customer/purchases.html), unescaped."""
    match = OLDER_LINK.search(text)
    if not match:
        raise PageProblem(f"GET {path} has no link to older purchases")
    href = html.unescape(match[1])
    if not href.startswith(PURCHASES_URL + "?") or "after=" not in href:
        raise PageProblem(f"GET {path}: unexpected link to older purchases {href!r}")
    return href


def resolve_overview(portal: Server, headers: dict[str, str]) -> tuple[str, bytes]:
    text = fetch(portal, "/me", headers)
    _require(text, "/me", HEAVY_PURCHASES, "the heavy customer's 10,000 purchases")
    return "/me", text.encode()


def resolve_profile(portal: Server, headers: dict[str, str]) -> tuple[str, bytes]:
    path = "/me/profile"
    text = fetch(portal, path, headers)
    _require(text, path, (HEAVY_CUSTOMER,), f"the heavy customer's address {HEAVY_CUSTOMER}")
    if 'name="last_name"' not in text:
        raise PageProblem(f"GET {path} has no profile form: {_snippet(text)}")
    return path, text.encode()


def resolve_purchases_first(portal: Server, headers: dict[str, str]) -> tuple[str, bytes]:
    text = fetch(portal, PURCHASES_URL, headers)
    _require(text, PURCHASES_URL, HEAVY_PURCHASES, "the heavy customer's 10,000 purchases in the totals")
    _receipts(text, PURCHASES_URL)
    older_link(text, PURCHASES_URL)
    return PURCHASES_URL, text.encode()


def resolve_purchases_deep(portal: Server, headers: dict[str, str]) -> tuple[str, bytes]:
    """Page PURCHASES_PAGE, as a customer reaches it: following "Show older purchases" from the first page."""
    path, seen = PURCHASES_URL, set()
    for _ in range(PURCHASES_PAGE - 1):
        text = fetch(portal, path, headers)
        seen.update(_receipts(text, path))
        path = older_link(text, path)
    text = fetch(portal, path, headers)
    ids = _receipts(text, path)
    if seen.intersection(ids):
        raise PageProblem(f"GET {path} repeats purchases of the earlier pages: the cursor does not move")
    if len(seen) != (PURCHASES_PAGE - 1) * PURCHASES_PER_PAGE:
        raise PageProblem(f"the first {PURCHASES_PAGE - 1} pages hold {len(seen)} distinct purchases")
    _require(text, path, HEAVY_PURCHASES, "the heavy customer's 10,000 purchases in the totals")
    return path, text.encode()


def resolve_browsing(portal: Server, headers: dict[str, str]) -> tuple[str, bytes]:
    path = "/me/browsing"
    text = fetch(portal, path, headers)
    _require(text, path, HEAVY_PAGE_VIEWS, "the heavy customer's 100,000 page views")
    if "<time" not in text:
        raise PageProblem(f"GET {path} lists no page view: {_snippet(text)}")
    return path, text.encode()


def resolve_receipt(portal: Server, headers: dict[str, str]) -> tuple[str, bytes]:
    """The receipt of the newest purchase, reached from the list as a customer reaches it."""
    ids = _receipts(fetch(portal, PURCHASES_URL, headers), PURCHASES_URL)
    path = f"{PURCHASES_URL}/{ids[0]}"
    text = fetch(portal, path, headers)
    if "<table" not in text:
        raise PageProblem(f"GET {path} shows no receipt lines: {_snippet(text)}")
    return path, text.encode()


def resolve_processing(portal: Server, headers: dict[str, str]) -> tuple[str, bytes]:
    path = "/me/processing"
    text = fetch(portal, path, headers)
    if "/me/consents" not in text:
        raise PageProblem(f"GET {path} does not link the consents it explains: {_snippet(text)}")
    return path, text.encode()


def resolve_download(portal: Server, headers: dict[str, str]) -> tuple[str, bytes]:
    path = "/me/download"
    text = fetch(portal, path, headers)
    if 'action="/me/download"' not in text:
        raise PageProblem(f"GET {path} has no download form: {_snippet(text)}")
    return path, text.encode()


PAGES: dict[str, PageSpec] = {
    spec.name: spec
    for spec in (
        PageSpec("overview", "overview /me", resolve_overview),
        PageSpec("profile", "profile", resolve_profile),
        PageSpec("purchases-1", "purchases p.1", resolve_purchases_first),
        PageSpec("purchases-50", f"purchases p.{PURCHASES_PAGE}", resolve_purchases_deep),
        PageSpec("receipt", "receipt", resolve_receipt),
        PageSpec("browsing", "browsing", resolve_browsing),
        PageSpec("processing", "processing", resolve_processing),
        PageSpec("download", "download", resolve_download),
    )
}


# --- Options -----------------------------------------------------------------------------------------------------


def parse_args(
    argv: Sequence[str] | None,
    *,
    defaults: Defaults = Defaults(),  # noqa: B008  (frozen dataclass)
    only: tuple[str, ...] | None = None,
    description: str | None = None,
) -> Options:
    """Command-line options; `only` fixes the pages (no --pages option), as bench/overview.py does."""
    parser = argparse.ArgumentParser(
        description=description or __doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    if only is None:
        parser.add_argument(
            "--pages",
            default=",".join(PAGES),
            help=f"comma-separated pages to measure, in order (default: all: {','.join(PAGES)})",
        )
    parser.add_argument("--rounds", type=int, default=defaults.rounds, help=f"rounds per page ({defaults.rounds})")
    parser.add_argument(
        "--duration", type=float, default=defaults.duration, help=f"seconds per wrk run ({defaults.duration:g})"
    )
    parser.add_argument("--connections", type=int, default=32, help="wrk connections for throughput (32)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads for throughput (2)")
    parser.add_argument(
        "--warmup",
        type=float,
        default=defaults.warmup,
        help=f"seconds of warm-up per page and server ({defaults.warmup:g})",
    )
    parser.add_argument(
        "--latency-runs",
        type=int,
        default=defaults.latency_runs,
        help=f"latency runs per page, server and concurrency, alternating ({defaults.latency_runs})",
    )
    parser.add_argument(
        "--latency-duration",
        type=float,
        default=defaults.latency_duration,
        help=f"seconds per low-concurrency latency run ({defaults.latency_duration:g})",
    )
    parser.add_argument("--quick", action="store_true", help="smoke check: 2 rounds of 2 s, short warm-up/latency")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the raw figures to PATH as JSON")
    parser.add_argument(
        "--database-url",
        metavar="URL",
        help="an EMPTY database to migrate and fill with the demo (e.g. PostgreSQL); default a fresh SQLite file",
    )
    parser.add_argument(
        "--tree",
        type=Path,
        default=PROJECT_ROOT,
        help="the checkout whose portal is served (its portal/ package and templates), e.g. main for a before/after",
    )
    args = parser.parse_args(argv)
    if args.quick:  # shorter defaults; options given explicitly still win
        quick = (("rounds", 2), ("duration", 2.0), ("warmup", 1.0), ("latency_runs", 1), ("latency_duration", 2.0))
        for name, value in quick:
            if getattr(args, name) == parser.get_default(name):
                setattr(args, name, value)
    if min(args.rounds, args.duration, args.connections, args.threads, args.latency_runs, args.latency_duration) < 1:
        parser.error("--rounds, --duration, --connections, --threads and --latency-* must be at least 1")
    if args.threads > args.connections:
        parser.error("wrk needs at least as many connections as threads")
    pages = only if only is not None else tuple(name.strip() for name in args.pages.split(",") if name.strip())
    unknown = [name for name in pages if name not in PAGES]
    if unknown or not pages:
        parser.error(f"unknown page(s) {', '.join(unknown) or '(none given)'}; choose among {', '.join(PAGES)}")
    return Options(
        pages=tuple(dict.fromkeys(pages)),
        rounds=args.rounds,
        duration=args.duration,
        connections=args.connections,
        threads=args.threads,
        warmup=args.warmup,
        latency_runs=args.latency_runs,
        latency_duration=args.latency_duration,
        json_path=args.json,
        database_url=args.database_url,
        tree=args.tree.resolve(),
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


# --- Measuring ---------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Target:
    name: str
    url: str
    headers: dict[str, str]
    min_bytes: float  # smallest plausible response; anything smaller is a redirect or an error page


@dataclasses.dataclass(frozen=True)
class Latency:
    """Alternating low-concurrency runs of one server at one concurrency; the figures are medians over the runs."""

    runs: tuple[WrkResult, ...]

    def percentile(self, percent: int) -> float:
        return statistics.median(run.latency_ms.get(percent, float("inf")) for run in self.runs)

    @property
    def p50(self) -> float:
        return self.percentile(50)

    @property
    def p99(self) -> float:
        return self.percentile(99)

    @property
    def failed(self) -> bool:
        return any(run.failed for run in self.runs)

    @property
    def disturbed(self) -> bool:
        return self.p99 > NOISY_TAIL * self.p50

    def cell(self, noisy: bool = False) -> str:
        marks = ("!" if self.failed else "") + ("~" if noisy else "")
        return f"{self.p50:.2f}/{self.p99:.2f}{marks}"


@dataclasses.dataclass(frozen=True)
class PageResult:
    spec: PageSpec
    path: str
    size: int  # the portal page's body, bytes
    bare_size: int  # the size-matched bare page's
    fixed: RatioSummary  # page / the one fixed bare page (50-row table)
    sized: RatioSummary  # page / the bare page of the page's size
    latency: dict[str, dict[int, Latency]]  # "fixed" | "page" -> connections -> runs
    load_before: str
    load_after: str

    def p99(self, target: str, connections: int) -> float:
        return self.latency[target][connections].p99

    def noisy(self, connections: int) -> bool:
        """The machine disturbed this concurrency's latency runs (the fixed bare page's own tail is long)."""
        return self.latency["fixed"][connections].disturbed

    @property
    def reliable(self) -> bool:
        return self.fixed.reliable and self.sized.reliable and not any(self.noisy(c) for c in LATENCY_CONNECTIONS)

    @property
    def ratio_met(self) -> bool:
        return all(s.kept > 0 and s.median >= AIM_RATIO for s in (self.fixed, self.sized))

    @property
    def p99_met(self) -> bool:
        return all(self.p99("page", c) < AIM_P99_MS and not self.latency["page"][c].failed for c in LATENCY_CONNECTIONS)

    @property
    def met(self) -> bool:
        return self.ratio_met and self.p99_met


@dataclasses.dataclass(frozen=True)
class Skipped:
    spec: PageSpec
    reason: str


def _throughput(wrk: str, target: Target, options: Options, duration: float | None = None) -> WrkResult:
    return run_wrk(
        wrk,
        target.url,
        threads=options.threads,
        connections=options.connections,
        duration=options.duration if duration is None else duration,
        headers=target.headers,
        min_bytes_per_request=target.min_bytes,
    )


def measure_rounds(
    wrk: str, fixed: Target, sized: Target, page: Target, options: Options
) -> tuple[list[Round], list[Round]]:
    """Rounds of the three servers in rotating order; returns (page vs fixed, page vs sized) rounds of the same runs."""
    against_fixed, against_sized = [], []
    orders = ((fixed, sized, page), (page, fixed, sized), (sized, page, fixed))
    for index in range(options.rounds):
        order = orders[index % len(orders)]  # each target takes each slot in turn
        results = {target.name: _throughput(wrk, target, options) for target in order}
        names = tuple(target.name for target in order)
        f = Round(index + 1, (names[0], names[1]), results[fixed.name], results[page.name])
        z = Round(index + 1, (names[0], names[1]), results[sized.name], results[page.name])
        against_fixed.append(f)
        against_sized.append(z)
        failures = [r.describe_failure() for r in results.values() if r.failed]
        note = f"  ({'; '.join(failures)})" if failures else ""
        print(
            f"    round {index + 1:>2}  {'/'.join(names):<17}  fixed {f.baseline.requests_per_sec:>7,.0f}  "
            f"sized {z.baseline.requests_per_sec:>7,.0f}  page {f.subject.requests_per_sec:>7,.0f} req/s   "
            f"page/fixed {f.ratio:.3f}  page/sized {z.ratio:.3f}{note}",
            flush=True,
        )
    return against_fixed, against_sized


def measure_latency(wrk: str, fixed: Target, page: Target, options: Options) -> dict[str, dict[int, Latency]]:
    """Per concurrency, `latency_runs` runs of each server, alternating (fixed, page | page, fixed | …)."""
    latency: dict[str, dict[int, Latency]] = {fixed.name: {}, page.name: {}}
    for connections in LATENCY_CONNECTIONS:
        runs: dict[str, list[WrkResult]] = {fixed.name: [], page.name: []}
        for index in range(options.latency_runs):
            for target in (fixed, page) if index % 2 == 0 else (page, fixed):
                runs[target.name].append(
                    run_wrk(
                        wrk,
                        target.url,
                        threads=1,
                        connections=connections,
                        duration=options.latency_duration,
                        headers=target.headers,
                        latency=True,
                        min_bytes_per_request=target.min_bytes,
                    )
                )
        for name, results in runs.items():
            latency[name][connections] = found = Latency(tuple(results))
            each = ", ".join(f"{r.latency_ms.get(50, 0):.2f}/{r.latency_ms.get(99, 0):.2f}" for r in results)
            failures = "; ".join(r.describe_failure() for r in results if r.failed)
            print(
                f"    latency c={connections}  {name:>5}  p50 {found.p50:7.2f} ms  p99 {found.p99:7.2f} ms  "
                f"(runs p50/p99: {each}){f'  ({failures})' if failures else ''}",
                flush=True,
            )
    return latency


def bare_target(baseline: Server, name: str, path: str) -> tuple[Target, int]:
    status, body = http_get(baseline.base_url + path)
    if status != 200:
        raise BenchError(f"the bare page answered {status} for {path}: {_snippet(body.decode())}")
    return Target(name, baseline.base_url + path, {}, min_bytes=0.9 * len(body)), len(body)


def measure_page(
    wrk: str, spec: PageSpec, path: str, body: bytes, portal: Server, headers: dict[str, str], baseline: Server
) -> Callable[[Options], PageResult]:
    """Prepares one page's targets (checking the bare pages); the returned call measures it."""
    fixed, fixed_size = bare_target(baseline, "fixed", FIXED_PATH)
    sized, sized_size = bare_target(baseline, "sized", f"/?bytes={len(body)}")
    # Responses smaller than 90% of the body are not the page (wrk counts a 303 to /signin as a success).
    page = Target("page", portal.base_url + path, headers, min_bytes=0.9 * len(body))

    def run(options: Options) -> PageResult:
        load_before = load_average()
        print(
            f"\n== {spec.label}: GET {path}  ({len(body):,} B; fixed bare page {fixed_size:,} B, sized bare page "
            f"{sized_size:,} B)  load {load_before}",
            flush=True,
        )
        for target in (fixed, sized, page):
            _throughput(wrk, target, options, duration=options.warmup)
        against_fixed, against_sized = measure_rounds(wrk, fixed, sized, page, options)
        latency = measure_latency(wrk, fixed, page, options)
        return PageResult(
            spec=spec,
            path=path,
            size=len(body),
            bare_size=sized_size,
            fixed=summarise(against_fixed),
            sized=summarise(against_sized),
            latency=latency,
            load_before=load_before,
            load_after=load_average(),
        )

    return run


# --- Reporting ---------------------------------------------------------------------------------------------------


def _ratio_cell(summary: RatioSummary) -> str:
    return f"{summary.median:.3f} [{summary.low:.3f}–{summary.high:.3f}]" + ("" if summary.reliable else " ?")


def report(results: Sequence[PageResult], skipped: Sequence[Skipped], options: Options) -> bool:
    """Prints the table and the verdict; returns whether every page was measured, reliably, and meets the aims."""
    header = (
        "page",
        "body",
        "fixed req/s",
        "page req/s",
        "page/fixed [min–max]",
        "page/sized [min–max]",
        "kept f/s",
        "c=1 p50/p99 ms",
        "c=4 p50/p99 ms",
        "fixed c=1",
        "fixed c=4",
        f"≥{AIM_RATIO:.2f}",
        f"p99<{AIM_P99_MS:g}",
    )
    rows = []
    for r in results:
        rows.append(
            (
                r.spec.label,
                f"{r.size:,} B",
                f"{r.fixed.baseline_rps:,.0f}",
                f"{r.fixed.subject_rps:,.0f}",
                _ratio_cell(r.fixed),
                _ratio_cell(r.sized),
                f"{r.fixed.kept}/{len(r.fixed.rounds)} {r.sized.kept}/{len(r.sized.rounds)}",
                r.latency["page"][1].cell(r.noisy(1)),
                r.latency["page"][4].cell(r.noisy(4)),
                r.latency["fixed"][1].cell(),
                r.latency["fixed"][4].cell(),
                "yes" if r.ratio_met else "NO",
                "yes" if r.p99_met else "NO",
            )
        )
    for skip in skipped:
        rows.append((skip.spec.label, "skipped", *([""] * (len(header) - 2))))
    widths = [max(len(str(row[i])) for row in (header, *rows)) for i in range(len(header))]
    print()
    print(
        f"Per page: requests/s at c={options.connections} (median over kept rounds), ratios page/fixed bare page "
        f"(50-row table, {FIXED_PATH}) and page/sized bare page (medians of the per-round ratios), latency p50/p99 "
        f"in ms at 1 and 4 connections (medians over {options.latency_runs} run(s) of {options.latency_duration:g} s)."
    )
    for row in (header, *rows):
        cells = [f"{cell:<{widths[i]}}" if i == 0 else f"{cell:>{widths[i]}}" for i, cell in enumerate(row)]
        print("  ".join(cells).rstrip())
    print(
        "  ? = unreliable ratio (see below); ! = latency run with errors or short responses; ~ = latency disturbed "
        f"by the machine (the fixed bare page's own p99 > {NOISY_TAIL:g} x its p50)"
    )

    unreliable = [r for r in results if not r.reliable]
    print()
    if unreliable:
        print("Pages whose figures are unreliable:")
    else:
        print("Every page's figures are reliable (ratios: ≥ 6 rounds kept, max/min ≤ 1.15; latency undisturbed).")
    for r in unreliable:
        reasons = []
        for what, summary in (("page/fixed", r.fixed), ("page/sized", r.sized)):
            if not summary.reliable:
                reasons.append(f"{what}: {summary.why_unreliable}")
        for c in (c for c in LATENCY_CONNECTIONS if r.noisy(c)):
            fixed = r.latency["fixed"][c]
            reasons.append(
                f"latency at c={c} disturbed (fixed bare page p99 {fixed.p99:.2f} ms = {fixed.p99 / fixed.p50:.0f} x "
                "its p50)"
            )
        print(f"  {r.spec.label}: {'; '.join(reasons)} (load {r.load_before} → {r.load_after})")
        for dropped in (x for x in r.fixed.rounds if not x.kept):
            print(f"      round {dropped.index} dropped (page/fixed): {dropped.dropped_because}")
        for dropped in (x for x in r.sized.rounds if not x.kept):
            print(f"      round {dropped.index} dropped (page/sized): {dropped.dropped_because}")
    for skip in skipped:
        print(f"Skipped: {skip.spec.label}: {skip.reason}")

    print()
    aim = (
        f"aims: at least {AIM_RATIO:.2f} of the fixed bare page's throughput and of the size-matched bare page's, "
        f"and p99 under {AIM_P99_MS:g} ms on one worker (c=1 and c=4), for every page"
    )
    failing = [r for r in results if not r.met]
    all_met = bool(results) and not failing and not skipped and not unreliable
    if failing:
        verdict = "NOT MET (" + ", ".join(f"{r.spec.label}: {_misses(r)}" for r in failing) + ")"
        if unreliable:
            verdict += " — some of these figures are unreliable"
    elif skipped or unreliable:
        # The rules say these figures cannot carry a verdict: never "met" on them.
        why = [f"{s.spec.label} skipped" for s in skipped] + [f"{r.spec.label} unreliable" for r in unreliable]
        verdict = "NOT ESTABLISHED (" + ", ".join(why) + "; the measured medians meet the aims)"
    else:
        verdict = "MET"
    print(f"{aim}: {verdict}")
    return all_met


def _misses(r: PageResult) -> str:
    misses = []
    for what, summary in (("fixed", r.fixed), ("sized", r.sized)):
        if summary.kept == 0 or summary.median < AIM_RATIO:
            misses.append(f"{summary.median:.3f} of the {what} bare page")
    for c in LATENCY_CONNECTIONS:
        if r.p99("page", c) >= AIM_P99_MS or r.latency["page"][c].failed:
            misses.append(f"p99 {r.p99('page', c):.1f} ms at c={c}")
    return ", ".join(misses)


def _rounds_json(summary: RatioSummary) -> list[dict[str, Any]]:
    return [
        {
            "index": x.index,
            "bare_rps": x.baseline.requests_per_sec,
            "page_rps": x.subject.requests_per_sec,
            "ratio": x.ratio,
            "kept": x.kept,
            "dropped_because": x.dropped_because,
        }
        for x in summary.rounds
    ]


def _summary_json(summary: RatioSummary) -> dict[str, Any]:
    return {
        "median": summary.median,
        "min": summary.low,
        "max": summary.high,
        "kept": summary.kept,
        "reliable": summary.reliable,
        "why_unreliable": summary.why_unreliable,
        "rps_median": {"bare": summary.baseline_rps, "page": summary.subject_rps},
        "rounds": _rounds_json(summary),
    }


def to_json(
    results: Sequence[PageResult], skipped: Sequence[Skipped], options: Options, loads: dict[str, str], database: str
) -> dict[str, Any]:
    def latency(by_c: dict[int, Latency]) -> dict[str, Any]:
        return {
            str(c): {
                "p50": found.p50,
                "p99": found.p99,
                "disturbed": found.disturbed,
                "runs": [
                    {"p50": r.latency_ms.get(50), "p99": r.latency_ms.get(99), "rps": r.requests_per_sec}
                    for r in found.runs
                ],
            }
            for c, found in by_c.items()
        }

    return {
        "date": date.today().isoformat(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "versions": versions()},
        "database": database,
        "tree": str(options.tree),
        "load_average": loads,
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(options).items()},
        "aims": {"ratio": AIM_RATIO, "p99_ms": AIM_P99_MS},
        "pages": {
            r.spec.name: {
                "path": r.path,
                "size": r.size,
                "bare_size": r.bare_size,
                "load_average": {"before": r.load_before, "after": r.load_after},
                "against_fixed": _summary_json(r.fixed),
                "against_sized": _summary_json(r.sized),
                "reliable": r.reliable,
                "latency_ms": {"fixed": latency(r.latency["fixed"]), "page": latency(r.latency["page"])},
                "aims_met": {"ratio": r.ratio_met, "p99": r.p99_met},
                "latency_disturbed": {str(c): r.noisy(c) for c in LATENCY_CONNECTIONS},
            }
            for r in results
        },
        "skipped": {s.spec.name: s.reason for s in skipped},
        "aims_met": bool(results) and not skipped and all(r.met and r.reliable for r in results),
    }


# --- The run -----------------------------------------------------------------------------------------------------


def run(options: Options) -> int:
    wrk = find_wrk()
    loads = {"before": print_machine(wrk)}
    print(f"  portal served from {options.tree}", flush=True)
    with tempfile.TemporaryDirectory(prefix="portal-bench-") as tmp:
        tmp_dir = Path(tmp)
        database_url = options.database_url or f"sqlite:///{tmp_dir / 'demo.sqlite3'}"
        database = database_url.split(":", 1)[0].split("+", 1)[0]
        print(f"Preparing the demo database ({database})…", flush=True)
        print("  " + prepare_database(database_url), flush=True)

        portal_port, baseline_port = free_port(), free_port()
        portal_env = portal_environment(database_url, portal_port)
        cookie = open_customer_session(database_url, portal_env)
        headers = {"Cookie": f"portal_session={cookie}"}
        child_env = {**os.environ, **portal_env}
        child_env.pop("BENCH_BASELINE_BYTES", None)
        baseline_env = {key: value for key, value in os.environ.items() if not key.startswith("PORTAL_")}

        portal_command = uvicorn_command("portal.app:create_app", portal_port, factory=True, app_dir=options.tree)
        baseline_command = uvicorn_command("baseline_app:app", baseline_port, app_dir=BENCH_DIR)
        with (
            running_server(
                "portal", portal_command, port=portal_port, env=child_env, cwd=options.tree, log_dir=tmp_dir
            ) as portal,
            running_server(
                "bare", baseline_command, port=baseline_port, env=baseline_env, cwd=PROJECT_ROOT, log_dir=tmp_dir
            ) as baseline,
        ):
            print(f"Portal on {portal.base_url}, bare pages on {baseline.base_url}. Checking the pages…", flush=True)
            plans: list[tuple[PageSpec, str, Callable[[Options], PageResult]]] = []
            skipped: list[Skipped] = []
            for name in options.pages:
                spec = PAGES[name]
                try:
                    path, body = spec.resolve(portal, headers)
                except PageProblem as exc:
                    if not spec.optional:
                        raise BenchError(f"{spec.label}: {exc}") from exc
                    skipped.append(Skipped(spec, f"not a real page yet: {exc}"))
                    print(f"  {spec.label:<14} SKIPPED: {exc}", flush=True)
                    continue
                print(f"  {spec.label:<14} GET {path}: 200, {len(body):,} B, the heavy customer's page", flush=True)
                plans.append((spec, path, measure_page(wrk, spec, path, body, portal, headers, baseline)))

            print(
                f"\nPer page: {options.warmup:g} s warm-up each, {options.rounds} rounds of wrk -t{options.threads} "
                f"-c{options.connections} -d{options.duration:g}s over the fixed bare page, the sized bare page and "
                f"the page in rotating order, then latency: {options.latency_runs} alternating runs of wrk -t1 "
                f"-c1/-c4 -d{options.latency_duration:g}s --latency",
                flush=True,
            )
            results = [measure(options) for _spec, _path, measure in plans]

            for spec, path, _measure in plans:  # still signed in at the end: the figures are the real pages'
                try:
                    fetch(portal, path, headers)
                except PageProblem as exc:
                    raise BenchError(f"{spec.label} at the end of the run: {exc}") from exc

    loads["after"] = load_average()
    print(f"\nload average after the run: {loads['after']}; database {database}; portal from {options.tree}")
    report(results, skipped, options)
    if options.json_path:
        options.json_path.write_text(json.dumps(to_json(results, skipped, options, loads, database), indent=2) + "\n")
        print(f"raw figures written to {options.json_path}")
    if options.rounds < 8 or options.duration < 5:
        print(
            f"note: {options.rounds} rounds of {options.duration:g} s per page; the method asks for at least 8 "
            "rounds of 5 s for a reference figure (--rounds 8 --duration 5): these figures are not one."
        )
    return 0


def main(
    argv: Sequence[str] | None = None,
    *,
    defaults: Defaults = Defaults(),  # noqa: B008  (frozen dataclass)
    only: tuple[str, ...] | None = None,
    description: str | None = None,
) -> int:
    options = parse_args(argv, defaults=defaults, only=only, description=description)
    return run_benchmark(lambda: run(options))


if __name__ == "__main__":
    sys.exit(main())
