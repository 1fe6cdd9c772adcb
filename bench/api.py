"""Benchmark: the retailer API and the consent toggle, each against a bare Starlette endpoint of its response size.

    .venv/bin/python bench/api.py                    # full run: per scenario 6 alternating rounds of 2 s + latency
    .venv/bin/python bench/api.py --quick            # smoke check: 2 rounds of 2 s per scenario (figures not reliable)
    .venv/bin/python bench/api.py --scenarios consents-get,browsing-100 --rounds 8 --duration 5

Scenarios:
  consents-get      GET /api/v1/customers/{ref}/consents, the heavy customer by the retailer's customer id
  consents-lookup   POST /api/v1/consents/lookup {"email": …}, the same customer by email address
  toggle-htmx       POST /me/consents as htmx does (HX-Request): give, then withdraw, …; answered with the row
  toggle-plain      the same form without htmx: answered with a 303 back to the purpose
  browsing-1        POST /api/v1/browsing-events, one event of the heavy customer (who consents to browsing)
  browsing-100      the same with batches of 100 events (events/s = requests/s x 100)
  browsing-100x100  batches of 100 events for 100 different customers (as a web shop sends them)

The write scenarios (toggles, browsing) are compared with a bare endpoint that also writes and commits the same
number of rows in one SQLite transaction (baseline_json_app.py, `rows=`): the toggle 3 (consent event, audit
event, webhook), one event 4 (page view, its day's and its customer's counts, the batch's audit event), a batch of
100 for one customer 103, for 100 customers 301.

Follows the method of bench/README.md like bench/pages.py: the portal and the bare endpoints (baseline_json_app.py)
run with identical uvicorn flags; per scenario, rounds alternate bare/portal and the result is the median of the
per-round ratios; latency apart at 1 and 4 connections. wrk sends the POSTs through Lua scripts. The toggle runs
through signed-in sessions of many demo customers (one customer clicking thousands of times a minute is no real
load; and before issue 17 the htmx answer carried the customer's whole consent history, now only its new entry):
each wrk thread takes its own customers in turn, every request flips the answer the customer's previous request
left, and the script counts in the database how many requests recorded a change. Not a test: it prints figures.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import secrets
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))  # `_harness` and `pages` sit next to this script
sys.path.insert(1, str(PROJECT_ROOT))  # the portal package, when run from anywhere

from _harness import (  # noqa: E402
    BenchError,
    RatioSummary,
    Round,
    Server,
    WrkResult,
    find_wrk,
    free_port,
    http_request,
    load_average,
    print_machine,
    run_benchmark,
    run_wrk,
    running_server,
    summarise,
    uvicorn_command,
    versions,
)
from pages import HEAVY_CUSTOMER, LATENCY_CONNECTIONS, Latency, portal_environment, prepare_database  # noqa: E402

TOGGLE_PURPOSE = "email_newsletter"
TOGGLE_PATH = "/me/consents"
BATCH = 100
ALL_SCOPES = ("consents:read", "consents:write", "browsing:write")
SCENARIO_NAMES = (
    "consents-get",
    "consents-lookup",
    "toggle-htmx",
    "toggle-plain",
    "browsing-1",
    "browsing-100",
    "browsing-100x100",
)
# Rows one request writes, for the bare "one SQLite commit of the same rows" (bench/baseline_json_app.py).
TOGGLE_ROWS = 3  # consent event, audit event, consent.changed webhook
BROWSING_ROWS = {"browsing-1": 4, "browsing-100": 103, "browsing-100x100": 301}


@dataclasses.dataclass(frozen=True)
class Options:
    scenarios: tuple[str, ...]
    rounds: int
    duration: float
    connections: int
    threads: int
    warmup: float
    latency_runs: int
    latency_duration: float
    customers: int
    json_path: Path | None
    database_url: str | None = None


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenarios", default=",".join(SCENARIO_NAMES), help="comma-separated, in order (all)")
    parser.add_argument("--rounds", type=int, default=6, help="rounds per scenario (6)")
    parser.add_argument("--duration", type=float, default=2.0, help="seconds per wrk run (2)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections for throughput (32)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads for throughput (2)")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of warm-up per scenario and server (1)")
    parser.add_argument("--latency-runs", type=int, default=2, help="latency runs per server and concurrency (2)")
    parser.add_argument("--latency-duration", type=float, default=2.0, help="seconds per latency run (2)")
    parser.add_argument("--customers", type=int, default=300, help="signed-in demo customers for the toggle (300)")
    parser.add_argument("--quick", action="store_true", help="smoke check: 2 rounds of 2 s, 1 latency run")
    parser.add_argument(
        "--database-url",
        default=None,
        help="an EMPTY database to fill with the demo instead of a temporary SQLite file (e.g. PostgreSQL)",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the raw figures to PATH as JSON")
    args = parser.parse_args(argv)
    if args.quick:  # shorter defaults; options given explicitly still win
        for name, value in (("rounds", 2), ("duration", 2.0), ("latency_runs", 1)):
            if getattr(args, name) == parser.get_default(name):
                setattr(args, name, value)
    numbers = (args.rounds, args.duration, args.connections, args.threads, args.latency_runs, args.latency_duration)
    if min(numbers) < 1 or args.warmup < 0:
        parser.error("--rounds, --duration, --connections, --threads and --latency-* must be at least 1")
    if args.threads > args.connections:
        parser.error("wrk needs at least as many connections as threads")
    if not 2 * args.connections <= args.customers:
        # Each thread cycles through its customers: a customer's next request must leave after the previous one
        # was answered, or the two may swap and record no change.
        parser.error("--customers must be at least twice --connections")
    scenarios = tuple(dict.fromkeys(name.strip() for name in args.scenarios.split(",") if name.strip()))
    unknown = [name for name in scenarios if name not in SCENARIO_NAMES]
    if unknown or not scenarios:
        parser.error(f"unknown scenario(s) {', '.join(unknown) or '(none)'}; choose among {', '.join(SCENARIO_NAMES)}")
    return Options(
        scenarios=scenarios,
        rounds=args.rounds,
        duration=args.duration,
        connections=args.connections,
        threads=args.threads,
        warmup=args.warmup,
        latency_runs=args.latency_runs,
        latency_duration=args.latency_duration,
        customers=args.customers,
        json_path=args.json,
        database_url=args.database_url,
    )


# --- The bench database: key, sessions, counts -------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SignedIn:
    customer_id: int
    cookie: str  # the Cookie header: session and CSRF cookies, as a browser sends them
    csrf_token: str


@dataclasses.dataclass
class BenchData:
    """What the scenarios need from the database, and the counts that prove the writes happened."""

    database_url: str
    secret_key: str
    api_key: str = ""
    heavy_id: int = 0
    heavy_ref: str = ""
    signed_in: list[SignedIn] = dataclasses.field(default_factory=list)
    browsing_refs: list[str] = dataclasses.field(default_factory=list)  # 100 customers consenting to browsing
    browsing_ids: list[int] = dataclasses.field(default_factory=list)

    def engine(self):  # type: ignore[no-untyped-def]
        from portal.db import make_engine

        return make_engine(self.database_url)

    def prepare(self, portal_env: dict[str, str], customers: int) -> None:
        from itsdangerous import Signer
        from sqlalchemy import select

        from portal.api.keys import create_api_key
        from portal.db import transaction
        from portal.identity.keys import keyed_hash
        from portal.identity.sessions import open_session
        from portal.models import Customer, email_key, utcnow
        from portal.settings import load_settings

        settings = load_settings(environ=portal_env)
        signer = Signer(settings.secret_key, salt="portal.session")
        engine = self.engine()
        try:
            with transaction(engine) as session:
                _, self.api_key = create_api_key(
                    session, secret_key=settings.secret_key, name="bench", scopes=ALL_SCOPES, now=utcnow()
                )
                heavy = session.execute(
                    select(Customer.id, Customer.retailer_ref).where(Customer.email_key == email_key(HEAVY_CUSTOMER))
                ).one()
                self.heavy_id, self.heavy_ref = heavy.id, heavy.retailer_ref
                ids = session.scalars(
                    select(Customer.id).where(Customer.erased_at.is_(None)).order_by(Customer.id).limit(customers)  # type: ignore[union-attr]
                ).all()
                for customer_id in ids:
                    raw_id = open_session(
                        session, settings=settings, kind="customer", customer_id=customer_id, now=utcnow()
                    )
                    cookie = f"portal_session={signer.sign(raw_id).decode()}; portal_csrf={secrets.token_urlsafe(24)}"
                    # The token the consent page puts in its forms (CSRFMiddleware: keyed hash of the session id).
                    token = keyed_hash(settings.secret_key, "csrf", raw_id)
                    self.signed_in.append(SignedIn(customer_id, cookie, token))
            self._consent_to_browsing(engine, settings, BATCH)
        finally:
            engine.dispose()
        if len(self.signed_in) < customers:
            raise BenchError(f"the demo holds {len(self.signed_in)} customers, fewer than --customers {customers}")

    def _consent_to_browsing(self, engine, settings, count: int) -> None:  # type: ignore[no-untyped-def]
        """`count` customers with a retailer id who consent to browsing analytics (given now where they did not)."""
        from sqlalchemy import select

        from portal.consent import ledger
        from portal.consent.register import load_register
        from portal.db import transaction
        from portal.models import Customer, utcnow

        register = load_register(settings.purposes_file)
        with transaction(engine) as session:
            rows = session.execute(
                select(Customer.id, Customer.retailer_ref)
                .where(Customer.erased_at.is_(None), Customer.retailer_ref.is_not(None))  # type: ignore[union-attr]
                .order_by(Customer.id.desc())  # type: ignore[union-attr]
                .limit(count)
            ).all()
            for customer_id, _ref in rows:
                ledger.record_consent(
                    session, register=register, customer_id=customer_id, purpose=ledger.BROWSING_PURPOSE,
                    granted=True, channel="web", actor="bench", now=utcnow() - timedelta(days=1), locale="fr",
                )  # fmt: skip
        self.browsing_ids = [row[0] for row in rows]
        self.browsing_refs = [row[1] for row in rows]
        if len(self.browsing_refs) < count:
            raise BenchError(f"the demo holds {len(self.browsing_refs)} customers with a retailer id, not {count}")

    def granted(self) -> dict[int, bool]:
        """Each signed-in customer's current answer for the toggled purpose."""
        from portal.consent import ledger

        engine = self.engine()
        try:
            with engine.connect() as connection:
                return {
                    s.customer_id: ledger.current_consents(
                        connection, customer_id=s.customer_id, purposes=[TOGGLE_PURPOSE]
                    )[TOGGLE_PURPOSE].granted
                    for s in self.signed_in
                }
        finally:
            engine.dispose()

    def count(self, what: str) -> int:
        """Rows a scenario writes: consent events of the toggled purpose, or the heavy customer's page views."""
        from sqlalchemy import func, select

        from portal.models import ConsentEvent, PageView

        if what == "consent_events":
            statement = select(func.count()).select_from(ConsentEvent).where(ConsentEvent.purpose == TOGGLE_PURPOSE)
        elif what == "page_views_many":
            statement = select(func.count()).select_from(PageView).where(PageView.customer_id.in_(self.browsing_ids))  # type: ignore[attr-defined]
        else:
            statement = select(func.count()).select_from(PageView).where(PageView.customer_id == self.heavy_id)
        engine = self.engine()
        try:
            with engine.connect() as connection:
                return int(connection.execute(statement).scalar_one())
        finally:
            engine.dispose()


# --- Lua scripts for wrk ---------------------------------------------------------------------------------------


def lua_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'"{escaped}"'


def static_post_script(path: Path, body: str) -> Path:
    """Every request the same POST with a JSON body (wrk builds it once)."""
    path.write_text(
        f'wrk.method = "POST"\nwrk.body = {lua_string(body)}\nwrk.headers["Content-Type"] = "application/json"\n'
    )
    return path


TOGGLE_LUA = """\
-- Generated by bench/api.py: every request flips one customer's answer; each thread cycles through its customers.
local sessions = {
%(sessions)s
}
local threads = %(threads)d
local path = %(path)s
local purpose = %(purpose)s
local htmx = %(htmx)s
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end

function init(args)
  mine = {}
  for i, s in ipairs(sessions) do
    if (i - 1) %% threads == id then
      mine[#mine + 1] = {cookie = s[1], token = s[2], granted = s[3]}
    end
  end
  n = 0
end

function request()
  n = n %% #mine + 1
  local s = mine[n]
  local action = s.granted and "withdraw" or "grant"
  s.granted = not s.granted
  local headers = {["Cookie"] = s.cookie, ["Content-Type"] = "application/x-www-form-urlencoded"}
  if htmx then
    headers["HX-Request"] = "true"
    headers["HX-Target"] = "purpose-" .. purpose
  end
  return wrk.format("POST", path, headers, "csrf_token=" .. s.token .. "&purpose=" .. purpose .. "&action=" .. action)
end
"""


def toggle_script(path: Path, data: BenchData, *, threads: int, htmx: bool, url_path: str) -> Path:
    granted = data.granted()
    rows = ",\n".join(
        f"  {{{lua_string(s.cookie)}, {lua_string(s.csrf_token)}, {'true' if granted[s.customer_id] else 'false'}}}"
        for s in data.signed_in
    )
    values = {
        "sessions": rows,
        "threads": threads,
        "path": lua_string(url_path),
        "purpose": lua_string(TOGGLE_PURPOSE),
        "htmx": "true" if htmx else "false",
    }
    path.write_text(TOGGLE_LUA % values)
    return path


# --- Scenarios ---------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Target:
    name: str  # "bare" | "api"
    url: str
    headers: dict[str, str]
    script: Callable[[int], Path | None]  # wrk threads -> the Lua script for the next run (None: a plain GET)
    min_bytes: float  # smallest plausible response (wrk counts a 303 to /signin as a success)


@dataclasses.dataclass(frozen=True)
class Plan:
    name: str
    label: str
    method: str
    path: str
    size: int  # the portal's response body, bytes
    bare_size: int
    portal: Target
    bare: Target
    events: int = 0  # browsing events per request
    counts: str = ""  # what the scenario writes ("consent_events" | "page_views"), counted around each portal run
    writes_per_request: int = 0  # rows each request must add
    note: str = ""


def _check(condition: bool, scenario: str, message: str) -> None:
    if not condition:
        raise BenchError(f"{scenario}: {message}")


def _json_body(scenario: str, status: int, body: bytes, expected: int = 200) -> Any:
    text = body.decode("utf-8", errors="replace")
    _check(status == expected, scenario, f"answered {status}, expected {expected}: {text[:300]}")
    try:
        return json.loads(text)
    except ValueError as exc:
        raise BenchError(f"{scenario}: not JSON: {text[:300]}") from exc


def _bare_target(
    scenario: str, baseline: Server, path: str, body: bytes | None, script: Callable[[int], Path | None], **extra: str
) -> tuple[Target, int]:
    headers = {"Content-Type": "application/json"} if body is not None and path.startswith("/json") else {}
    status, _headers, answer = http_request(
        "POST" if body is not None else "GET", baseline.base_url + path, body=body, headers={**headers, **extra}
    )
    expected = 303 if path.startswith("/form") and "bytes=" not in path else 200
    _check(status == expected, scenario, f"the bare endpoint answered {status} for {path}: {answer[:200]!r}")
    return Target("bare", baseline.base_url + path, {}, script, min_bytes=0.9 * len(answer)), len(answer)


def plan_consent_reads(name: str, portal: Server, baseline: Server, data: BenchData, tmp: Path) -> Plan:
    auth = {"Authorization": f"Bearer {data.api_key}"}
    if name == "consents-get":
        method, path, body = "GET", f"/api/v1/customers/{data.heavy_ref}/consents", None
        status, _h, answer = http_request("GET", portal.base_url + path, headers=auth)
    else:
        method, path, body = "POST", "/api/v1/consents/lookup", json.dumps({"email": HEAVY_CUSTOMER})
        headers = {**auth, "Content-Type": "application/json"}
        status, _h, answer = http_request("POST", portal.base_url + path, body=body.encode(), headers=headers)
    found = _json_body(name, status, answer)
    _check(found.get("customer_id") == data.heavy_ref, name, f"answered for {found.get('customer_id')!r}")
    states = {c["purpose"]: c["granted"] for c in found.get("consents", [])}
    _check(states.get("browsing_analytics") is True, name, f"the heavy customer's consents are not there: {states}")

    def script(_threads: int, body: str | None = body) -> Path | None:
        return None if body is None else static_post_script(tmp / f"{name}.lua", body)

    portal_target = Target("api", portal.base_url + path, auth, script, min_bytes=0.9 * len(answer))
    bare, bare_size = _bare_target(name, baseline, f"/json?bytes={len(answer)}", body and body.encode(), script)
    return Plan(
        name, f"{method} {path.replace(data.heavy_ref, '{ref}')}", method, path, len(answer), bare_size,
        portal_target, bare,
        note=f"{len(states)} purposes",
    )  # fmt: skip


TOGGLE_CHECKS = 7  # customers whose answer is checked before the run; the bare page has their median answer's size


def toggle_once(portal: Server, data: BenchData, who: SignedIn, *, htmx: bool, scenario: str) -> tuple[str, bytes]:
    """Flip one customer's answer as the page's form does, check the answer and the ledger; returns (form, body)."""
    granted = data.granted()[who.customer_id]
    form = f"csrf_token={who.csrf_token}&purpose={TOGGLE_PURPOSE}&action={'withdraw' if granted else 'grant'}"
    headers = {"Cookie": who.cookie, "Content-Type": "application/x-www-form-urlencoded"}
    if htmx:
        headers |= {"HX-Request": "true", "HX-Target": f"purpose-{TOGGLE_PURPOSE}"}
    before = data.count("consent_events")
    status, answer_headers, answer = http_request(
        "POST", portal.base_url + TOGGLE_PATH, body=form.encode(), headers=headers
    )
    _check(data.count("consent_events") == before + 1, scenario, "the POST recorded no consent event")
    if htmx:
        _check(status == 200, scenario, f"answered {status}, expected the purpose's row (200)")
        expected = "withdrawn" if granted else "granted"
        _check(f'data-state="{expected}"'.encode() in answer, scenario, f"the row does not show {expected}")
        _check(b"hx-swap-oob" in answer, scenario, "no out-of-band confirmation or history entry in the answer")
    else:
        location = answer_headers.get("location", "")
        _check(status == 303, scenario, f"answered {status}, expected 303")
        _check(location.endswith(f"{TOGGLE_PATH}#purpose-{TOGGLE_PURPOSE}"), scenario, f"redirects to {location!r}")
    return form, answer


def plan_toggle(name: str, portal: Server, baseline: Server, data: BenchData, tmp: Path) -> Plan:
    htmx = name == "toggle-htmx"
    first = data.signed_in[0]
    # The form the portal shows carries the token the script computes (else every POST would be refused).
    status, _h, page = http_request("GET", portal.base_url + TOGGLE_PATH, headers={"Cookie": first.cookie})
    _check(status == 200, name, f"GET {TOGGLE_PATH} answered {status} (the session cookie refused?)")
    _check(f'value="{first.csrf_token}"'.encode() in page, name, "the consent page's CSRF token is not the expected")
    # The row's answer carries the history's new entry (the whole history before issue 17): sizes differ a little.
    checked = [toggle_once(portal, data, who, htmx=htmx, scenario=name) for who in data.signed_in[:TOGGLE_CHECKS]]
    sizes = sorted(len(answer) for _form, answer in checked)
    size = sizes[len(sizes) // 2]

    def script_for(url_path: str) -> Callable[[int], Path]:
        def script(threads: int) -> Path:
            side = "bare" if url_path.startswith("/form") else "portal"
            return toggle_script(tmp / f"{name}-{side}.lua", data, threads=threads, htmx=htmx, url_path=url_path)

        return script

    # Half the smallest checked answer: less is not the row (a 303 to /signin counts as a success for wrk).
    portal_target = Target("api", portal.base_url + TOGGLE_PATH, {}, script_for(TOGGLE_PATH), 0.5 * sizes[0])
    bare_path = f"/form?bytes={max(1_000, size)}&rows={TOGGLE_ROWS}" if htmx else f"/form?rows={TOGGLE_ROWS}"
    form_type = {"Content-Type": "application/x-www-form-urlencoded"}
    bare, bare_size = _bare_target(
        name, baseline, bare_path, checked[0][0].encode(), script_for(bare_path), **form_type
    )
    label = f"POST {TOGGLE_PATH} " + ("htmx (row + new entry)" if htmx else "plain (303)")
    note = f"{len(data.signed_in)} customers"
    if htmx:
        note += f"; answers {sizes[0]:,}–{sizes[-1]:,} B for {len(sizes)} customers checked"
    return Plan(
        name, label, "POST", TOGGLE_PATH, size, bare_size, portal_target, bare,
        counts="consent_events", writes_per_request=1, note=note,
    )  # fmt: skip


def browsing_body(data: BenchData, events: int, newest: datetime, *, many: bool = False) -> str:
    """`events` distinct page views, one minute apart, the newest an hour before the run: of the heavy customer, or
    (`many`) one for each of the 100 customers consenting to browsing."""
    items = [
        {
            "customer_id": data.browsing_refs[n % len(data.browsing_refs)] if many else data.heavy_ref,
            "url": f"https://www.maison-aubepine.example/produits/{1000 + n}?ref=bench",
            "title": f"Produit {1000 + n} · Maison Aubépine",
            "viewed_at": (newest - timedelta(minutes=n)).isoformat(),
        }
        for n in range(events)
    ]
    return json.dumps(items[0] if events == 1 else {"events": items})


def plan_browsing(name: str, portal: Server, baseline: Server, data: BenchData, tmp: Path) -> Plan:
    events = 1 if name == "browsing-1" else BATCH
    many = name == "browsing-100x100"
    counts = "page_views_many" if many else "page_views"
    body = browsing_body(data, events, datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1), many=many)
    path = "/api/v1/browsing-events"
    auth = {"Authorization": f"Bearer {data.api_key}"}
    before = data.count(counts)
    status, _h, answer = http_request(
        "POST", portal.base_url + path, body=body.encode(), headers={**auth, "Content-Type": "application/json"}
    )
    result = _json_body(name, status, answer)
    _check(result.get("received") == events, name, f"received {result.get('received')}, sent {events}")
    _check(result.get("kept") == events, name, f"kept {result.get('kept')} of {events}: {result}")
    _check(data.count(counts) == before + events, name, "the page views are not in the database")

    def script(_threads: int) -> Path:
        return static_post_script(tmp / f"{name}.lua", body)

    portal_target = Target("api", portal.base_url + path, auth, script, min_bytes=0.9 * len(answer))
    bare_path = f"/json?bytes={len(answer)}&rows={BROWSING_ROWS[name]}"
    bare, bare_size = _bare_target(name, baseline, bare_path, body.encode(), script)
    label = f"POST {path} x{events}" + (" (100 customers)" if many else "")
    return Plan(
        name, label, "POST", path, len(answer), bare_size, portal_target, bare,
        events=events, counts=counts, writes_per_request=events,
        note=f"kept {result['kept']}, dropped {result['dropped']} ({len(body):,} B sent)",
    )  # fmt: skip


PLANNERS: dict[str, Callable[[str, Server, Server, BenchData, Path], Plan]] = {
    "consents-get": plan_consent_reads,
    "consents-lookup": plan_consent_reads,
    "toggle-htmx": plan_toggle,
    "toggle-plain": plan_toggle,
    "browsing-1": plan_browsing,
    "browsing-100": plan_browsing,
    "browsing-100x100": plan_browsing,
}


# --- Measuring ---------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Writes:
    """Rows added in the database during the portal's runs, against the requests wrk saw answered."""

    rows: int = 0
    requests: int = 0
    in_flight: int = 0  # at most one request per connection per run is answered after wrk stops counting

    @property
    def per_request(self) -> float:
        return self.rows / self.requests if self.requests else 0.0

    def plausible(self, per_request: int) -> bool:
        """Every answered request wrote its rows, and nothing beyond what the requests left in flight can explain."""
        return self.requests * per_request <= self.rows <= (self.requests + self.in_flight) * per_request


@dataclasses.dataclass(frozen=True)
class ScenarioResult:
    plan: Plan
    summary: RatioSummary
    latency: dict[str, dict[int, Latency]]  # "bare" | "api" -> connections -> runs
    writes: Writes
    load_before: str
    load_after: str

    def noisy(self, connections: int) -> bool:
        return self.latency["bare"][connections].disturbed


def _wrk(
    wrk: str, target: Target, *, threads: int, connections: int, duration: float, latency: bool = False
) -> WrkResult:
    return run_wrk(
        wrk,
        target.url,
        threads=threads,
        connections=connections,
        duration=duration,
        headers=target.headers,
        latency=latency,
        min_bytes_per_request=target.min_bytes,
        script=target.script(threads),
    )


class Runner:
    def __init__(self, wrk: str, plan: Plan, data: BenchData) -> None:
        self.wrk, self.plan, self.data, self.writes = wrk, plan, data, Writes()

    def run(self, target: Target, **how: Any) -> WrkResult:
        counting = target.name == "api" and bool(self.plan.counts)
        before = self.data.count(self.plan.counts) if counting else 0
        result = _wrk(self.wrk, target, **how)
        if counting:
            # Requests still in flight when wrk stops are answered but not counted: a hair over 1 write per request.
            # Writes come 1/rate apart: three such gaps without one means the server is done.
            pause = min(5.0, max(0.3, 3.0 / result.requests_per_sec if result.requests_per_sec else 5.0))
            self.writes.rows += self.drained(pause) - before
            self.writes.requests += result.requests
            self.writes.in_flight += how["connections"]
        return result

    def drained(self, pause: float, limit: float = 120.0) -> int:
        """Wait until the portal has written what wrk left in flight (a slow batch endpoint may hold 32 requests
        when wrk stops), so that the next run, bare or not, starts on an idle server; returns the final count."""
        deadline = time.monotonic() + limit
        count = self.data.count(self.plan.counts)
        while time.monotonic() < deadline:
            time.sleep(pause)
            previous, count = count, self.data.count(self.plan.counts)
            if count == previous:
                break
        return count

    def measure(self, options: Options) -> ScenarioResult:
        plan, load_before = self.plan, load_average()
        print(
            f"\n== {plan.name}: {plan.label}  ({plan.size:,} B; bare {plan.bare_size:,} B; {plan.note})  "
            f"load {load_before}",
            flush=True,
        )
        throughput = {"threads": options.threads, "connections": options.connections}
        if options.warmup:
            for target in (plan.bare, plan.portal):
                self.run(target, duration=options.warmup, **throughput)
        rounds = []
        for index in range(options.rounds):
            order = (plan.bare, plan.portal) if index % 2 == 0 else (plan.portal, plan.bare)
            results = {t.name: self.run(t, duration=options.duration, **throughput) for t in order}
            r = Round(index + 1, (order[0].name, order[1].name), results["bare"], results["api"])
            failures = [x.describe_failure() for x in (r.baseline, r.subject) if x.failed]
            print(
                f"    round {r.index:>2}  {order[0].name:>4} first   bare {r.baseline.requests_per_sec:>8,.0f} req/s   "
                f"portal {r.subject.requests_per_sec:>7,.0f} req/s   ratio {r.ratio:.3f}"
                + (f"  ({'; '.join(failures)})" if failures else ""),
                flush=True,
            )
            rounds.append(r)
        latency: dict[str, dict[int, Latency]] = {"bare": {}, "api": {}}
        for connections in LATENCY_CONNECTIONS:
            runs: dict[str, list[WrkResult]] = {"bare": [], "api": []}
            for index in range(options.latency_runs):
                for target in (plan.bare, plan.portal) if index % 2 == 0 else (plan.portal, plan.bare):
                    runs[target.name].append(
                        self.run(
                            target, threads=1, connections=connections, duration=options.latency_duration, latency=True
                        )
                    )
            for name, results in runs.items():
                latency[name][connections] = found = Latency(tuple(results))
                failures = "; ".join(x.describe_failure() for x in results if x.failed)
                print(
                    f"    latency c={connections}  {name:>4}  p50 {found.p50:7.2f} ms  p99 {found.p99:7.2f} ms"
                    + (f"  ({failures})" if failures else ""),
                    flush=True,
                )
        if plan.counts:
            print(
                f"    {self.writes.rows:,} rows written for {self.writes.requests:,} answered requests "
                f"({self.writes.per_request:.3f} per request; {plan.writes_per_request} expected)",
                flush=True,
            )
        return ScenarioResult(plan, summarise(rounds), latency, self.writes, load_before, load_average())


# --- Reporting ---------------------------------------------------------------------------------------------------


def report(results: Sequence[ScenarioResult], options: Options) -> None:
    header = (
        "scenario", "body", "bare req/s", "portal req/s", "ratio [min–max]", "kept", "events/s", "writes/req",
        "c=1 p50/p99 ms", "c=4 p50/p99 ms", "bare c=1", "bare c=4",
    )  # fmt: skip
    rows = []
    for r in results:
        s, plan = r.summary, r.plan
        rows.append(
            (
                plan.name,
                f"{plan.size:,} B",
                f"{s.baseline_rps:,.0f}",
                f"{s.subject_rps:,.0f}",
                f"{s.median:.3f} [{s.low:.3f}–{s.high:.3f}]" + ("" if s.reliable else " ?"),
                f"{s.kept}/{len(s.rounds)}",
                f"{s.subject_rps * plan.events:,.0f}" if plan.events else "",
                _writes_cell(r) if plan.writes_per_request else "",
                r.latency["api"][1].cell(r.noisy(1)),
                r.latency["api"][4].cell(r.noisy(4)),
                r.latency["bare"][1].cell(),
                r.latency["bare"][4].cell(),
            )
        )
    widths = [max(len(str(row[i])) for row in (header, *rows)) for i in range(len(header))]
    print()
    print(
        f"Per scenario: requests/s at c={options.connections} (median over kept rounds), ratio portal/bare (median "
        f"of the per-round ratios), latency p50/p99 in ms at 1 and 4 connections (medians over "
        f"{options.latency_runs} run(s) of {options.latency_duration:g} s)."
    )
    for row in (header, *rows):
        print("  ".join(f"{c:<{widths[i]}}" if i == 0 else f"{c:>{widths[i]}}" for i, c in enumerate(row)).rstrip())
    print(
        "  ? = unreliable ratio; ! = latency run with errors or short responses; ~ = latency disturbed by the machine;"
        " writes/req = rows written per answered request / rows expected; above 1 by the requests in flight when"
        " wrk stopped (answered, not counted); ! = fewer rows than answered requests, or more than in flight explain"
    )
    print()
    for r in results:
        s, plan = r.summary, r.plan
        rate = f"{s.subject_rps * plan.events:,.0f} events/s" if plan.events > 1 else f"{s.subject_rps:,.0f} req/s"
        line = (
            f"  {plan.label}: {rate}, {s.median:.0%} of its bare endpoint; p99 "
            f"{r.latency['api'][1].p99:.1f} ms at c=1, {r.latency['api'][4].p99:.1f} ms at c=4"
        )
        if not s.reliable:
            line += f" (unreliable: {s.why_unreliable}; load {r.load_before} → {r.load_after})"
        print(line)
        for dropped in (x for x in s.rounds if not x.kept):
            print(f"      round {dropped.index} dropped: {dropped.dropped_because}")


def _writes_cell(r: ScenarioResult) -> str:
    mark = "" if r.writes.plausible(r.plan.writes_per_request) else " !"
    return f"{r.writes.per_request / r.plan.writes_per_request:.3f}{mark}"


def to_json(results: Sequence[ScenarioResult], options: Options, loads: dict[str, str]) -> dict[str, Any]:
    def latency(by_c: dict[int, Latency]) -> dict[str, Any]:
        return {str(c): {"p50": x.p50, "p99": x.p99, "disturbed": x.disturbed} for c, x in by_c.items()}

    return {
        "date": date.today().isoformat(),
        "machine": {"cpus": os.cpu_count(), "versions": versions()},
        "load_average": loads,
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(options).items()},
        "scenarios": {
            r.plan.name: {
                "label": r.plan.label,
                "size": r.plan.size,
                "bare_size": r.plan.bare_size,
                "rounds": [
                    {"bare_rps": x.baseline.requests_per_sec, "api_rps": x.subject.requests_per_sec, "kept": x.kept}
                    for x in r.summary.rounds
                ],
                "ratio": {"median": r.summary.median, "min": r.summary.low, "max": r.summary.high},
                "reliable": r.summary.reliable,
                "rps_median": {"bare": r.summary.baseline_rps, "api": r.summary.subject_rps},
                "events_per_request": r.plan.events,
                "writes": {"rows": r.writes.rows, "requests": r.writes.requests, "in_flight_max": r.writes.in_flight},
                "latency_ms": {"bare": latency(r.latency["bare"]), "api": latency(r.latency["api"])},
            }
            for r in results
        },
    }


# --- The run -----------------------------------------------------------------------------------------------------


def run(options: Options) -> int:
    wrk = find_wrk()
    loads = {"before": print_machine(wrk)}
    with tempfile.TemporaryDirectory(prefix="portal-bench-api-") as tmp:
        tmp_dir = Path(tmp)
        database_url = options.database_url or f"sqlite:///{tmp_dir / 'demo.sqlite3'}"
        print("Preparing a fresh demo database…", flush=True)
        print("  " + prepare_database(database_url), flush=True)
        portal_port, baseline_port = free_port(), free_port()
        portal_env = portal_environment(database_url, portal_port)
        data = BenchData(database_url, portal_env["PORTAL_SECRET_KEY"])
        data.prepare(portal_env, options.customers)
        print(
            f"  API key {data.api_key.split('.')[0]}… (all scopes); heavy customer {data.heavy_ref}; "
            f"{len(data.signed_in)} customers signed in",
            flush=True,
        )
        child_env = {**os.environ, **portal_env}
        baseline_env = {key: value for key, value in os.environ.items() if not key.startswith("PORTAL_")}
        baseline_env["BENCH_BASELINE_DB"] = str(tmp_dir / "bare-commit.db")
        portal_command = uvicorn_command("portal.app:create_app", portal_port, factory=True, app_dir=PROJECT_ROOT)
        baseline_command = uvicorn_command("baseline_json_app:app", baseline_port, app_dir=BENCH_DIR)
        with (
            running_server(
                "portal", portal_command, port=portal_port, env=child_env, cwd=PROJECT_ROOT, log_dir=tmp_dir
            ) as portal,
            running_server(
                "bare", baseline_command, port=baseline_port, env=baseline_env, cwd=PROJECT_ROOT, log_dir=tmp_dir
            ) as baseline,
        ):
            print(f"Portal on {portal.base_url}, bare endpoints on {baseline.base_url}. Checking…", flush=True)
            plans = []
            for name in options.scenarios:
                plan = PLANNERS[name](name, portal, baseline, data, tmp_dir)
                print(f"  {name:<16} {plan.label}: {plan.size:,} B answer checked; {plan.note}", flush=True)
                plans.append(plan)
            print(
                f"\nPer scenario: {options.warmup:g} s warm-up each, {options.rounds} alternating rounds of "
                f"wrk -t{options.threads} -c{options.connections} -d{options.duration:g}s, then latency: "
                f"{options.latency_runs} alternating run(s) of wrk -t1 -c1/-c4 -d{options.latency_duration:g}s",
                flush=True,
            )
            results = [Runner(wrk, plan, data).measure(options) for plan in plans]
            log = portal.log_tail(200)
            if re.search(r"Traceback|Exception", log):
                print(f"\nwarning: the portal logged errors during the run:\n{portal.log_tail(30)}")
    loads["after"] = load_average()
    print(f"\nload average after the run: {loads['after']}")
    report(results, options)
    if options.json_path:
        options.json_path.write_text(json.dumps(to_json(results, options, loads), indent=2) + "\n")
        print(f"raw figures written to {options.json_path}")
    if options.rounds < 8 or options.duration < 5:
        print(
            f"note: {options.rounds} rounds of {options.duration:g} s per scenario; the method asks for at least 8 "
            "rounds of 5 s for a reference figure (--rounds 8 --duration 5)."
        )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    return run_benchmark(lambda: run(options))


if __name__ == "__main__":
    sys.exit(main())
