"""`portal import`: every row checked before anything is written, then written in batches, each its own transaction.

Pass 1 reads every file, parses each row and has the kind check each batch; the checked records are pickled to a
temporary file (the spool), so memory stays flat whatever the size of the files; a kind with many rows to a run
packs them first (kinds.PackedKind: purchases keep one plain tuple per receipt, not a record per line), as pickling
the records cost a fifth of a million-line import. When a row is bad, nothing is
written unless the operator asked for the rejected rows to be set aside (`--skip-invalid`). Pass 2 reads the spool
back and writes it batch by batch, one transaction and one audit event (counts only) each: an interruption
(Ctrl-C) stops between two batches, and running the same command again finds what was written unchanged.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import pickle
import signal
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Engine
from sqlmodel import Session

from portal.audit import record_audit
from portal.csvfile import SafeWriter
from portal.db import transaction
from portal.i18n import gettext
from portal.imports.kinds import ImportContext, Kind, PackedKind, RowError, RowInvalid, Tally
from portal.imports.mapping import ColumnMapping, FileColumns
from portal.imports.progress import NoProgress, Progress
from portal.imports.sources import RawRow, Source

DEFAULT_BATCH_SIZE = 2000
SHOWN_PROBLEMS = 50  # the first ones are printed; the rejects file (--skip-invalid) has them all
PROGRESS_EVERY = 500  # rows between two progress updates: cheap enough for a million rows
REJECT_COLUMNS = ("file", "line", "column", "reason")
UNREADABLE_PILE = 4  # batches' worth of unreadable rows kept waiting for the end of the group they may be in
# SQLite's page cache while writing, in KiB (its default is 2 MiB): a million purchase lines update the customers'
# purchase index and totals at random places, and each page read again costs a read and a copy. Measured with
# bench/import.py's file: 64 MiB took a sixth of the writing pass's CPU off but brought the peak RSS to 196 MB, at
# the edge of the 200 MB an import may use; 32 MiB keeps a margin.
WRITING_CACHE_KIB = 32768


@dataclasses.dataclass(frozen=True)
class RowProblem:
    """One reason a row was rejected, as the operator reads it: the retailer's column, not our field name."""

    file: str
    line: int
    column: str
    message: str


@dataclasses.dataclass
class ImportReport:
    kind: str
    dry_run: bool
    read: int = 0
    rejected: int = 0  # rows refused in pass 1
    problems: list[RowProblem] = dataclasses.field(default_factory=list)  # the first SHOWN_PROBLEMS
    problem_count: int = 0
    tally: Tally = dataclasses.field(default_factory=Tally)
    written: bool = False  # pass 2 ran (a dry run's writes were rolled back)
    interrupted: bool = False
    batches: int = 0  # batches pass 2 had to write
    committed_batches: int = 0
    committed_rows: int = 0
    rejects_file: str | None = None


class StopRequest:
    """Ctrl-C during the writing pass: noted, and obeyed between two batches, never inside one."""

    def __init__(self) -> None:
        self.requested = False

    @contextlib.contextmanager
    def armed(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def note(_signum: int, _frame: object) -> None:
            self.requested = True

        previous = signal.signal(signal.SIGINT, note)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)


@dataclasses.dataclass(slots=True)
class _Row:
    file: str
    line: int
    values: list[str | None] | dict[str, Any]
    record: Any
    errors: list[RowError]
    group: str | None


class ImportRun:
    """One run of `portal import` over some files of one kind."""

    def __init__(
        self,
        engine: Engine,
        kind: Kind,
        context: ImportContext,
        *,
        files: Sequence[str],
        mapping: ColumnMapping,
        batch_size: int = DEFAULT_BATCH_SIZE,
        dry_run: bool = False,
        rejects_path: str | None = None,
        progress: Progress | None = None,
        stop: StopRequest | None = None,
    ) -> None:
        self.engine = engine
        self.kind = kind
        self.context = context
        self.files = list(files)
        self.mapping = mapping
        self.batch_size = max(1, batch_size)
        self.rejects_path = rejects_path
        self.progress = progress or NoProgress()
        self.stop = stop or StopRequest()
        self.report = ImportReport(kind=kind.name, dry_run=dry_run, rejects_file=rejects_path)
        self._packer = kind if isinstance(kind, PackedKind) else None
        self._default_cache: int | None = None  # SQLite's page cache size before the writing pass raised it
        self._reject_columns: dict[str, None] = {}  # every original column seen in a rejected row, in order

    def run(self) -> ImportReport:
        """Raises SourceError or MappingError when a file cannot be read at all: then nothing is written."""
        with tempfile.TemporaryFile() as spool, tempfile.TemporaryFile() as rejected:
            self._check_files(spool, rejected)
            if self.report.rejected and self.rejects_path is None:
                return self.report
            if self.rejects_path is not None:
                self._write_rejects(rejected, Path(self.rejects_path))
            spool.seek(0)
            try:
                if self.report.dry_run:
                    self._write_and_roll_back(spool)
                else:
                    self._write_batches(spool)
            finally:
                self._restore_pragmas()
        return self.report

    # --- Pass 1: read, parse, check, spool -------------------------------------------------------------------

    def _check_files(self, spool: IO[bytes], rejected: IO[bytes]) -> None:
        sizes = [_size(name) for name in self.files]
        total_bytes = None if None in sizes else sum(s or 0 for s in sizes)
        done_bytes = 0
        self.progress.start(gettext("Checking"))
        with Session(self.engine) as session:  # read-only: whatever a check reads is rolled back
            for name in self.files:
                with Source(name, delimiter=self.mapping.delimiter) as source:
                    rows = source.rows()
                    columns = self.mapping.resolve(self.kind.fields, source.columns, source.display_name)
                    pending: list[_Row] = []
                    for raw in rows:
                        self.report.read += 1
                        row = self._parsed(source.display_name, raw, columns)
                        if self._starts_batch(row, pending):
                            self._check_batch(session, pending, source, columns, spool, rejected)
                            pending = []
                        pending.append(row)
                        if self.report.read % PROGRESS_EVERY == 0:
                            fraction = (done_bytes + source.position) / total_bytes if total_bytes else None
                            self.progress.update(self.report.read, fraction)
                    if pending:
                        self._check_batch(session, pending, source, columns, spool, rejected)
                done_bytes += source.size or 0
            session.rollback()
        self.progress.update(self.report.read, 1.0)
        self.progress.finish()

    def _starts_batch(self, row: _Row, pending: list[_Row]) -> bool:
        """Whether `row` begins a new batch: once the batch is full, at the first row of another group. A row
        unreadable enough to have no group never begins one (it may sit inside a group), unless unreadable rows
        pile up: memory stays bounded."""
        if len(pending) < self.batch_size:
            return False
        if row.errors and row.group is None:
            return len(pending) >= UNREADABLE_PILE * self.batch_size
        current = next((r.group for r in reversed(pending) if r.group is not None or not r.errors), None)
        return row.group is None or row.group != current

    def _parsed(self, file: str, raw: RawRow, columns: FileColumns) -> _Row:
        if raw.problem is not None:
            return _Row(file, raw.line, raw.values, None, [RowError(None, raw.problem)], None)
        try:
            record = self.kind.parse(columns.fields_of(raw.values), raw.line)
        except RowInvalid as invalid:
            return _Row(file, raw.line, raw.values, None, invalid.errors, invalid.group)
        return _Row(file, raw.line, raw.values, record, [], self.kind.group_key(record))

    def _check_batch(
        self,
        session: Session,
        rows: list[_Row],
        source: Source,
        columns: FileColumns,
        spool: IO[bytes],
        rejected: IO[bytes],
    ) -> None:
        bad_groups = {row.group for row in rows if row.errors and row.group is not None}
        candidates = [row for row in rows if not row.errors and row.group not in bad_groups]
        found = self.kind.check(session, [row.record for row in candidates]) if candidates else {}
        for position, errors in found.items():
            candidates[position].errors = list(errors)
            if candidates[position].group is not None:
                bad_groups.add(candidates[position].group)
        good = []
        for row in rows:
            if not row.errors and row.group in bad_groups:
                message = gettext(
                    "Rejected with the other rows of “%(group)s”, one of which is invalid.", group=row.group
                )
                row.errors = [RowError(None, message)]
            if row.errors:
                self._reject(row, source, columns, rejected)
            else:
                good.append(row.record)
        if good:
            packed = self._packer.pack(good) if self._packer is not None else good
            pickle.dump((len(good), packed), spool, protocol=pickle.HIGHEST_PROTOCOL)
            self.report.batches += 1

    def _reject(self, row: _Row, source: Source, columns: FileColumns, rejected: IO[bytes]) -> None:
        self.report.rejected += 1
        problems = [RowProblem(row.file, row.line, columns.column_of(e.field), e.message) for e in row.errors]
        self.report.problem_count += len(problems)
        room = SHOWN_PROBLEMS - len(self.report.problems)
        if room > 0:
            self.report.problems.extend(problems[:room])
        if self.rejects_path is not None:
            values = source.original(row.values)
            self._reject_columns.update(dict.fromkeys(values))
            pickle.dump((row.file, row.line, problems, values), rejected, protocol=pickle.HIGHEST_PROTOCOL)

    def _write_rejects(self, rejected: IO[bytes], path: Path) -> None:
        """The rejected rows as they were given, with where and why, so they can be corrected and imported again."""
        rejected.seek(0)
        original = [name for name in self._reject_columns if name not in REJECT_COLUMNS]
        with path.open("w", encoding="utf-8", newline="") as stream:
            writer = SafeWriter(stream)
            writer.writerow([*REJECT_COLUMNS, *original])
            for file, line, problems, values in _pickled(rejected):
                columns = ", ".join(dict.fromkeys(p.column for p in problems if p.column))
                reasons = " ".join(p.message for p in problems)
                writer.writerow([file, line, columns, reasons, *(_cell(values.get(name)) for name in original)])

    # --- Pass 2: write ------------------------------------------------------------------------------------------

    def _write_batches(self, spool: IO[bytes]) -> None:
        self.report.written = True
        self.progress.start(gettext("Writing"))
        with self.stop.armed():
            for rows, batch in _pickled(spool):
                if self.stop.requested:
                    self.report.interrupted = True
                    break
                tally = Tally()
                with transaction(self.engine) as session:
                    self._write_pragmas(session)
                    self._write(session, batch, tally)
                    record_audit(
                        session,
                        actor=self.context.actor,
                        action="import.batch_written",
                        target=f"import:{self.kind.name}",
                        detail={"rows": rows, **tally.outcomes, "reasons": dict(tally.reasons)},
                        now=self.context.now,
                    )
                self.report.tally.add(tally)
                self.report.committed_batches += 1
                self.report.committed_rows += rows
                self.progress.update(self.report.committed_rows, self.report.committed_batches / self.report.batches)
        self.progress.finish()

    def _write_and_roll_back(self, spool: IO[bytes]) -> None:
        """A dry run writes everything in one transaction and rolls it back, so its counts are the real ones."""
        self.report.written = True
        self.progress.start(gettext("Trying"))
        with Session(self.engine) as session:
            session.begin()
            self._write_pragmas(session)
            for rows, batch in _pickled(spool):
                self._write(session, batch, self.report.tally)
                session.flush()
                self.report.committed_batches += 1
                self.report.committed_rows += rows
                self.progress.update(self.report.committed_rows, self.report.committed_batches / self.report.batches)
            session.rollback()
        self.progress.finish()

    def _write_pragmas(self, session: Session) -> None:
        """The writing pass's SQLite settings, on the connection of this batch (the pool gives the same one back
        batch after batch, so this costs one statement); nothing on PostgreSQL."""
        connection = session.connection()
        if connection.dialect.name == "sqlite":
            if self._default_cache is None:
                self._default_cache = connection.exec_driver_sql("PRAGMA cache_size").scalar()
            connection.exec_driver_sql(f"PRAGMA cache_size = -{WRITING_CACHE_KIB}")

    def _restore_pragmas(self) -> None:
        """The connection the writing pass used goes back to the pool as it came: a long-lived process (tests, the
        API's engine) keeps SQLite's own cache size elsewhere."""
        if self._default_cache is None:
            return
        with self.engine.connect() as connection:
            connection.exec_driver_sql(f"PRAGMA cache_size = {int(self._default_cache)}")
            connection.commit()

    def _write(self, session: Session, batch: Any, tally: Tally) -> None:
        """Write one spooled batch: packed by the kind, or its records as they were checked."""
        if self._packer is not None:
            self._packer.write_packed(session, batch, tally)
        else:
            self.kind.write(session, batch, tally)


def _size(name: str) -> int | None:
    """The size of a file in bytes, to estimate the time left; None for standard input (or a file that is not
    there: opening it will say so)."""
    try:
        return None if name == "-" else Path(name).stat().st_size
    except OSError:
        return None


def _pickled(stream: IO[bytes]) -> Iterator[Any]:
    while True:
        try:
            yield pickle.load(stream)  # noqa: S301 - our own temporary file, written by this process
        except EOFError:
            return


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)
