"""The portability archive, written as a stream: one ZIP, produced front to back in chunks of a few hundred KB.

The standard library's zipfile writes to a sink that cannot seek by putting each entry's CRC and sizes in a data
descriptor after its data, so nothing is ever rewritten and nothing waits for the whole archive: the first chunk
(README.txt and index.html) leaves while the database is still being read. SHA-256, size and row count of each
file are computed as it is written, and manifest.json, which lists them, is the last entry.

`archive_chunks` is a plain generator doing blocking work (database, compression), in slices: after every batch of
rows it yields, an empty chunk when no compressed output is ready yet. The web view runs it one slice at a time and
lets the other requests on the worker run between slices (one download slowed everyone on the worker by a third,
issue 17), and closes it when the client goes away, which closes the cursor and the connection.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import zipfile
from collections.abc import Iterable, Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from sqlalchemy import Connection, Engine

from portal.consent.register import PurposeRegister
from portal.csvfile import SafeWriter
from portal.errors import CustomerNotFound
from portal.i18n import SUPPORTED_LOCALES, using_locale
from portal.portability import report as reports
from portal.portability.datasets import DATASETS, PROFILE, Dataset, Subject
from portal.retailer import Retailer

FORMAT_VERSION = "1.0"
SCHEMAS_DIR = Path(__file__).resolve().parent / "schemas"
SCHEMA_NAMES = (*(dataset.name for dataset in DATASETS), "processing", "manifest")
# A chunk leaves once this much compressed data is waiting: a few hundred KB keeps memory flat and thread hand-offs
# rare (a 100 MB archive is ~400 hand-offs).
CHUNK_BYTES = 256 * 1024
# Rows per slice: the generator yields after each, and a download on the event loop gives the other requests their
# turn there. 500 rows took ~8 ms and cost a loaded worker's other customers 16% of their requests; 100 rows take
# ~1.6 ms (bench/archive_neighbours.py, issue 17).
ROWS_PER_WRITE = 100
# zlib level 1: about three times faster than the default 6 on these files, for archives ~20% larger (bench/).
COMPRESSLEVEL = 1
# File names are ASCII on purpose (every browser and unzip tool copes) and not translated through the catalogue.
ARCHIVE_NAMES = {"fr": "mes-donnees", "en": "my-data"}
MEDIA_TYPES = {".json": "application/json", ".csv": "text/csv", ".html": "text/html", ".txt": "text/plain"}

_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def archive_filename(locale: str, day: date) -> str:
    """mes-donnees-2026-11-23.zip / my-data-2026-11-23.zip"""
    return f"{ARCHIVE_NAMES.get(locale, ARCHIVE_NAMES['en'])}-{day.isoformat()}.zip"


@dataclasses.dataclass(frozen=True)
class ArchiveOrder:
    """Whose archive, answering which request, in which language, as of when."""

    customer_id: int
    request_reference: str
    locale: str
    generated_at: datetime
    timezone: str

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclasses.dataclass(frozen=True)
class FileRecord:
    path: str
    media_type: str
    size: int  # bytes before compression, i.e. the size of the extracted file
    sha256: str
    rows: int | None  # data files only


@dataclasses.dataclass
class ArchiveProgress:
    """What was written so far; `finished` once manifest.json and the ZIP's central directory are out."""

    files: list[FileRecord] = dataclasses.field(default_factory=list)
    bytes_out: int = 0
    finished: bool = False

    @property
    def rows(self) -> int:
        return sum(record.rows or 0 for record in self.files)


class _Sink:
    """Where zipfile writes: a buffer drained chunk by chunk. No `seek`, so zipfile streams (data descriptors)."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.position = 0

    def write(self, data: bytes) -> int:
        self.buffer += data
        self.position += len(data)
        return len(data)

    def tell(self) -> int:
        return self.position

    def flush(self) -> None:
        pass


class _Entry:
    """One file being written: counts its bytes and rows and hashes them on the way into the compressor."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle
        self._sha = hashlib.sha256()
        self.size = 0
        self.rows = 0

    def write(self, data: bytes) -> None:
        self._sha.update(data)
        self.size += len(data)
        self._handle.write(data)

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()


class ZipStream:
    """A ZIP archive produced front to back; `take()` hands over what is ready to send."""

    def __init__(self, *, date_time: datetime, compresslevel: int = COMPRESSLEVEL) -> None:
        self._sink = _Sink()
        self._zip = zipfile.ZipFile(self._sink, "w", compression=zipfile.ZIP_DEFLATED)  # type: ignore[call-overload]  # typeshed asks for close(), never called on a file zipfile did not open
        self._date_time = date_time.timetuple()[:6]
        self._compresslevel = compresslevel
        self.files: list[FileRecord] = []

    @contextlib.contextmanager
    def open(self, path: str, *, rows: bool = False) -> Iterator[_Entry]:
        info = zipfile.ZipInfo(path, date_time=self._date_time)
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o644 << 16
        # Python 3.13 renamed the attribute zipfile reads the level from.
        setattr(info, "compress_level" if hasattr(info, "compress_level") else "_compresslevel", self._compresslevel)
        with self._zip.open(info, "w") as handle:
            entry = _Entry(handle)
            yield entry
        media_type = MEDIA_TYPES.get(Path(path).suffix, "application/octet-stream")
        self.files.append(FileRecord(path, media_type, entry.size, entry.sha256, entry.rows if rows else None))

    @property
    def pending(self) -> int:
        return len(self._sink.buffer)

    def take(self) -> bytes:
        data = bytes(self._sink.buffer)
        self._sink.buffer.clear()
        return data

    def close(self) -> None:
        self._zip.close()


# --- Writing the files ------------------------------------------------------------------------------------------


def _text_file(stream: ZipStream, path: str, text: str, chunk_bytes: int) -> Iterator[bytes]:
    data = text.encode("utf-8")
    with stream.open(path) as entry:
        for start in range(0, len(data), 64 * 1024):
            entry.write(data[start : start + 64 * 1024])
            if stream.pending >= chunk_bytes:
                yield stream.take()


def _csv_cells(row: tuple[Any, ...]) -> list[Any]:
    # csv writes None as an empty cell; booleans and objects need spelling out.
    return [
        ("true" if value else "false")
        if value is True or value is False
        else (_json(value) if isinstance(value, dict) else value)
        for value in row
    ]


def _json_file(
    stream: ZipStream, dataset: Dataset, rows: Iterable[tuple[Any, ...]], chunk_bytes: int
) -> Iterator[bytes]:
    names = dataset.field_names
    with stream.open(f"data/{dataset.name}.json", rows=True) as entry:
        if dataset.single:
            row = next(iter(rows), None)
            entry.write((_json(dict(zip(names, row, strict=True)) if row else "null") + "\n").encode())
            entry.rows = 1 if row else 0
            return
        entry.write(b"[")
        batch: list[str] = []
        for row in rows:
            batch.append(_json(dict(zip(names, row, strict=True))))
            if len(batch) >= ROWS_PER_WRITE:
                entry.write(((",\n" if entry.rows else "\n") + ",\n".join(batch)).encode())
                entry.rows += len(batch)
                batch.clear()
                yield stream.take() if stream.pending >= chunk_bytes else b""  # b"": a slice ends, nothing to send
        if batch:
            entry.write(((",\n" if entry.rows else "\n") + ",\n".join(batch)).encode())
            entry.rows += len(batch)
        entry.write(b"\n]\n")


def _csv_file(
    stream: ZipStream, dataset: Dataset, rows: Iterable[tuple[Any, ...]], chunk_bytes: int
) -> Iterator[bytes]:
    text = io.StringIO()
    writer = SafeWriter(text)
    writer.writerow(dataset.field_names)
    with stream.open(f"data/{dataset.name}.csv", rows=True) as entry:
        pending = 0
        for row in rows:
            writer.writerow(_csv_cells(row))
            pending += 1
            if pending >= ROWS_PER_WRITE:
                entry.write(text.getvalue().encode())
                text.seek(0)
                text.truncate()
                entry.rows += pending
                pending = 0
                yield stream.take() if stream.pending >= chunk_bytes else b""  # b"": a slice ends, nothing to send
        entry.write(text.getvalue().encode())
        entry.rows += pending


def _snapshot(connection: Connection) -> None:
    """Read every file from one snapshot, so the totals in index.html and the rows in data/ agree."""
    if connection.dialect.name == "sqlite":
        # pysqlite starts no transaction for reads: without BEGIN each query would see the latest commit.
        connection.exec_driver_sql("BEGIN")
    else:
        connection.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)


def render_readme(env: jinja2.Environment, *, order: ArchiveOrder, customer_reference: str) -> str:
    """README.txt in every language, the archive's own first."""
    locales = (order.locale, *(locale for locale in SUPPORTED_LOCALES if locale != order.locale))
    parts = []
    for locale in locales:
        with using_locale(locale):  # the template fetched in that language (web/template_locales.py)
            parts.append(
                env.get_template("archive/README.txt")
                .render(
                    datasets=DATASETS,
                    order=order,
                    customer_reference=customer_reference,
                    format_version=FORMAT_VERSION,
                    schema_names=SCHEMA_NAMES,
                    report_rows=reports.REPORT_ROWS,
                )
                .strip()
            )
    return ("\n\n" + "=" * 79 + "\n\n").join(parts) + "\n"


def archive_chunks(
    engine: Engine,
    order: ArchiveOrder,
    *,
    env: jinja2.Environment,
    register: PurposeRegister,
    retailer: Retailer,
    progress: ArchiveProgress | None = None,
    chunk_bytes: int = CHUNK_BYTES,
    compresslevel: int = COMPRESSLEVEL,
    report_rows: int = reports.REPORT_ROWS,
) -> Iterator[bytes]:
    """The archive of one customer, chunk by chunk. Closing the generator early stops the reading at once."""
    progress = progress if progress is not None else ArchiveProgress()
    subject = Subject(customer_id=order.customer_id, timezone=order.zone, locale=order.locale)
    stream = ZipStream(date_time=order.generated_at.astimezone(order.zone), compresslevel=compresslevel)

    def out(chunk: bytes) -> bytes:
        progress.bytes_out += len(chunk)
        return chunk

    def emitted(chunks: Iterator[bytes]) -> Iterator[bytes]:
        # A generator, not `map`: `yield from` closes it when the archive is closed early, so the file being
        # written, and the cursor it reads, close before the connection does (not later, in the garbage collector).
        with contextlib.closing(chunks):  # type: ignore[type-var]  # a generator, annotated as the Iterator it is used as
            for chunk in chunks:
                yield out(chunk)

    with engine.connect() as connection:
        _snapshot(connection)
        profile_row = next(PROFILE.rows(connection, subject), None)
        if profile_row is None:
            raise CustomerNotFound(order.customer_id)
        profile = dict(zip(PROFILE.field_names, profile_row, strict=True))
        customer_reference = str(profile["retailer_customer_id"] or profile["customer_id"])

        readme = render_readme(env, order=order, customer_reference=customer_reference)
        yield from emitted(_text_file(stream, "README.txt", readme, chunk_bytes))

        report = reports.build_report(
            connection,
            customer_id=order.customer_id,
            register=register,
            timezone=order.timezone,
            report_rows=report_rows,
        )
        with using_locale(order.locale):
            index = env.get_template("archive/index.html").render(
                order=order,
                profile=profile,
                born=date.fromisoformat(profile["birth_date"]) if profile["birth_date"] else None,
                customer_since=datetime.fromisoformat(profile["created_at"]),
                restricted_since=datetime.fromisoformat(profile["restricted_at"]) if profile["restricted_at"] else None,
                report=report,
                datasets=DATASETS,
                supervisory_authority=reports.SUPERVISORY_AUTHORITY,
                rights=reports.RIGHTS,
            )
        yield from emitted(_text_file(stream, "index.html", index, chunk_bytes))
        # Whatever is ready goes now: the person waiting sees the download start.
        if stream.pending:
            yield out(stream.take())

        with using_locale(order.locale):  # the DPO's title in the archive's language
            processing = reports.processing_document(
                register=register, retailer=retailer, consents=report.consents, timezone=order.zone
            )
        text = json.dumps(processing, ensure_ascii=False, indent=2) + "\n"
        yield from emitted(_text_file(stream, "processing.json", text, chunk_bytes))

        for dataset in DATASETS:
            with contextlib.closing(dataset.rows(connection, subject)) as rows:  # type: ignore[type-var]  # a generator, annotated as the Iterator it is used as
                yield from emitted(_json_file(stream, dataset, rows, chunk_bytes))
            with contextlib.closing(dataset.rows(connection, subject)) as rows:  # type: ignore[type-var]  # a generator, annotated as the Iterator it is used as
                yield from emitted(_csv_file(stream, dataset, rows, chunk_bytes))

    for name in SCHEMA_NAMES:
        schema = (SCHEMAS_DIR / f"{name}.schema.json").read_text(encoding="utf-8")
        yield from emitted(_text_file(stream, f"schema/{name}.schema.json", schema, chunk_bytes))

    manifest = {
        "format_version": FORMAT_VERSION,
        "generated_at": order.generated_at.astimezone(order.zone).isoformat(timespec="seconds"),
        "language": order.locale,
        "time_zone": order.timezone,
        "controller": retailer.legal_name,
        "customer_reference": customer_reference,
        "request_reference": order.request_reference,
        "files": [dataclasses.asdict(record) for record in stream.files],
    }
    progress.files = list(stream.files)
    yield from emitted(
        _text_file(stream, "manifest.json", json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", chunk_bytes)
    )
    stream.close()
    progress.files = list(stream.files)
    yield out(stream.take())
    progress.finished = True
