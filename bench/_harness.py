"""Shared plumbing for the benchmarks: servers on free loopback ports, `wrk` runs and their parsing, statistics.

Nothing here knows about the portal; `pages.py` composes it. Method: bench/README.md ("Method").
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import http.client
import os
import platform
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from importlib import metadata
from pathlib import Path

HOST = "127.0.0.1"  # the benchmarks never listen on anything but loopback
WRK_FALLBACK = "/usr/bin/wrk"

# Flags shared by every server under test, so that only the application differs: one worker, uvloop and httptools
# (uvicorn[standard]), no access log (uvicorn's access log halves throughput).
UVICORN_FLAGS: tuple[str, ...] = (
    "--workers",
    "1",
    "--loop",
    "uvloop",
    "--http",
    "httptools",
    "--no-access-log",
    "--log-level",
    "warning",
)


class BenchError(RuntimeError):
    """The benchmark cannot go on (missing tool, server that does not start, wrong page); the message says why."""


# --- Running a benchmark from the command line --------------------------------------------------------------------


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM too goes through the `finally` blocks that stop the servers


def run_benchmark(run: Callable[[], int]) -> int:
    """Run a benchmark as a command: Ctrl-C and SIGTERM stop its servers, a BenchError is one line (exit 2), and the
    time it took is printed at the end."""
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started in the background (SIG_IGN)
    started = time.monotonic()
    try:
        code = run()
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted; servers stopped.", file=sys.stderr)
        return 130
    print(f"({time.monotonic() - started:.0f} s)")
    return code


# --- Servers -----------------------------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port free on the loopback interface right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclasses.dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def uvicorn_command(app: str, port: int, *, factory: bool = False, app_dir: Path | None = None) -> list[str]:
    command = [sys.executable, "-m", "uvicorn", app, "--host", HOST, "--port", str(port), *UVICORN_FLAGS]
    if factory:
        command.append("--factory")
    if app_dir is not None:
        command += ["--app-dir", str(app_dir)]
    return command


@contextlib.contextmanager
def running_server(
    name: str,
    command: Sequence[str],
    *,
    port: int,
    env: Mapping[str, str],
    cwd: Path,
    log_dir: Path,
    ready_path: str = "/",
    timeout: float = 30.0,
) -> Iterator[Server]:
    """Start a server, wait until it answers HTTP, yield it, and always stop it (error, Ctrl-C, normal end)."""
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as log:
        # Own session: a Ctrl-C in the terminal reaches this script, which then stops the server itself.
        process = subprocess.Popen(  # noqa: S603  (explicit argument list, no shell)
            list(command), cwd=cwd, env=dict(env), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = Server(name=name, port=port, process=process, log_path=log_path)
    try:
        _wait_until_ready(server, ready_path, timeout)
        yield server
    finally:
        stop_server(server)


def stop_server(server: Server, grace: float = 10.0) -> None:
    process = server.process
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=grace)


def _wait_until_ready(server: Server, path: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise BenchError(
                f"{server.name} exited with code {server.process.returncode} before answering; its log:\n"
                f"{server.log_tail()}"
            )
        try:
            http_get(server.base_url + path, timeout=1.0)
            return
        except OSError:
            time.sleep(0.1)
    raise BenchError(
        f"{server.name} did not answer on {server.base_url} within {timeout:.0f} s; its log:\n{server.log_tail()}"
    )


def http_get(url: str, headers: Mapping[str, str] | None = None, timeout: float = 10.0) -> tuple[int, bytes]:
    """One GET without following redirects (a 303 to the sign-in page must show up as such)."""
    status, _headers, body = http_request("GET", url, headers=headers, timeout=timeout)
    return status, body


def http_request(
    method: str,
    url: str,
    *,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 10.0,
) -> tuple[int, dict[str, str], bytes]:
    """One request without following redirects; returns the status, the headers (lower-case names) and the body."""
    match = re.fullmatch(r"http://([^/:]+):(\d+)(/.*)?", url)
    if not match:
        raise ValueError(f"not a plain http URL: {url}")
    connection = http.client.HTTPConnection(match[1], int(match[2]), timeout=timeout)
    try:
        connection.request(method, match[3] or "/", body=body, headers=dict(headers or {}))
        response = connection.getresponse()
        return response.status, {name.lower(): value for name, value in response.getheaders()}, response.read()
    finally:
        connection.close()


# --- wrk ---------------------------------------------------------------------------------------------------------


def find_wrk() -> str:
    found = shutil.which("wrk") or (WRK_FALLBACK if os.access(WRK_FALLBACK, os.X_OK) else None)
    if not found:
        raise BenchError("wrk is not installed: install it with `apt-get install wrk` (Debian/Ubuntu), then rerun.")
    return found


def wrk_version(wrk: str) -> str:
    completed = subprocess.run([wrk, "-v"], capture_output=True, text=True, check=False)  # noqa: S603
    first = (completed.stdout or completed.stderr).strip().splitlines()
    return first[0] if first else "wrk (unknown version)"


@dataclasses.dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    requests_per_sec: float
    bytes_read: float
    socket_errors: int  # connect + read + write + timeout
    non_2xx_3xx: int  # wrk counts statuses >= 400
    latency_ms: dict[int, float]  # percentile -> milliseconds (only with --latency)
    output: str
    # wrk does not count redirects as errors: a page that turns into a 303 (say, to a sign-in page) shows up as
    # responses far smaller than the page. Set by the caller; 0 disables the check.
    min_bytes_per_request: float = 0.0

    @property
    def errors(self) -> int:
        return self.socket_errors + self.non_2xx_3xx

    @property
    def short_responses(self) -> bool:
        return self.bytes_per_request < self.min_bytes_per_request

    @property
    def failed(self) -> bool:
        return self.errors > 0 or self.short_responses

    def describe_failure(self) -> str:
        parts = []
        if self.socket_errors:
            parts.append(f"{self.socket_errors} socket errors")
        if self.non_2xx_3xx:
            parts.append(f"{self.non_2xx_3xx} responses >= 400")
        if self.short_responses:
            parts.append(f"{self.bytes_per_request:,.0f} B per response, expected >= {self.min_bytes_per_request:,.0f}")
        return ", ".join(parts)

    @property
    def bytes_per_request(self) -> float:
        return self.bytes_read / self.requests if self.requests else 0.0


_TIME_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_BYTE_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def parse_wrk(output: str) -> WrkResult:
    """Parse wrk 4.x's human-readable report (`wrk --latency` adds the distribution)."""
    total = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m|h), ([\d.]+)([KMGT]?)B read", output)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if not total or not rate:
        raise BenchError(f"could not parse wrk's output:\n{output}")
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    latency: dict[int, float] = {}
    for percent, value, unit in re.findall(r"^\s+(\d+)%\s+([\d.]+)(us|ms|s|m|h)\s*$", output, flags=re.MULTILINE):
        latency[int(percent)] = float(value) * _TIME_UNITS[unit]
    return WrkResult(
        requests=int(total[1]),
        seconds=float(total[2]) * _TIME_UNITS[total[3]] / 1000.0,
        requests_per_sec=float(rate[1]),
        bytes_read=float(total[4]) * _BYTE_UNITS[total[5]],
        socket_errors=sum(int(n) for n in socket_errors.groups()) if socket_errors else 0,
        non_2xx_3xx=int(non_2xx[1]) if non_2xx else 0,
        latency_ms=latency,
        output=output,
    )


def run_wrk(
    wrk: str,
    url: str,
    *,
    threads: int,
    connections: int,
    duration: float,
    headers: Mapping[str, str] | None = None,
    latency: bool = False,
    min_bytes_per_request: float = 0.0,
    script: Path | None = None,
) -> WrkResult:
    """`script`: a wrk Lua script (method, body, per-request bodies); `bench/api.py` POSTs with it."""
    command = [wrk, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration))}s", "--timeout", "10s"]
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    if script is not None:
        command += ["-s", str(script)]
    if latency:
        command.append("--latency")
    command.append(url)
    completed = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if completed.returncode != 0:
        raise BenchError(f"wrk failed ({completed.returncode}): {completed.stderr.strip() or completed.stdout}")
    return dataclasses.replace(parse_wrk(completed.stdout), min_bytes_per_request=min_bytes_per_request)


# --- Statistics --------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Round:
    index: int
    order: tuple[str, str]
    baseline: WrkResult
    subject: WrkResult
    kept: bool = True
    dropped_because: str = ""

    @property
    def ratio(self) -> float:
        return self.subject.requests_per_sec / self.baseline.requests_per_sec if self.baseline.requests_per_sec else 0.0


@dataclasses.dataclass(frozen=True)
class RatioSummary:
    rounds: list[Round]
    median: float
    low: float
    high: float
    kept: int
    reliable: bool
    why_unreliable: str
    baseline_rps: float  # median over the kept rounds
    subject_rps: float


def summarise(
    rounds: Sequence[Round], *, floor: float = 0.8, min_rounds: int = 6, max_spread: float = 1.15
) -> RatioSummary:
    """Median of the per-round ratios over the rounds kept (bench/README.md, "Method")."""
    best_baseline = max((r.baseline.requests_per_sec for r in rounds), default=0.0)
    judged: list[Round] = []
    for r in rounds:
        reasons = []
        if r.baseline.requests_per_sec < floor * best_baseline:
            reasons.append(f"baseline at {r.baseline.requests_per_sec / best_baseline:.0%} of its best")
        for label, result in (("baseline", r.baseline), ("subject", r.subject)):
            if result.failed:
                reasons.append(f"{label}: {result.describe_failure()}")
        judged.append(dataclasses.replace(r, kept=not reasons, dropped_because="; ".join(reasons)))
    kept = [r for r in judged if r.kept]
    ratios = [r.ratio for r in kept]
    if not ratios:
        return RatioSummary(judged, 0.0, 0.0, 0.0, 0, False, "no round survived", 0.0, 0.0)
    low, high = min(ratios), max(ratios)
    problems = []
    if len(kept) < min_rounds:
        problems.append(f"only {len(kept)} rounds kept (< {min_rounds})")
    if low <= 0 or high / low > max_spread:
        problems.append(f"ratio spread max/min = {high / low if low else float('inf'):.2f} (> {max_spread})")
    return RatioSummary(
        rounds=judged,
        median=statistics.median(ratios),
        low=low,
        high=high,
        kept=len(kept),
        reliable=not problems,
        why_unreliable="; ".join(problems),
        baseline_rps=statistics.median(r.baseline.requests_per_sec for r in kept),
        subject_rps=statistics.median(r.subject.requests_per_sec for r in kept),
    )


# --- The machine -------------------------------------------------------------------------------------------------


def versions() -> dict[str, str]:
    found = {"python": platform.python_version(), "sqlite": sqlite3.sqlite_version}
    for package in ("starlette", "uvicorn", "jinja2", "sqlalchemy", "sqlmodel", "uvloop", "httptools"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "?"
    return found


def load_average() -> str:
    """The 1/5/15-minute load averages: other work on a shared machine moves every absolute figure."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def print_machine(wrk: str) -> str:
    """Print what the figures depend on (date, CPUs, wrk and library versions, load); returns the load average."""
    load = load_average()
    print(f"{datetime.date.today().isoformat()}  {os.cpu_count()} CPUs  {wrk_version(wrk)}")
    print("  " + "  ".join(f"{name} {version}" for name, version in versions().items()), flush=True)
    print(f"  load average before the run: {load} (other work on the machine skews absolute figures)")
    return load
