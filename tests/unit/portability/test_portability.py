"""The portability archive without HTTP: formats, the stream itself, the datasets against their schemas and the
README, the download link, and how a download is recorded."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import jinja2
import pytest
from sqlalchemy import Engine, select

from portal.consent.register import PurposeRegister, load_register
from portal.db import transaction
from portal.mail.compose import EmailComposer
from portal.models import AuditEvent, OutboxMessage, PrivacyRequest, RequestEvent
from portal.portability import service
from portal.portability.archive import (
    SCHEMA_NAMES,
    SCHEMAS_DIR,
    ArchiveOrder,
    ArchiveProgress,
    archive_chunks,
    archive_filename,
)
from portal.portability.datasets import DATASETS, amount, instant
from portal.requests.service import file_request
from portal.retailer import load_retailer
from portal.settings import Settings
from portal.web.templating import make_environment
from tests.conftest import TIMEZONE
from tests.factories import add_page_views, add_purchases, make_customer, make_store

NOW = datetime(2026, 11, 23, 10, tzinfo=UTC)
PARIS = ZoneInfo("Europe/Paris")


@pytest.fixture
def register(settings: Settings) -> PurposeRegister:
    return load_register(settings.purposes_file)


@pytest.fixture
def env(settings: Settings, register: PurposeRegister) -> jinja2.Environment:
    env = make_environment(settings=settings, retailer=load_retailer(settings.retailer_file))
    env.globals["register"] = register
    return env


def build(engine: Engine, env, register, settings, customer_id: int, **options) -> tuple[list[bytes], ArchiveProgress]:  # type: ignore[no-untyped-def]
    progress = ArchiveProgress()
    order = ArchiveOrder(
        customer_id=customer_id, request_reference="R-7K2Q-9XMD", locale="en", generated_at=NOW, timezone=TIMEZONE
    )
    chunks = list(
        archive_chunks(
            engine,
            order,
            env=env,
            register=register,
            retailer=load_retailer(settings.retailer_file),
            progress=progress,
            **options,
        )
    )
    return chunks, progress


# --- Formats ------------------------------------------------------------------------------------------------------


def test_amounts_are_exact_decimal_strings() -> None:
    assert [amount(c) for c in (0, 5, 99, 100, 2490, 123456789, -1999)] == [
        "0.00",
        "0.05",
        "0.99",
        "1.00",
        "24.90",
        "1234567.89",
        "-19.99",
    ]
    assert amount(None) is None


def test_instants_carry_the_paris_offset_of_their_own_date() -> None:
    assert instant(datetime(2026, 1, 15, 12, tzinfo=UTC), PARIS) == "2026-01-15T13:00:00+01:00"
    assert instant(datetime(2026, 7, 15, 12, 30, 5, 999, tzinfo=UTC), PARIS) == "2026-07-15T14:30:05+02:00"
    # The night the clocks go forward: 01:30 UTC is 03:30 in Paris, already summer time.
    assert instant(datetime(2026, 3, 29, 1, 30, tzinfo=UTC), PARIS) == "2026-03-29T03:30:00+02:00"
    assert instant(None, PARIS) is None


def test_the_file_name_is_localised_and_dated() -> None:
    day = datetime(2026, 11, 23).date()
    assert archive_filename("fr", day) == "mes-donnees-2026-11-23.zip"
    assert archive_filename("en", day) == "my-data-2026-11-23.zip"


def test_every_dataset_has_a_schema_with_the_same_fields_in_the_same_order() -> None:
    assert {p.name.removesuffix(".schema.json") for p in SCHEMAS_DIR.glob("*.schema.json")} == set(SCHEMA_NAMES)
    for dataset in DATASETS:
        schema = json.loads((SCHEMAS_DIR / f"{dataset.name}.schema.json").read_text(encoding="utf-8"))
        rows = schema if dataset.single else schema["items"]
        assert list(rows["properties"]) == list(dataset.field_names), dataset.name
        assert rows["required"] == list(dataset.field_names) and rows["additionalProperties"] is False


# --- The stream ---------------------------------------------------------------------------------------------------


def test_the_archive_streams_in_chunks_and_reads_back_whole(engine: Engine, env, register, settings) -> None:
    camille = make_customer(engine, first_name="Camille")
    add_purchases(engine, camille, make_store(engine), 40)
    add_page_views(engine, camille, 2000)
    chunks, progress = build(engine, env, register, settings, camille.id, chunk_bytes=16 * 1024)
    sent = [chunk for chunk in chunks if chunk]
    assert len(sent) > 2, "several chunks (zlib releases its output in bursts)"
    # Between them, empty chunks end the slices of a few hundred rows in which the archive is made, so that the web
    # view can let other requests run (portability/views.py): a slice ends every 500 rows of each file.
    assert len(chunks) > len(sent) and len(chunks) >= 2 * (2000 // 500)
    assert progress.finished and progress.bytes_out == sum(map(len, chunks))
    archive = zipfile.ZipFile(io.BytesIO(b"".join(chunks)))
    assert archive.testzip() is None
    # Streamed entries: sizes and CRC travel in a data descriptor after the data (bit 3 of the flags).
    assert all(info.flag_bits & 0x08 for info in archive.infolist())
    manifest = json.loads(archive.read("manifest.json"))
    assert [f["path"] for f in manifest["files"]] == [f.path for f in progress.files][: len(manifest["files"])]
    rows = {f["path"]: f["rows"] for f in manifest["files"]}
    assert rows["data/browsing.json"] == rows["data/browsing.csv"] == 2000
    assert rows["data/purchase_lines.csv"] == 80 and progress.rows >= 2 * (2000 + 40 + 80)
    browsing = json.loads(archive.read("data/browsing.json"))
    assert browsing[0]["viewed_at"] == "2026-01-01T10:00:00+01:00" and browsing[-1]["url"].endswith("/p/1999")


def test_index_html_lists_recent_rows_and_says_where_the_rest_is(engine: Engine, env, register, settings) -> None:
    camille = make_customer(engine, first_name="Camille")
    add_page_views(engine, camille, 30)
    chunks, _ = build(engine, env, register, settings, camille.id, report_rows=10)
    html = zipfile.ZipFile(io.BytesIO(b"".join(chunks))).read("index.html").decode()
    assert html.count('class="url"') == 10
    assert "The 10 most recent of your 30 page views" in html and "data/browsing.csv" in html


def test_closing_the_stream_early_gives_the_connection_back(engine: Engine, env, register, settings) -> None:
    camille = make_customer(engine)
    add_page_views(engine, camille, 3000)
    progress = ArchiveProgress()
    order = ArchiveOrder(
        customer_id=camille.id, request_reference="R-7K2Q-9XMD", locale="fr", generated_at=NOW, timezone=TIMEZONE
    )
    chunks = archive_chunks(
        engine,
        order,
        env=env,
        register=register,
        retailer=load_retailer(settings.retailer_file),
        progress=progress,
        chunk_bytes=4096,
    )
    next(chunks)
    next(chunks)
    assert engine.pool.checkedout() == 1  # type: ignore[attr-defined]
    chunks.close()
    assert engine.pool.checkedout() == 0 and not progress.finished  # type: ignore[attr-defined]


def test_a_customer_that_does_not_exist_gets_no_archive(engine: Engine, env, register, settings) -> None:
    with pytest.raises(LookupError):
        build(engine, env, register, settings, 999_999)


# --- README.txt --------------------------------------------------------------------------------------------------


def test_the_readme_documents_every_field_in_both_languages(engine: Engine, env, register, settings) -> None:
    camille = make_customer(engine)
    chunks, _ = build(engine, env, register, settings, camille.id)
    readme = zipfile.ZipFile(io.BytesIO(b"".join(chunks))).read("README.txt").decode()
    first, second = readme.split("=" * 79)
    assert "[en]" in first and "[fr]" in second
    for dataset in DATASETS:
        for part in (first, second):
            assert f"data/{dataset.name}.csv" in part
            for name in dataset.field_names:
                assert f"    {name}: " in part, (dataset.name, name)


# --- The download link -------------------------------------------------------------------------------------------


def test_a_link_token_names_its_request_until_it_expires(settings: Settings) -> None:
    expires = NOW + timedelta(days=7)
    token = service.link_token(settings.secret_key, reference="R-7K2Q-9XMD", expires_at=expires)
    assert service.read_link_token(settings.secret_key, token, now=expires - timedelta(seconds=1)) == "R-7K2Q-9XMD"
    for now, reason in ((expires, "expired"), (NOW, None)):
        if reason:
            with pytest.raises(service.LinkRejected) as rejected:
                service.read_link_token(settings.secret_key, token, now=now)
            assert rejected.value.reason == reason
    for forged in (token[:-2] + "xx", "", "abc", token + "."):
        with pytest.raises(service.LinkRejected) as rejected:
            service.read_link_token(settings.secret_key, forged, now=NOW)
        assert rejected.value.reason == "invalid"
    with pytest.raises(service.LinkRejected):  # another server key
        service.read_link_token("another-secret-key-0123456789abcdef", token, now=NOW)


def test_sending_a_link_queues_the_email_and_leaves_a_trace(
    engine: Engine, settings: Settings, composer: EmailComposer
) -> None:
    camille = make_customer(engine, email="camille@example.com", preferred_language="en")
    with transaction(engine) as session:
        filed = file_request(
            session, customer_id=camille.id, type="access", channel="store", now=NOW, actor="staff:3", timezone=TIMEZONE
        )
        service.send_download_link(
            session,
            customer_id=camille.id,
            reference=filed.reference,
            actor="staff:3",
            now=NOW,
            composer=composer,
            settings=settings,
        )
    with transaction(engine) as session:
        message = session.scalars(select(OutboxMessage)).one()
        assert message.topic == "download-link" and message.payload["to"] == "camille@example.com"
        assert "/me/download/link?token=" in message.payload["text"] and filed.reference in message.payload["subject"]
        request = session.scalars(select(PrivacyRequest)).one()
        assert request.version == 2
        assert session.scalars(select(RequestEvent.kind).order_by(RequestEvent.id)).all() == ["received", "message"]
        sent = session.scalars(select(AuditEvent).where(AuditEvent.action == "portability.link_sent")).one()
        assert sent.actor == "staff:3" and sent.target == f"request:{filed.reference}"
        assert "camille" not in json.dumps(sent.detail)


def test_a_link_is_refused_for_another_customer_or_another_kind_of_request(
    engine: Engine, settings: Settings, composer: EmailComposer
) -> None:
    camille, emma = make_customer(engine), make_customer(engine)
    with transaction(engine) as session:
        erasure = file_request(
            session, customer_id=camille.id, type="erasure", channel="web", now=NOW, actor="x", timezone=TIMEZONE
        )
        access = file_request(
            session, customer_id=camille.id, type="access", channel="web", now=NOW, actor="x", timezone=TIMEZONE
        )
    for customer_id, reference in ((camille.id, erasure.reference), (emma.id, access.reference), (camille.id, "R-")):
        with transaction(engine) as session, pytest.raises(service.DownloadLinkRefused):
            service.send_download_link(
                session,
                customer_id=customer_id,
                reference=reference,
                actor="staff:1",
                now=NOW,
                composer=composer,
                settings=settings,
            )


# --- Recording a download ------------------------------------------------------------------------------------------


def test_an_interrupted_download_cancels_its_request_and_a_finished_one_completes_it(engine: Engine) -> None:
    camille = make_customer(engine)
    outcomes = {}
    for finished in (False, True):
        with transaction(engine) as session:
            start = service.start_download(session, customer_id=camille.id, now=NOW, timezone=TIMEZONE)
        with transaction(engine) as session:
            progress = ArchiveProgress(bytes_out=1234, finished=finished)
            service.finish_download(session, start=start, customer_id=camille.id, now=NOW, progress=progress)
        outcomes[finished] = start.reference
    with transaction(engine) as session:
        statuses = {
            r.reference: r.status
            for r in session.scalars(select(PrivacyRequest).where(PrivacyRequest.type == "portability"))
        }
        assert statuses == {outcomes[False]: "cancelled", outcomes[True]: "completed"}
        actions = session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()
        assert "portability.download_interrupted" in actions and "portability.archive_delivered" in actions


def test_a_link_download_keeps_its_request_open_when_interrupted(engine: Engine) -> None:
    camille = make_customer(engine)
    with transaction(engine) as session:
        filed = file_request(
            session, customer_id=camille.id, type="access", channel="store", now=NOW, actor="x", timezone=TIMEZONE
        )
    with transaction(engine) as session:
        start = service.start_download(
            session, customer_id=camille.id, now=NOW, link_reference=filed.reference, timezone=TIMEZONE
        )
        assert start.via_link and start.reference == filed.reference
        service.finish_download(session, start=start, customer_id=camille.id, now=NOW, progress=ArchiveProgress())
    with transaction(engine) as session:
        assert session.scalars(select(PrivacyRequest.status)).one() == "received"


def test_a_download_cut_off_by_a_crash_has_its_request_closed_by_housekeeping(engine: Engine) -> None:
    """No finish_download ever runs when the process dies mid-archive: the sweep closes the request later, and
    leaves alone the requests that wait on an emailed link."""
    camille = make_customer(engine)
    with transaction(engine) as session:
        crashed = service.start_download(session, customer_id=camille.id, now=NOW, timezone=TIMEZONE)
        waiting = file_request(
            session, customer_id=camille.id, type="portability", channel="store", now=NOW, actor="x", timezone=TIMEZONE
        )
    with transaction(engine) as session:
        assert service.close_abandoned_downloads(session, now=NOW + timedelta(minutes=30)) == 0  # may still run
    with transaction(engine) as session:
        assert service.close_abandoned_downloads(session, now=NOW + service.ABANDONED_AFTER + timedelta(seconds=1)) == 1
    with transaction(engine) as session:
        statuses = dict(session.execute(select(PrivacyRequest.reference, PrivacyRequest.status)).all())
        assert statuses == {crashed.reference: "cancelled", waiting.reference: "received"}
        assert "portability.download_abandoned" in session.scalars(select(AuditEvent.action)).all()


def test_an_erased_customer_cannot_start_a_download(engine: Engine) -> None:
    gone = make_customer(engine, erased_at=NOW)
    with transaction(engine) as session, pytest.raises(service.CustomerNotFound):
        service.start_download(session, customer_id=gone.id, now=NOW, timezone=TIMEZONE)


def test_the_english_archive_speaks_english_the_dpo_s_title_and_the_portal_s_own_texts(
    engine: Engine, env, register, settings
) -> None:
    from portal.labels import system_note
    from portal.requests import workflow

    camille = make_customer(engine, first_name="Camille", preferred_language="fr")
    with transaction(engine) as session:
        filed = file_request(
            session, customer_id=camille.id, type="portability", channel="web", now=NOW - timedelta(days=1),
            actor=f"customer:{camille.id}", timezone=TIMEZONE,
        )  # fmt: skip
        workflow.close_own_download(
            session, reference=filed.reference, actor=f"customer:{camille.id}", now=NOW, finished=True,
            outcome=system_note("downloaded"),
        )  # fmt: skip
    chunks, _ = build(engine, env, register, settings, camille.id)
    archive = zipfile.ZipFile(io.BytesIO(b"".join(chunks)))
    html = archive.read("index.html").decode()
    assert "Data Protection Officer" in html and "Délégué" not in html
    assert "You downloaded the archive of all your data." in html and "system:" not in html
    assert json.loads(archive.read("processing.json"))["dpo"]["name"] == "Data Protection Officer"
    requests = json.loads(archive.read("data/requests.json"))
    assert requests[0]["outcome"] == "You downloaded the archive of all your data."


def test_archive_csvs_neutralise_spreadsheet_formulas(engine: Engine, env, register, settings) -> None:
    """CSV injection: a page title sent by a website reaches the archive's CSV as text, never as a formula."""
    from portal.browsing.records import record_page_view

    camille = make_customer(engine, first_name="Camille")
    with transaction(engine) as session:
        record_page_view(
            session,
            customer_id=camille.id,
            viewed_at=datetime(2026, 11, 2, 10, tzinfo=UTC),
            url="https://shop.example/p/1",
            title='=HYPERLINK("https://evil.example","Offre")',
            timezone=TIMEZONE,
        )
    chunks, _ = build(engine, env, register, settings, camille.id)
    archive = zipfile.ZipFile(io.BytesIO(b"".join(chunks)))
    browsing = archive.read("data/browsing.csv").decode()
    assert """'=HYPERLINK(""https://evil.example"",""Offre"")""" in browsing
    assert ',"=HYPERLINK' not in browsing and ",=HYPERLINK" not in browsing
    # The JSON copy keeps the value exactly as it was sent.
    assert json.loads(archive.read("data/browsing.json"))[0]["title"].startswith("=HYPERLINK")
