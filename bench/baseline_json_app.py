"""The bare baseline for `bench/api.py`: Starlette JSON and form endpoints, no database, no middleware, no i18n.

Each answers with a body of about the size of the portal response it is compared with (`?bytes=N`):

    GET  /json?bytes=N   a JSON list of consent-like objects, serialised on every request
    POST /json?bytes=N   the same, after reading the JSON body, parsing it and checking it is an object
    POST /form?bytes=N   reads a url-encoded form (csrf_token, purpose, action) and answers with the bare HTML page
                         of `baseline_app.py` of N bytes (the htmx toggle's fragment); without `bytes`, a 303

Both POSTs take `rows=K`: before answering, they write K rows in one SQLite transaction and commit it (the bare
"one SQLite commit of the same rows" a portal write is compared with): one executemany INSERT of K rows of the
size of the portal's (a JSON detail, a time, two short codes) into an indexed table, through the standard library's
sqlite3 on the event loop, with the portal's pragmas (WAL, synchronous=NORMAL) on a file in
$BENCH_BASELINE_DB (a temporary file by default).

    uvicorn --app-dir bench baseline_json_app:app
"""

from __future__ import annotations

import functools
import json
import os
import sqlite3
import tempfile
import time
from typing import Any

from baseline_app import build_context, environment
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

MIN_BYTES, MAX_BYTES = 20, 5_000_000
FORM_FIELDS = ("csrf_token", "purpose", "action")


def _entry(n: int) -> dict[str, Any]:
    return {"purpose": f"purpose_{n:04d}", "granted": n % 2 == 0, "changed_at": "2026-11-23T10:15:00Z"}


@functools.cache
def json_data(target_bytes: int) -> dict[str, Any]:
    """An object with as many entries as bring its JSON to about `target_bytes` (at least the empty object)."""
    data: dict[str, Any] = {"customer_id": "C0000001", "restricted": False, "items": []}
    while len(json.dumps(data, separators=(",", ":"))) < target_bytes - 30:
        data["items"].append(_entry(len(data["items"])))
    if not data["items"]:  # small answers (an ingestion count): pad a field instead of adding entries
        data["customer_id"] = "C" * max(1, target_bytes - len(json.dumps(data, separators=(",", ":"))))
    return data


MAX_ROWS = 10_000
_ROW_DETAIL = json.dumps({"purpose": "email_newsletter", "channel": "web", "url": "https://shop.example/p/1000"})


@functools.cache
def _database() -> sqlite3.Connection:
    path = os.environ.get("BENCH_BASELINE_DB") or os.path.join(tempfile.mkdtemp(prefix="bare-commit-"), "bare.db")
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute(
        "CREATE TABLE IF NOT EXISTS written (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL, "
        "occurred_at TEXT NOT NULL, kind TEXT NOT NULL, actor TEXT NOT NULL, detail TEXT)"
    )
    connection.execute("CREATE INDEX IF NOT EXISTS ix_written_customer ON written (customer_id, occurred_at, id)")
    return connection


def _rows(request: Request) -> int:
    raw = request.query_params.get("rows", "0")
    if not raw.isdigit() or int(raw) > MAX_ROWS:
        raise ValueError(f"rows must be between 0 and {MAX_ROWS}")
    return int(raw)


def commit_rows(count: int) -> None:
    """`count` rows written and committed in one transaction (nothing when 0)."""
    if not count:
        return
    connection = _database()
    moment = time.strftime("%Y-%m-%d %H:%M:%S")
    connection.execute("BEGIN")
    connection.executemany(
        "INSERT INTO written (customer_id, occurred_at, kind, actor, detail) VALUES (?, ?, ?, ?, ?)",
        [(n, moment, "consent.granted", "customer:1", _ROW_DETAIL) for n in range(count)],
    )
    connection.execute("COMMIT")


def _size(request: Request) -> int | None:
    raw = request.query_params.get("bytes")
    if raw is None:
        return None
    if not raw.isdigit() or not MIN_BYTES <= int(raw) <= MAX_BYTES:
        raise ValueError(f"bytes must be between {MIN_BYTES} and {MAX_BYTES}")
    return int(raw)


async def json_endpoint(request: Request) -> Response:
    try:
        size = _size(request) or 500
    except ValueError as exc:
        return PlainTextResponse(str(exc), status_code=400)
    if request.method == "POST":
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return PlainTextResponse("send application/json", status_code=415)
        try:
            body = json.loads(await request.body())
        except ValueError:
            return PlainTextResponse("invalid JSON", status_code=400)
        if not isinstance(body, dict):
            return PlainTextResponse("expected a JSON object", status_code=422)
        try:
            commit_rows(_rows(request))
        except ValueError as exc:
            return PlainTextResponse(str(exc), status_code=400)
    return JSONResponse(json_data(size))


async def form_endpoint(request: Request) -> Response:
    try:
        size, rows = _size(request), _rows(request)
    except ValueError as exc:
        return PlainTextResponse(str(exc), status_code=400)
    form = await request.form()
    if any(not form.get(name) for name in FORM_FIELDS):
        return PlainTextResponse("missing field", status_code=400)
    commit_rows(rows)
    if size is None:
        return RedirectResponse(f"/form#purpose-{form['purpose']}", status_code=303)
    context = {**build_context(max(1_000, size)), "path": request.url.path}
    return HTMLResponse(environment.get_template("page.html").render(context))


async def ready(request: Request) -> Response:
    return PlainTextResponse("ok")


app = Starlette(
    routes=[
        Route("/", ready, methods=["GET"]),
        Route("/json", json_endpoint, methods=["GET", "POST"]),
        Route("/form", form_endpoint, methods=["POST"]),
    ]
)
