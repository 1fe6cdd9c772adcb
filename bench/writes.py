"""Benchmark: the writes people make, each against a bare endpoint committing the same number of rows to SQLite.

    .venv/bin/python bench/writes.py                                  # all five, 8 alternating rounds of 5 s
    .venv/bin/python bench/writes.py --quick                          # smoke check (figures not reliable)
    .venv/bin/python bench/writes.py --scenarios signin,note --database-url postgresql+psycopg://…/empty_db
    .venv/bin/python bench/writes.py --tree /path/to/another/checkout # the same bench against other code

Scenarios (every request a real write that succeeds; answered with the portal's 303):
  signin    POST /signin, a new address from a new IP each time (behind uvicorn's trusted 127.0.0.1 proxy header,
            as a production proxy sets it): 2 rate-limit counts, the challenge, the email, the audit = 5 rows
  code      POST /signin/code, the right code of a fresh challenge each time (made in the database beforehand, as
            many as the run needs): the IP's count, the challenge's try and use, the session, the audit = 4 rows
  profile   POST /me/profile, a signed-in customer changing their last name: the customer, the field's change, the
            audit, the customer.rectified webhook = 4 rows
  request   POST /me/requests/new/other, a signed-in customer filing a question (customers made beforehand: 3
            open and 10 a day each at most): the request, its first step, the day's count, the audit, the
            acknowledgement email = 5 rows
  note      POST /staff/requests/{ref}/note, an agent's internal note on an open request: the request's new
            version, the step, the audit = 3 rows

The bare endpoint is bench/baseline_json_app.py's `POST /form?rows=K`: a form read and K rows committed in one
SQLite transaction, answered with a 303 (issue 17: "≥ 0.25 of a bare endpoint doing one SQLite commit of the same
rows"). Same method as bench/pages.py and bench/api.py (bench/README.md): identical uvicorn flags, one worker;
per scenario, rounds alternate bare/portal, the result is the median of the per-round ratios with the drop and
reliability rules of bench/_harness.py; latency apart at 1 and 4 connections, alternated. Each wrk run gets a Lua
script of its own (fresh addresses, challenges, customers), and the rows each request must write are counted in
the database around every portal run. Not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))

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
from pages import LATENCY_CONNECTIONS, Latency, portal_environment, prepare_database  # noqa: E402

SCENARIOS = ("signin", "code", "profile", "request", "note")
# Rows each successful request writes (the bare endpoint commits as many), and the audit action that counts them.
ROWS = {"signin": 5, "code": 4, "profile": 4, "request": 5, "note": 3}
AUDITED = {
    "signin": "signin.requested",
    "code": "signin.succeeded",
    "profile": "customer.rectified",
    "request": "request.received",
    "note": "request.note_added",
}
BARE_FORM = "csrf_token=bench&purpose=bench&action=bench"  # the fields the bare form endpoint checks
FORM = "application/x-www-form-urlencoded"


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
    tree: Path
    database_url: str | None
    json_path: Path | None
    capacity: int  # writes the prepared challenges and customers must cover per scenario
    profile_dir: Path | None = None  # py-spy's raw samples of the portal during each scenario's rounds


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated, in order (all)")
    parser.add_argument("--rounds", type=int, default=8, help="rounds per scenario (8)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run (5)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections for throughput (32)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads for throughput (2)")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of warm-up per scenario and server (1)")
    parser.add_argument("--latency-runs", type=int, default=2, help="latency runs per server and concurrency (2)")
    parser.add_argument("--latency-duration", type=float, default=3.0, help="seconds per latency run (3)")
    parser.add_argument("--tree", type=Path, default=PROJECT_ROOT, help="the checkout whose portal is served")
    parser.add_argument("--database-url", default=None, help="an EMPTY database to fill (e.g. PostgreSQL)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the raw figures to PATH as JSON")
    parser.add_argument(
        "--capacity", type=int, default=120_000, help="challenges for `code`; filers for `request`: a third (120000)"
    )
    parser.add_argument(
        "--py-spy",
        type=Path,
        metavar="DIR",
        help="record the portal with py-spy during each scenario's rounds into DIR/<scenario>.txt (distorts ratios)",
    )
    parser.add_argument("--quick", action="store_true", help="smoke check: 2 rounds of 2 s, 1 latency run of 2 s")
    args = parser.parse_args(argv)
    if args.quick:
        for name, value in (("rounds", 2), ("duration", 2.0), ("latency_runs", 1), ("latency_duration", 2.0)):
            if getattr(args, name) == parser.get_default(name):
                setattr(args, name, value)
    if min(args.rounds, args.duration, args.connections, args.threads, args.latency_runs) < 1:
        parser.error("--rounds, --duration, --connections, --threads and --latency-runs must be at least 1")
    scenarios = tuple(dict.fromkeys(s.strip() for s in args.scenarios.split(",") if s.strip()))
    unknown = [s for s in scenarios if s not in SCENARIOS]
    if unknown or not scenarios:
        parser.error(f"unknown scenario(s) {', '.join(unknown) or '(none)'}; choose among {', '.join(SCENARIOS)}")
    return Options(
        scenarios=scenarios,
        rounds=args.rounds,
        duration=args.duration,
        connections=args.connections,
        threads=args.threads,
        warmup=args.warmup,
        latency_runs=args.latency_runs,
        latency_duration=args.latency_duration,
        tree=args.tree.resolve(),
        database_url=args.database_url,
        json_path=args.json,
        capacity=args.capacity,
        profile_dir=args.py_spy,
    )


# --- What the scenarios need in the database ---------------------------------------------------------------------


def lua_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'"{escaped}"'


@dataclasses.dataclass
class BenchData:
    database_url: str
    portal_env: dict[str, str]
    flows: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # (flow cookie, code) never used yet
    customers: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # (Cookie header, CSRF token)
    filers: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # the same, one per request to file
    staff: tuple[str, str] = ("", "")
    open_references: list[str] = dataclasses.field(default_factory=list)

    def engine(self):  # type: ignore[no-untyped-def]
        from portal.db import make_engine

        return make_engine(self.database_url)

    def prepare(self, scenarios: Sequence[str], capacity: int) -> None:
        from itsdangerous import Signer, TimestampSigner
        from sqlalchemy import insert, select

        from portal.db import transaction
        from portal.identity.keys import keyed_hash
        from portal.identity.sessions import open_session
        from portal.models import Customer, LoginChallenge, PrivacyRequest, StaffUser, email_key, utcnow
        from portal.requests.service import file_request
        from portal.settings import load_settings

        settings = load_settings(environ=self.portal_env)
        key = settings.secret_key
        session_signer = Signer(key, salt="portal.session")
        now = utcnow()
        engine = self.engine()

        def signed_in(session, customer_id: int) -> tuple[str, str]:  # type: ignore[no-untyped-def]
            raw = open_session(session, settings=settings, kind="customer", customer_id=customer_id, now=now)
            cookie = f"portal_session={session_signer.sign(raw).decode()}; portal_csrf={secrets.token_urlsafe(24)}"
            return cookie, keyed_hash(key, "csrf", raw)

        try:
            with transaction(engine) as session:
                ids = session.scalars(
                    select(Customer.id).where(Customer.erased_at.is_(None)).order_by(Customer.id).limit(200)  # type: ignore[union-attr]
                ).all()
                if "code" in scenarios:
                    flow_signer = TimestampSigner(key, salt="portal.signin-flow")
                    rows = []
                    for n in range(capacity):
                        flow, code = secrets.token_urlsafe(24), f"{secrets.randbelow(1_000_000):06d}"
                        rows.append(
                            {
                                "flow_id": flow,
                                "email_digest": keyed_hash(key, "email", f"bench-code-{n}@example.com"),
                                "customer_id": ids[n % len(ids)],
                                "token_hash": keyed_hash(key, "login-token", secrets.token_urlsafe(32)),
                                "code_hash": keyed_hash(key, "login-code", f"{flow}:{code}"),
                                "language": "fr",
                                "created_at": now,
                                # Valid for the whole run (the real ten minutes would expire during a long one).
                                "expires_at": now + timedelta(hours=12),
                                "attempts": 0,
                            }
                        )
                        self.flows.append((flow_signer.sign(flow).decode(), code))
                    session.execute(insert(LoginChallenge), rows)
                if "profile" in scenarios:
                    self.customers = [signed_in(session, customer_id) for customer_id in ids]
                if "request" in scenarios:
                    # Each filer may have 3 questions open and file 10 a day: fresh customers, 3 questions each.
                    first = len(ids) + 1_000_000
                    people = [
                        {
                            "email": f"filer{n}@bench.example",
                            "email_key": email_key(f"filer{n}@bench.example"),
                            "first_name": "Filer",
                            "last_name": f"N{n}",
                            "preferred_language": "fr",
                            "source": "bench",
                            "created_at": now,
                            "updated_at": now,
                        }
                        for n in range(first, first + capacity // 3 + 1)
                    ]
                    session.execute(insert(Customer), people)
                    filer_ids = session.scalars(
                        select(Customer.id).where(Customer.source == "bench").order_by(Customer.id)
                    ).all()
                    sessions = [signed_in(session, customer_id) for customer_id in filer_ids]
                    self.filers = [s for s in sessions for _ in range(3)]
                if "note" in scenarios:
                    staff = StaffUser(
                        email="agent@bench.example",
                        email_key="agent@bench.example",
                        name="Bench Agent",
                        role="agent",
                        password_hash="not-used",  # noqa: S106  (signed in by a session made here, never a password)
                        active=True,
                        created_at=now,
                    )
                    session.add(staff)
                    session.flush()
                    raw = open_session(session, settings=settings, kind="staff", customer_id=None, now=now,
                                       staff_id=staff.id)  # fmt: skip
                    staff_signer = Signer(key, salt="portal.staff-session")
                    cookie = f"portal_staff={staff_signer.sign(raw).decode()}; portal_csrf={secrets.token_urlsafe(24)}"
                    self.staff = (cookie, keyed_hash(key, "csrf", f"staff:{raw}"))
                    # Many open requests, so that two notes rarely land on one request at once: on PostgreSQL (a
                    # thread per write) the second would rightly be refused as stale (409) by the version check.
                    for n in range(1_000):
                        file_request(
                            session, customer_id=ids[n % len(ids)], type="other", channel="email", now=now,
                            actor="bench", details={"message": f"bench {n}"}, timezone="Europe/Paris",
                        )  # fmt: skip
                    self.open_references = list(
                        session.scalars(
                            select(PrivacyRequest.reference).where(
                                PrivacyRequest.status.in_(("received", "in_progress"))  # type: ignore[attr-defined]
                            )
                        )
                    )
        finally:
            engine.dispose()

    def audited(self, action: str) -> int:
        from sqlalchemy import func, select

        from portal.models import AuditEvent

        engine = self.engine()
        try:
            with engine.connect() as connection:
                statement = select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action)
                return int(connection.execute(statement).scalar_one())
        finally:
            engine.dispose()


# --- Lua scripts: one per wrk run, so that no run reuses what an earlier one consumed ----------------------------

LIST_LUA = """\
-- Generated by bench/writes.py: each thread sends its share of the prepared requests, in turn.
local items = {
%(items)s
}
local threads = %(threads)d
local counter = 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end
function init(args)
  n = id + 1
end
function request()
  local item = items[n]
  n = n + threads
  if n > #items then n = id + 1 end
  return wrk.format("POST", item[1], {["Cookie"] = item[2], ["Content-Type"] = "%(form)s",
    ["X-Forwarded-For"] = item[3]}, item[4])
end
"""

SIGNIN_LUA = """\
-- Generated by bench/writes.py: a new address from a new IP (run %(run)d, thread, request number) every request.
local counter = 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end
function init(args)
  n = 0
end
function request()
  n = n + 1
  local ip = "10." .. %(run)d %% 250 .. "." .. (id * 100 + math.floor(n / 250) %% 100) .. "." .. (n %% 250 + 1)
  return wrk.format("POST", "/signin", {["Cookie"] = %(cookie)s, ["Content-Type"] = "%(form)s",
    ["X-Forwarded-For"] = ip}, "csrf_token=" .. %(token)s .. "&email=bench" .. %(run)d .. "t" .. id .. "n" .. n
    .. "%%40example.com")
end
"""

STATIC_LUA = """\
wrk.method = "POST"
wrk.body = %(body)s
wrk.headers["Content-Type"] = "%(form)s"
"""


def letters(number: int) -> str:
    """`number` spelt in letters (names refuse digits): 0 → A, 25 → Z, 26 → BA."""
    text = ""
    while True:
        number, digit = divmod(number, 26)
        text = chr(ord("A") + digit) + text
        if not number:
            return text.capitalize()


@dataclasses.dataclass
class Scripts:
    """Makes the next run's script for a scenario, consuming prepared challenges and filers as runs use them."""

    name: str
    data: BenchData
    directory: Path
    secret_key: str
    run: int = 0
    used: int = 0  # prepared challenges or filers handed to runs so far
    start: int = 0  # where the last run's share began

    def consumed(self, requests: int, connections: int, threads: int) -> None:
        """Give back what the last run cannot have reached. Each of wrk's threads takes every `threads`-th item, so
        no thread got further than `threads` times all the answered requests and those in flight. The earlier margin
        (1.25 times the answers) was exceeded when the threads ran unevenly: the next run sent a filer's fourth
        question, which the portal rightly refused (3 open at most), and the round was dropped for its 4xx."""
        if self.name in ("code", "request"):
            self.used = min(self.used, self.start + threads * (requests + connections) + 50)

    def next(self, threads: int, expected: int) -> Path:
        self.run += 1
        path = self.directory / f"{self.name}-{self.run}.lua"
        if self.name == "signin":
            base = secrets.token_urlsafe(24)
            from portal.identity.keys import keyed_hash

            values = {
                "run": self.run,
                "cookie": lua_string(f"portal_csrf={base}"),
                "token": lua_string(keyed_hash(self.secret_key, "csrf", base)),
                "form": FORM,
            }
            path.write_text(SIGNIN_LUA % values)
            return path
        items = self._items(expected)
        rows = ",\n".join("  {" + ", ".join(lua_string(x) for x in item) + "}" for item in items)
        path.write_text(LIST_LUA % {"items": rows, "threads": threads, "form": FORM})
        return path

    def _items(self, expected: int) -> list[tuple[str, str, str, str]]:
        data, run = self.data, self.run
        if self.name == "profile":  # cycling through the customers, every request a new last name
            return [
                (
                    "/me/profile",
                    cookie,
                    "127.0.0.1",
                    f"csrf_token={token}&first_name=Bench&last_name=Run+{letters(run)}+{letters(n)}&phone=&address_line1=&address_line2="
                    "&postal_code=&city=&country=FR&preferred_language=fr",
                )
                for n, (cookie, token) in ((n, data.customers[n % len(data.customers)]) for n in range(expected))
            ]
        if self.name == "note":
            cookie, token = data.staff
            return [
                (f"/staff/requests/{reference}/note", cookie, "127.0.0.1", f"csrf_token={token}&note=Run+{run}+n{n}")
                for n, reference in enumerate(data.open_references)
            ]
        pool = data.flows if self.name == "code" else data.filers
        # Never reused: a consumed challenge or a filer with 3 open questions would answer an error page.
        take = pool[self.used : self.used + expected]
        if len(take) < expected:
            raise BenchError(f"{self.name}: the prepared {len(pool):,} ran out; raise --capacity")
        self.start, self.used = self.used, self.used + expected
        if self.name == "code":
            from portal.identity.keys import keyed_hash

            base = secrets.token_urlsafe(24)  # the anonymous CSRF cookie and its token
            token = keyed_hash(self.secret_key, "csrf", base)
            return [
                (
                    "/signin/code",
                    f"portal_signin={flow}; portal_csrf={base}",
                    f"10.{200 + n // 62_500 % 50}.{n // 250 % 250}.{n % 250 + 1}",
                    f"csrf_token={token}&code={code}",
                )
                for n, (flow, code) in enumerate(take, start=self.used)
            ]
        return [
            (
                "/me/requests/new/other",
                cookie,
                "127.0.0.1",
                f"csrf_token={token}&message=Bench+question+{self.used}+{n}&submission_key=r{run}n{n}",
            )
            for n, (cookie, token) in enumerate(take)
        ]


# --- Measuring ---------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Writes:
    audited: int = 0
    requests: int = 0
    in_flight: int = 0

    def plausible(self) -> bool:
        return self.requests <= self.audited <= self.requests + self.in_flight


@dataclasses.dataclass(frozen=True)
class Result:
    name: str
    label: str
    summary: RatioSummary
    latency: dict[str, dict[int, Latency]]
    writes: Writes
    load_before: str
    load_after: str


class Scenario:
    def __init__(self, name: str, portal: Server, baseline: Server, data: BenchData, tmp: Path, wrk: str) -> None:
        self.name, self.portal, self.baseline, self.data, self.wrk = name, portal, baseline, data, wrk
        self.scripts = Scripts(name, data, tmp, data.portal_env["PORTAL_SECRET_KEY"])
        self.bare_script = tmp / "bare.lua"
        self.bare_script.write_text(STATIC_LUA % {"body": lua_string(BARE_FORM), "form": FORM})
        self.bare_url = f"{baseline.base_url}/form?rows={ROWS[name]}"
        self.writes = Writes()
        self.rate = 1_500.0  # requests/s the next run may reach, to size its script (the best seen, after a run)

    def check(self) -> str:
        """One request by hand: the portal answers its 303 and writes its audit event; so does the bare endpoint."""
        status, headers, body = http_request(
            "POST", self.bare_url, body=BARE_FORM.encode(), headers={"Content-Type": FORM}
        )
        if status != 303:
            raise BenchError(f"{self.name}: the bare endpoint answered {status}: {body[:200]!r}")
        if self.name != "signin":  # one request by hand first, for a readable error
            path, cookie, ip, form = self.scripts._items(1)[0]
            headers = {"Cookie": cookie, "Content-Type": FORM, "X-Forwarded-For": ip}
            status, answer_headers, body = http_request("POST", self.portal.base_url + path, body=form.encode(),
                                                        headers=headers)  # fmt: skip
            text = re.sub(r"\s+", " ", body.decode(errors="replace"))
            problem = re.search(r'(role="alert"|class="error[^"]*")[^>]*>(.{0,300})', text)
            if status != 303:
                raise BenchError(f"{self.name}: POST {path} answered {status}: {problem[2] if problem else text[:300]}")
        result = self.run_portal(threads=1, connections=1, duration=1.0)
        if result.requests == 0 or result.failed:
            raise BenchError(f"{self.name}: the portal's check run failed: {result.describe_failure()}")
        label = {
            "signin": "POST /signin (new address, new IP)",
            "code": "POST /signin/code (right code)",
            "profile": "POST /me/profile (last name)",
            "request": "POST /me/requests/new/other",
            "note": "POST /staff/requests/{ref}/note",
        }[self.name]
        return label

    def run_portal(self, *, threads: int, connections: int, duration: float, latency: bool = False) -> WrkResult:
        before = self.data.audited(AUDITED[self.name])
        expected = int(self.rate * 2 * max(1.0, round(duration))) + 4 * connections + 100
        script = self.scripts.next(threads, expected)
        result = run_wrk(
            self.wrk, self.portal.base_url + "/", threads=threads, connections=connections, duration=duration,
            latency=latency, script=script,
        )  # fmt: skip
        self.rate = max(self.rate, result.requests_per_sec)
        self.scripts.consumed(result.requests, connections, threads)
        redirects_ok = "Non-2xx" not in result.output
        after = self.data.audited(AUDITED[self.name])
        self.writes.audited += after - before
        self.writes.requests += result.requests
        self.writes.in_flight += connections
        if not redirects_ok or after - before < result.requests:
            # Every answered request must have written: fewer audit events means error pages wrk counted as 3xx.
            return dataclasses.replace(result, non_2xx_3xx=max(result.non_2xx_3xx, result.requests - (after - before)))
        return result

    def record(self, options: Options) -> subprocess.Popen[bytes] | None:
        """py-spy on the portal for the length of the rounds (about half of it on the portal's runs)."""
        if options.profile_dir is None:
            return None
        options.profile_dir.mkdir(parents=True, exist_ok=True)
        py_spy = Path(sys.executable).with_name("py-spy")
        seconds = int(options.rounds * 2 * (round(options.duration) + 1))
        command = [str(py_spy), "record", "-p", str(self.portal.process.pid), "-d", str(seconds), "-r", "200",
                   "-f", "raw", "-o", str(options.profile_dir / f"{self.name}.txt")]  # fmt: skip
        return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603

    def run_bare(self, *, threads: int, connections: int, duration: float, latency: bool = False) -> WrkResult:
        return run_wrk(
            self.wrk, self.bare_url, threads=threads, connections=connections, duration=duration, latency=latency,
            script=self.bare_script,
        )  # fmt: skip

    def measure(self, options: Options, label: str) -> Result:
        load_before = load_average()
        print(f"\n== {self.name}: {label}; bare: {ROWS[self.name]} rows in one commit  load {load_before}", flush=True)
        how = {"threads": options.threads, "connections": options.connections}
        if options.warmup:
            self.run_bare(duration=options.warmup, **how)
            self.run_portal(duration=options.warmup, **how)
        recorder = self.record(options)
        rounds = []
        for index in range(options.rounds):
            if index % 2 == 0:
                bare, portal = self.run_bare(duration=options.duration, **how), None
                portal = self.run_portal(duration=options.duration, **how)
            else:
                portal = self.run_portal(duration=options.duration, **how)
                bare = self.run_bare(duration=options.duration, **how)
            r = Round(index + 1, ("bare", "api") if index % 2 == 0 else ("api", "bare"), bare, portal)
            failures = [x.describe_failure() for x in (bare, portal) if x.failed]
            print(
                f"    round {r.index:>2}  bare {bare.requests_per_sec:>8,.0f} req/s   portal "
                f"{portal.requests_per_sec:>7,.0f} req/s   ratio {r.ratio:.3f}"
                + (f"  ({'; '.join(failures)})" if failures else ""),
                flush=True,
            )
            rounds.append(r)
        if recorder is not None:
            recorder.wait()
            print(f"    py-spy: {summarise_profile(options.profile_dir / f'{self.name}.txt')}", flush=True)  # type: ignore[operator]
        latency: dict[str, dict[int, Latency]] = {"bare": {}, "api": {}}
        for connections in LATENCY_CONNECTIONS:
            runs: dict[str, list[WrkResult]] = {"bare": [], "api": []}
            for index in range(options.latency_runs):
                order = ("bare", "api") if index % 2 == 0 else ("api", "bare")
                for side in order:
                    run = self.run_bare if side == "bare" else self.run_portal
                    runs[side].append(
                        run(threads=1, connections=connections, duration=options.latency_duration, latency=True)
                    )
            for side, results in runs.items():
                latency[side][connections] = found = Latency(tuple(results))
                failures = "; ".join(x.describe_failure() for x in results if x.failed)
                print(
                    f"    latency c={connections}  {side:>4}  p50 {found.p50:7.2f} ms  p99 {found.p99:7.2f} ms"
                    + (f"  ({failures})" if failures else "")
                )
        print(
            f"    {self.writes.audited:,} audited writes for {self.writes.requests:,} answered requests"
            + ("" if self.writes.plausible() else "  (! not one write per answered request)"),
            flush=True,
        )
        return Result(self.name, label, summarise(rounds), latency, self.writes, load_before, load_average())


def summarise_profile(path: Path, top: int = 12) -> str:
    """The portal's own frames and SQLAlchemy's heaviest, by inclusive share of the samples (py-spy raw format)."""
    inclusive: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        total += int(count)
        for frame in set(stack.split(";")):
            inclusive[frame] = inclusive.get(frame, 0) + int(count)
    shown = [(n, f) for f, n in inclusive.items() if "portal/" in f and "middleware" not in f or "do_commit" in f]
    lines = [f"{100 * n / total:5.1f}%  {f}" for n, f in sorted(shown, reverse=True)[:top]]
    return f"{total:,} samples in {path}\n      " + "\n      ".join(lines)


# --- Reporting ---------------------------------------------------------------------------------------------------


def report(results: Sequence[Result], options: Options) -> None:
    header = ("scenario", "rows", "bare req/s", "portal req/s", "ratio [min–max]", "kept", "c=1 p50/p99", "c=4 p50/p99",
              "bare c=4", "aim")  # fmt: skip
    rows = []
    for r in results:
        s = r.summary
        p99 = r.latency["api"][4].p99
        noisy = r.latency["bare"][4].disturbed
        if not s.reliable:
            aim = "not established"
        else:
            aim = "met" if s.median >= 0.25 and p99 < 20 and not noisy else "missed"
        rows.append(
            (
                r.name,
                str(ROWS[r.name]),
                f"{s.baseline_rps:,.0f}",
                f"{s.subject_rps:,.0f}",
                f"{s.median:.3f} [{s.low:.3f}–{s.high:.3f}]" + ("" if s.reliable else " ?"),
                f"{s.kept}/{len(s.rounds)}",
                r.latency["api"][1].cell(r.latency["bare"][1].disturbed),
                r.latency["api"][4].cell(noisy),
                r.latency["bare"][4].cell(),
                aim,
            )
        )
    widths = [max(len(str(row[i])) for row in (header, *rows)) for i in range(len(header))]
    print(
        f"\nPer scenario: req/s at c={options.connections} (median over kept rounds), ratio portal / bare commit of "
        f"the same rows (median of the per-round ratios), latency p50/p99 ms at 1 and 4 connections. Aim (issue 17):"
        " ratio >= 0.25 and p99 < 20 ms at c=4."
    )
    for row in (header, *rows):
        print("  ".join(f"{c:<{widths[i]}}" if i == 0 else f"{c:>{widths[i]}}" for i, c in enumerate(row)).rstrip())
    print("  ? = unreliable ratio (aim not established); ~ = latency disturbed by the machine (bare p99 > 3x p50)")
    for r in results:
        if not r.summary.reliable:
            print(f"  {r.name}: unreliable: {r.summary.why_unreliable}; load {r.load_before} → {r.load_after}")
        for dropped in (x for x in r.summary.rounds if not x.kept):
            print(f"      {r.name} round {dropped.index} dropped: {dropped.dropped_because}")


def to_json(results: Sequence[Result], options: Options, loads: dict[str, str]) -> dict[str, Any]:
    def latency(by_c: dict[int, Latency]) -> dict[str, Any]:
        return {str(c): {"p50": x.p50, "p99": x.p99, "disturbed": x.disturbed} for c, x in by_c.items()}

    return {
        "date": date.today().isoformat(),
        "machine": {"cpus": os.cpu_count(), "versions": versions()},
        "load_average": loads,
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(options).items()},
        "scenarios": {
            r.name: {
                "label": r.label,
                "rows": ROWS[r.name],
                "rounds": [
                    {"bare_rps": x.baseline.requests_per_sec, "api_rps": x.subject.requests_per_sec, "kept": x.kept}
                    for x in r.summary.rounds
                ],
                "ratio": {"median": r.summary.median, "min": r.summary.low, "max": r.summary.high},
                "reliable": r.summary.reliable,
                "latency_ms": {"bare": latency(r.latency["bare"]), "api": latency(r.latency["api"])},
                "writes": dataclasses.asdict(r.writes),
            }
            for r in results
        },
    }


def run(options: Options) -> int:
    wrk = find_wrk()
    loads = {"before": print_machine(wrk)}
    print(f"  portal served from {options.tree}", flush=True)
    with tempfile.TemporaryDirectory(prefix="portal-bench-writes-") as tmp:
        tmp_dir = Path(tmp)
        database_url = options.database_url or f"sqlite:///{tmp_dir / 'demo.sqlite3'}"
        print("Preparing a fresh demo database…", flush=True)
        print("  " + prepare_database(database_url), flush=True)
        portal_port, baseline_port = free_port(), free_port()
        portal_env = portal_environment(database_url, portal_port)
        data = BenchData(database_url, portal_env)
        data.prepare(options.scenarios, options.capacity)
        child_env = {**os.environ, **portal_env}
        baseline_env = {key: value for key, value in os.environ.items() if not key.startswith("PORTAL_")}
        baseline_env["BENCH_BASELINE_DB"] = str(tmp_dir / "bare-commit.db")
        portal_command = uvicorn_command("portal.app:create_app", portal_port, factory=True, app_dir=options.tree)
        baseline_command = uvicorn_command("baseline_json_app:app", baseline_port, app_dir=BENCH_DIR)
        with (
            running_server(
                "portal", portal_command, port=portal_port, env=child_env, cwd=options.tree, log_dir=tmp_dir
            ) as portal,
            running_server(
                "bare", baseline_command, port=baseline_port, env=baseline_env, cwd=PROJECT_ROOT, log_dir=tmp_dir
            ) as baseline,
        ):
            print(f"Portal on {portal.base_url}, bare endpoints on {baseline.base_url}. Checking…", flush=True)
            scenarios = [Scenario(name, portal, baseline, data, tmp_dir, wrk) for name in options.scenarios]
            labels = [s.check() for s in scenarios]
            results = [s.measure(options, label) for s, label in zip(scenarios, labels, strict=True)]
            log = portal.log_tail(200)
            if re.search(r"Traceback|Exception", log):
                print(f"\nwarning: the portal logged errors during the run:\n{portal.log_tail(30)}")
    loads["after"] = load_average()
    print(f"\nload average after the run: {loads['after']}; portal from {options.tree}")
    report(results, options)
    if options.json_path:
        options.json_path.write_text(json.dumps(to_json(results, options, loads), indent=2) + "\n")
        print(f"raw figures written to {options.json_path}")
    if options.rounds < 8 or options.duration < 5:
        print(f"note: {options.rounds} rounds of {options.duration:g} s: not a reference figure (8 rounds of 5 s).")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    return run_benchmark(lambda: run(options))


if __name__ == "__main__":
    sys.exit(main())
