"""Download my data (issue 6): the streamed archive checked against the database, the request it records, the
emailed link, who may get what, and a client that goes away in the middle."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import re
import time
import zipfile
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from urllib.parse import urlencode

import jsonschema
import pytest
from sqlalchemy import Engine, func, select
from starlette.requests import ClientDisconnect
from starlette.testclient import TestClient

from portal.db import transaction
from portal.models import AuditEvent, PageView, PrivacyRequest, Purchase, PurchaseLine, RequestEvent
from portal.portability.service import send_download_link
from portal.requests.service import file_request
from tests.conftest import TIMEZONE, Clock, SMTPServer, csrf_from, local_path
from tests.factories import add_page_views, add_purchases, make_customer, make_store
from tests.web.helpers import sign_in_by_code, sign_in_by_link

CAMILLE = "camille@example.com"
EMMA = "emma@example.net"
LINK = re.compile(r"https?://\S+/me/download/link\?token=[\w.-]+")


@pytest.fixture
def customers(engine: Engine):  # type: ignore[no-untyped-def]
    camille = make_customer(engine, email=CAMILLE, first_name="Camille", loyalty_number="LOY-123")
    emma = make_customer(
        engine, email=EMMA, first_name="Emma", last_name="Wilson", preferred_language="en", city="Bristol"
    )
    lyon, web = make_store(engine, city="Lyon"), make_store(engine, code="WEB", kind="web", city="")
    add_purchases(engine, camille, lyon, 7)
    add_purchases(engine, camille, web, 5, start=datetime(2025, 6, 30, 21, tzinfo=UTC))  # summer: +02:00
    add_page_views(engine, camille, 120)
    add_purchases(engine, emma, lyon, 2, start=datetime(2024, 2, 1, 9, tzinfo=UTC))
    return camille, emma


def download(client: TestClient, **form: str):  # type: ignore[no-untyped-def]
    page = client.get("/me/download")
    assert page.status_code == 200, page.text
    return client.post("/me/download", data={"csrf_token": csrf_from(page.text), **form})


def open_archive(response) -> zipfile.ZipFile:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.text[:500]
    assert response.headers["content-type"] == "application/zip"
    assert response.headers["cache-control"] == "no-store"
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    assert archive.testzip() is None
    return archive


def schema_validator(archive: zipfile.ZipFile, name: str) -> jsonschema.Draft202012Validator:
    schema = json.loads(archive.read(f"schema/{name}.schema.json"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


class Links(HTMLParser):
    """Every URL-carrying attribute and inline style of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("href", "src", "srcset", "action", "poster", "data", "formaction") and value:
                self.urls.append(value)


def csv_cell(value: object) -> str:
    """How the README says a JSON value is written in the CSV file."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def database_counts(engine: Engine, customer_id: int) -> dict[str, int]:
    with engine.connect() as connection:

        def count(statement) -> int:  # type: ignore[no-untyped-def]
            return int(connection.execute(statement).scalar_one())

        return {
            "purchases": count(select(func.count()).where(Purchase.customer_id == customer_id)),
            "purchase_lines": count(
                select(func.count())
                .select_from(PurchaseLine)
                .join(Purchase, Purchase.id == PurchaseLine.purchase_id)  # type: ignore[arg-type]
                .where(Purchase.customer_id == customer_id)
            ),
            "browsing": count(select(func.count()).where(PageView.customer_id == customer_id)),
        }


def test_the_archive_matches_the_database_its_schemas_and_its_manifest(
    client: TestClient, smtp: SMTPServer, engine: Engine, customers
) -> None:
    camille, _emma = customers
    sign_in_by_code(client, smtp, CAMILLE)
    response = download(client)
    archive = open_archive(response)
    assert response.headers["content-disposition"] == 'attachment; filename="mes-donnees-2026-11-23.zip"'

    names = archive.namelist()
    assert names[0] == "README.txt" and names[1] == "index.html" and names[-1] == "manifest.json"
    manifest = json.loads(archive.read("manifest.json"))
    schema_validator(archive, "manifest").validate(manifest)
    assert [entry["path"] for entry in manifest["files"]] == names[:-1]
    assert manifest["generated_at"] == "2026-11-23T11:00:00+01:00" and manifest["language"] == "fr"
    for entry in manifest["files"]:
        data = archive.read(entry["path"])
        assert len(data) == entry["size"], entry["path"]
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], entry["path"]

    schema_validator(archive, "processing").validate(json.loads(archive.read("processing.json")))
    expected = {**database_counts(engine, camille.id), "profile": 1, "consent_events": 1}
    rows = {entry["path"]: entry["rows"] for entry in manifest["files"]}
    datasets = sorted({name.split("/")[1].rsplit(".", 1)[0] for name in names if name.startswith("data/")})
    assert datasets == sorted(
        ["profile", "purchases", "purchase_lines", "browsing", "consent_events", "requests", "request_events"]
        + ["profile_changes"]
    )
    for dataset in datasets:
        document = json.loads(archive.read(f"data/{dataset}.json").decode("utf-8"))
        schema_validator(archive, dataset).validate(document)
        table = list(csv.DictReader(io.StringIO(archive.read(f"data/{dataset}.csv").decode("utf-8"), newline="")))
        json_rows = [document] if isinstance(document, dict) else document
        assert len(table) == len(json_rows) == rows[f"data/{dataset}.json"] == rows[f"data/{dataset}.csv"], dataset
        if dataset in expected:
            assert len(json_rows) == expected[dataset], dataset
        schema = json.loads(archive.read(f"schema/{dataset}.schema.json"))
        properties = (schema.get("items") or schema)["properties"]
        for row, record in zip(table, json_rows, strict=True):
            assert list(row) == list(properties) == list(record), dataset
            for field, value in record.items():  # the CSV says the same as the JSON, cell by cell
                assert row[field] == csv_cell(value), (dataset, field)

    purchases = json.loads(archive.read("data/purchases.json"))
    assert purchases[0]["purchased_at"] == "2025-01-01T10:00:00+01:00"  # winter in Paris
    assert any(p["purchased_at"] == "2025-06-30T23:00:00+02:00" for p in purchases)  # summer
    assert {p["total"] for p in purchases} == {"42.88"} and {p["currency"] for p in purchases} == {"EUR"}
    lines = json.loads(archive.read("data/purchase_lines.json"))
    assert {(line["unit_price"], line["quantity"], line["line_total"]) for line in lines} == {
        ("24.90", 1, "24.90"),
        ("8.99", 2, "17.98"),
    }
    profile = json.loads(archive.read("data/profile.json"))
    assert profile["email"] == CAMILLE and profile["loyalty_number"] == "LOY-123"


def test_index_html_is_self_contained_and_in_the_customer_language(
    client: TestClient, smtp: SMTPServer, customers
) -> None:
    """Decision: index.html carries no absolute URL at all in src/href (no http(s)://, no //host); the retailer's
    website and the CNIL are named as plain text. Relative links to the archive's own files and mailto: are fine."""
    sign_in_by_code(client, smtp, EMMA)
    archive = open_archive(_download_in(client, "en"))
    html = archive.read("index.html").decode("utf-8")
    assert '<html lang="en">' in html
    parser = Links()
    parser.feed(html)
    assert parser.urls, "the report links to its own files"
    for url in parser.urls:
        assert url.startswith(("#", "data/", "mailto:")) or url in ("processing.json", "manifest.json", "README.txt")
        assert "//" not in url, url
    assert "link" not in parser.tags and "script" not in parser.tags and "img" not in parser.tags
    assert not re.search(r"url\(|@import", html)
    assert "www.cnil.fr" in html  # named, not linked
    # English formatting, Emma's two purchases of €42.88
    assert "€85.76" in html and "Emma" in html and "Camille" not in html


def _download_in(client: TestClient, language: str):  # type: ignore[no-untyped-def]
    headers = {"accept-language": language}
    page = client.get("/me/download", headers=headers)
    return client.post("/me/download", data={"csrf_token": csrf_from(page.text)}, headers=headers)


def test_french_archive_has_a_french_report_and_both_languages_in_the_readme(
    client: TestClient, smtp: SMTPServer, customers
) -> None:
    sign_in_by_code(client, smtp, CAMILLE)
    response = _download_in(client, "fr")
    archive = open_archive(response)
    html = archive.read("index.html").decode("utf-8")
    assert '<html lang="fr">' in html
    assert "514,56\u00a0€" in html or "514,56 €" in html  # 12 purchases of 42,88 €, as a French reader writes it
    readme = archive.read("README.txt").decode("utf-8")
    assert readme.index("[fr]") < readme.index("[en]")  # the customer's language first, then the other
    for name in ("purchased_at", "unit_price", "viewed_at", "wording_hash", "retailer_customer_id"):
        assert readme.count(f"{name}:") == 2, name  # documented in each language


def test_each_download_is_a_completed_request_with_its_timeline_and_audit(
    client: TestClient, smtp: SMTPServer, engine: Engine, customers
) -> None:
    camille, _emma = customers
    sign_in_by_code(client, smtp, CAMILLE)
    manifest = json.loads(open_archive(download(client)).read("manifest.json"))
    with transaction(engine) as session:
        request = session.scalars(select(PrivacyRequest).where(PrivacyRequest.customer_id == camille.id)).one()
        assert (request.reference, request.type, request.channel) == (
            manifest["request_reference"],
            "portability",
            "web",
        )
        assert request.status == "completed" and request.closed_at is not None and request.outcome
        kinds = session.scalars(
            select(RequestEvent.kind).where(RequestEvent.request_id == request.id).order_by(RequestEvent.id)
        ).all()
        assert kinds == ["received", "completed"]
        actions = session.scalars(
            select(AuditEvent.action).where(AuditEvent.target == f"request:{request.reference}")
        ).all()
        assert {"request.received", "request.completed", "portability.archive_delivered"} <= set(actions)
        delivered = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "portability.archive_delivered")
        ).one()
        assert delivered.actor == f"customer:{camille.id}" and CAMILLE not in json.dumps(delivered.detail)
    assert request.reference in client.get("/me/requests").text


def test_download_needs_a_signed_in_customer_and_the_csrf_token(client: TestClient, customers) -> None:
    assert client.get("/me/download", follow_redirects=False).headers["location"] == "/signin"
    page = client.get("/signin")
    refused = client.post("/me/download", data={"csrf_token": csrf_from(page.text)}, follow_redirects=False)
    assert refused.status_code == 303 and refused.headers["location"] == "/signin"
    assert client.post("/me/download", data={"csrf_token": "forged"}).status_code == 403


def test_another_customer_gets_only_their_own_data(
    client: TestClient, smtp: SMTPServer, engine: Engine, customers
) -> None:
    camille, emma = customers
    sign_in_by_code(client, smtp, EMMA)
    archive = open_archive(download(client))
    everything = b"".join(archive.read(name) for name in archive.namelist())
    assert CAMILLE.encode() not in everything and b"LOY-123" not in everything
    assert json.loads(archive.read("data/profile.json"))["customer_id"] == emma.id
    assert len(json.loads(archive.read("data/purchases.json"))) == 2
    assert json.loads(archive.read("data/browsing.json")) == []


# --- The emailed link --------------------------------------------------------------------------------------------


def _send_link(app, engine: Engine, customer_id: int, clock: Clock) -> str:  # type: ignore[no-untyped-def]
    with transaction(engine) as session:
        filed = file_request(
            session,
            customer_id=customer_id,
            type="access",
            channel="store",
            now=clock(),
            actor="staff:1",
            timezone=TIMEZONE,
        )
        send_download_link(
            session,
            customer_id=customer_id,
            reference=filed.reference,
            actor="staff:1",
            now=clock(),
            composer=app.state.portal.composer,
            settings=app.state.portal.settings,
        )
    app.state.worker.notify()  # written through the test's own engine, which the app's worker does not watch
    return filed.reference


def test_the_emailed_link_signs_in_first_then_downloads_and_completes_the_request(
    app, client: TestClient, smtp: SMTPServer, engine: Engine, clock: Clock, customers
) -> None:
    camille, _emma = customers
    reference = _send_link(app, engine, camille.id, clock)
    email = smtp.wait_for(CAMILLE)
    assert reference in email.subject
    link = LINK.search(email.text)
    assert link, email.text
    path = local_path(link.group(0))

    # Not signed in: sign in first (the link waits in a cookie), then come back to it.
    first = client.get(path, follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"] == "/signin"
    signed_in = sign_in_by_link(client, smtp, CAMILLE, count=2)
    assert signed_in.headers["location"] == path
    page = client.get(path)
    assert page.status_code == 200 and reference in page.text
    token = path.split("token=", 1)[1]
    response = client.post("/me/download", data={"csrf_token": csrf_from(page.text), "token": token})
    manifest = json.loads(open_archive(response).read("manifest.json"))
    assert manifest["request_reference"] == reference

    with transaction(engine) as session:
        request = session.scalars(select(PrivacyRequest).where(PrivacyRequest.reference == reference)).one()
        assert request.status == "completed"
        assert session.scalar(select(func.count()).select_from(PrivacyRequest)) == 1  # no second request filed
        actions = set(session.scalars(select(AuditEvent.action).where(AuditEvent.target == f"request:{reference}")))
        assert {"portability.link_sent", "portability.link_used", "portability.archive_delivered"} <= actions
    # The link still works until it expires (the request is already completed: nothing more to complete).
    again = client.post("/me/download", data={"csrf_token": csrf_from(page.text), "token": token})
    assert again.status_code == 200


def test_the_link_expires_after_seven_days_and_refuses_tampering(
    app, client: TestClient, smtp: SMTPServer, engine: Engine, clock: Clock, customers
) -> None:
    camille, _emma = customers
    _send_link(app, engine, camille.id, clock)
    path = local_path(LINK.search(smtp.wait_for(CAMILLE).text).group(0))  # type: ignore[union-attr]
    clock.advance(days=6, hours=23)
    sign_in_by_code(client, smtp, CAMILLE, count=2)
    still_valid = client.get(path, follow_redirects=False)
    assert still_valid.status_code == 200 and 'name="token"' in still_valid.text
    tampered = path[:-3] + ("abc" if not path.endswith("abc") else "xyz")
    assert client.get(tampered).status_code == 400
    assert client.get("/me/download/link?" + urlencode({"token": "x" * 5000})).status_code == 400
    clock.advance(hours=1, minutes=1)
    sign_in_by_code(client, smtp, CAMILLE, count=3)  # the 15-minute idle timeout ended the first session
    expired = client.get(path, follow_redirects=False)
    assert expired.status_code == 410 and "7" in expired.text
    page = client.get("/me/download")
    assert page.status_code == 200 and "/signin" not in str(page.url)
    refused = client.post("/me/download", data={"csrf_token": csrf_from(page.text), "token": path.split("=", 1)[1]})
    assert refused.status_code == 410 and refused.headers["content-type"].startswith("text/html")


def test_another_customer_cannot_use_the_link(
    app, client: TestClient, smtp: SMTPServer, engine: Engine, clock: Clock, customers
) -> None:
    camille, _emma = customers
    reference = _send_link(app, engine, camille.id, clock)
    path = local_path(LINK.search(smtp.wait_for(CAMILLE).text).group(0))  # type: ignore[union-attr]
    sign_in_by_code(client, smtp, EMMA)
    assert client.get(path, follow_redirects=False).status_code == 403
    page = client.get("/me/download")
    refused = client.post("/me/download", data={"csrf_token": csrf_from(page.text), "token": path.split("=", 1)[1]})
    assert refused.status_code == 403 and "PK" not in refused.text[:2]
    with transaction(engine) as session:
        request = session.scalars(select(PrivacyRequest).where(PrivacyRequest.reference == reference)).one()
        assert request.status == "received"
        assert session.scalar(select(func.count()).where(AuditEvent.action == "portability.link_used")) == 0


# --- A client that goes away ------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["disconnect_message", "send_fails"])
def test_a_client_that_disconnects_stops_the_archive_and_the_request_is_cancelled(
    app, client: TestClient, smtp: SMTPServer, engine: Engine, clock: Clock, customers, how: str
) -> None:
    """The ASGI conversation a server has with the app, cut after the first chunk of the body, like a browser
    whose user cancels the download: the server either says so (`http.disconnect`, ASGI spec 2.3, uvicorn) or
    its `send` fails (spec 2.4)."""
    camille, _emma = customers
    start = datetime(2026, 2, 1, tzinfo=UTC)
    with engine.begin() as connection:  # enough rows for several chunks, inserted in one go
        connection.execute(
            PageView.__table__.insert(),  # type: ignore[attr-defined]
            [
                {
                    "customer_id": camille.id,
                    "viewed_at": start + timedelta(seconds=i),
                    "url": f"https://www.maison-aubepine.example/p/{i}?{hashlib.sha256(str(i).encode()).hexdigest()}",
                    "title": f"Produit {i}",
                }
                for i in range(30_000)
            ],
        )
    sign_in_by_code(client, smtp, CAMILLE)
    page = client.get("/me/download")
    body = urlencode({"csrf_token": csrf_from(page.text)}).encode()
    cookie = "; ".join(f"{name}={value}" for name, value in client.cookies.items())

    sent: list[dict] = []
    first_chunk = asyncio.Event()

    async def run() -> None:
        messages = [{"type": "http.request", "body": body, "more_body": False}]

        async def receive() -> dict:
            if messages:
                return messages.pop(0)
            await first_chunk.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict) -> None:
            sent.append(message)
            if message["type"] == "http.response.body" and message.get("body"):
                if how == "send_fails" and first_chunk.is_set():
                    raise OSError("connection reset by peer")
                first_chunk.set()
                await asyncio.sleep(0.05)  # a slow network: the disconnect arrives before the next chunk

        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3" if how == "disconnect_message" else "2.4"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/me/download",
            "raw_path": b"/me/download",
            "query_string": b"",
            "root_path": "",
            "headers": [
                (b"host", b"testserver"),
                (b"content-type", b"application/x-www-form-urlencoded"),
                (b"content-length", str(len(body)).encode()),
                (b"cookie", cookie.encode()),
            ],
            "client": ("127.0.0.1", 50000),
            "server": ("testserver", 80),
            "state": {},
        }
        try:
            await app(scope, receive, send)
        except ClientDisconnect:
            assert how == "send_fails"

    asyncio.run(run())
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 200
    bodies = [m for m in sent if m["type"] == "http.response.body"]
    assert not any(m.get("more_body") is False for m in bodies), "the archive must not have been finished"
    streamed = sum(len(m.get("body", b"")) for m in bodies)

    # What a complete archive weighs, for comparison: the interrupted one stopped far before.
    whole = open_archive(download(client))
    assert streamed < sum(info.compress_size for info in whole.infolist()) / 2
    with transaction(engine) as session:
        first, second = session.scalars(
            select(PrivacyRequest).where(PrivacyRequest.customer_id == camille.id).order_by(PrivacyRequest.id)
        ).all()
        assert (first.status, second.status) == ("cancelled", "completed")
        interrupted = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "portability.download_interrupted")
        ).one()
        assert interrupted.target == f"request:{first.reference}" and interrupted.detail["bytes"] == streamed
    # The cursor and its connection were given back. The app's outbox worker (sending this test's emails from the
    # client's thread) may hold a connection for a moment: a leaked one would stay out for good.
    pool = app.state.portal.engine.pool
    deadline = time.monotonic() + 5
    while pool.checkedout() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pool.checkedout() == 0


def test_a_store_tablet_never_receives_an_archive(client: TestClient, engine: Engine, clock: Clock, customers) -> None:
    """A shared tablet would keep the file for the next customer: the tablet session gets a refusal."""
    from itsdangerous import Signer

    from portal.identity.keys import keyed_hash
    from portal.identity.sessions import open_session

    camille, _emma = customers
    settings = client.app.state.portal.settings  # type: ignore[attr-defined]
    with transaction(engine) as session:
        raw_id = open_session(session, settings=settings, kind="tablet", customer_id=camille.id, now=clock())
    client.cookies.set("portal_session", Signer(settings.secret_key, salt="portal.session").sign(raw_id).decode())
    assert client.get("/me").status_code == 200  # the tablet session itself works
    page = client.get("/me/download")  # the page offers the emailed link instead (tests/web/store)
    assert page.status_code == 200 and 'action="/me/download"' not in page.text
    csrf = keyed_hash(settings.secret_key, "csrf", raw_id)
    refused = client.post("/me/download", data={"csrf_token": csrf})
    assert refused.status_code == 403 and refused.headers["content-type"].startswith("text/html")
    with transaction(engine) as session:
        assert session.scalar(select(func.count()).select_from(PrivacyRequest)) == 0
