"""The two passes: nothing written while a row is bad, rejected rows set aside on request, batches that never cut
a group, a dry run that counts exactly, an interruption between batches, progress lines without a terminal."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import func, select
from sqlmodel import Session

from portal.db import transaction
from portal.i18n import using_locale
from portal.imports.kinds import FieldSpec, ImportContext, RowError, RowInvalid, Tally
from portal.imports.progress import BarProgress, PlainProgress
from portal.imports.runner import StopRequest
from portal.imports.stores import StoresKind
from portal.imports.summary import refusal_lines, summary_lines
from portal.models import AuditEvent, Store
from tests.unit.imports.conftest import CONFIG, SAMPLES, stores_in


class TicketsKind:
    """A test-only kind whose records span rows (a ticket's lines): each line becomes a store named after it."""

    name: ClassVar[str] = "tickets"
    fields: ClassVar[tuple[FieldSpec, ...]] = (FieldSpec("ticket", required=True), FieldSpec("code", required=True))
    checked: ClassVar[list[list[str]]] = []

    def __init__(self, context: ImportContext) -> None:
        self.context = context

    def parse(self, fields: Mapping[str, Any], line: int) -> tuple[str, str]:
        if fields["code"] == "bad":
            raise RowInvalid([RowError("code", "bad code")], group=fields["ticket"])
        return (fields["ticket"], fields["code"])

    def group_key(self, record: tuple[str, str]) -> str | None:
        return record[0]

    def check(self, session: Session, batch: Sequence[tuple[str, str]]) -> dict[int, list[RowError]]:
        TicketsKind.checked.append([ticket for ticket, _ in batch])
        return {i: [RowError(None, "refused by check")] for i, (_, code) in enumerate(batch) if code == "nope"}

    def write(self, session: Session, batch: Sequence[tuple[str, str]], tally: Tally) -> None:
        for ticket, code in batch:
            session.add(Store(code=code, name=ticket))
        tally.count("created", len(batch))


def write_csv(path: Path, header: str, rows: Sequence[str]) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def store_count(engine) -> int:  # type: ignore[no-untyped-def]
    with transaction(engine) as session:
        return session.scalar(select(func.count()).select_from(Store)) or 0


def test_a_file_with_bad_rows_writes_nothing_and_says_where(engine, run_import, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "magasins.csv", "Code magasin;Enseigne;Ville;Type",
                     ["A1;Shop A;Lyon;store", "B2;;Lyon;store", "C3;Shop C;Lyon;kiosk", "D4;x;y;z;extra"])  # fmt: skip
    with using_locale("en"):
        report = run_import(StoresKind, path, mapping=CONFIG / "stores.toml")
        lines = refusal_lines(report)
    assert store_count(engine) == 0 and not report.written
    assert report.read == 4 and report.rejected == 3
    assert lines[:3] == [
        "magasins.csv, line 3, column “Enseigne”: This field is required.",
        "magasins.csv, line 4, column “Type”: “kiosk” is neither store nor web.",
        "magasins.csv, line 5: This row has 5 columns where the header has 4 (check the delimiter and the quotes).",
    ]
    assert lines[-1].startswith("Nothing was imported: 3 rows have errors.")


def test_skip_invalid_writes_the_rejected_rows_with_the_reason(engine, run_import, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "stores.csv", "store_code,name,city", ["A1,Shop A,Lyon", "B2,,Paris", "C3,Shop C,"])
    rejects = tmp_path / "rejects.csv"
    with using_locale("fr"):
        report = run_import(StoresKind, path, rejects_path=str(rejects))
        summary = summary_lines(report)
    assert set(stores_in(engine)) == {"A1", "C3"}
    with rejects.open(encoding="utf-8") as stream:
        assert list(csv.reader(stream)) == [
            ["file", "line", "column", "reason", "store_code", "name", "city"],
            ["stores.csv", "3", "name", "Ce champ est obligatoire.", "B2", "", "Paris"],
        ]
    assert summary[:2] == [
        "3 lignes lues.",
        "créés 2 · mis à jour 0 · inchangés 0 · fusionnés 0 · refusés 1 · écartés 0",
    ]
    assert f"Les lignes refusées, avec la raison, sont dans {rejects}." in summary


def test_more_than_fifty_problems_are_counted_not_all_printed(run_import, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "stores.csv", "store_code,name", [f"S{i}," for i in range(80)])
    with using_locale("en"):
        report = run_import(StoresKind, path)
        lines = refusal_lines(report)
    assert len(report.problems) == 50 and report.problem_count == 80
    assert lines[50] == "… and 30 more problems."


def test_batches_never_cut_a_group_and_a_bad_row_rejects_its_group(engine, run_import, tmp_path: Path) -> None:
    TicketsKind.checked.clear()
    rows = ["T1,a1", "T1,a2", "T1,a3", "T2,b1", "T2,bad", "T3,c1", "T4,nope", "T4,d2", "T5,e1"]
    rejects = tmp_path / "rejects.csv"
    with using_locale("fr"):
        report = run_import(TicketsKind, write_csv(tmp_path / "t.csv", "ticket,code", rows), batch_size=2,
                            rejects_path=str(rejects))  # fmt: skip
    # T2 failed to parse, so is never checked; no batch ends inside T1 or T4 although a batch is 2 rows
    assert TicketsKind.checked == [["T1", "T1", "T1"], ["T3", "T4", "T4"], ["T5"]]
    assert set(stores_in(engine)) == {"a1", "a2", "a3", "c1", "e1"}
    assert report.rejected == 4 and report.tally.outcomes == {"created": 5}
    with rejects.open(encoding="utf-8") as stream:
        reasons = {row["code"]: row["reason"] for row in csv.DictReader(stream)}
    assert reasons["bad"] == "bad code" and reasons["nope"] == "refused by check"
    assert "« T2 »" in reasons["b1"] and "« T4 »" in reasons["d2"]  # in the operator's language


def test_a_dry_run_counts_exactly_and_writes_nothing(engine, run_import, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "stores.csv", "store_code,name", ["A,One", "B,Two", "A,One"])
    report = run_import(StoresKind, path, dry_run=True, batch_size=1)
    assert report.tally.outcomes == {"created": 2, "unchanged": 1}
    assert store_count(engine) == 0
    with transaction(engine) as session:
        assert session.scalar(select(func.count()).select_from(AuditEvent)) == 0
    assert summary_lines(report)[-1].startswith(("Dry run", "Essai à blanc"))


def test_a_stop_request_is_obeyed_between_batches(engine, run_import, tmp_path: Path) -> None:
    stop = StopRequest()

    class StoppedAfterTwo(StoresKind):
        batches = 0

        def write(self, session: Session, batch: Sequence[Any], tally: Tally) -> None:
            super().write(session, batch, tally)
            StoppedAfterTwo.batches += 1
            stop.requested = StoppedAfterTwo.batches == 2

    path = write_csv(tmp_path / "stores.csv", "store_code,name", [f"S{i},Shop {i}" for i in range(10)])
    report = run_import(StoppedAfterTwo, path, batch_size=3, stop=stop)
    assert report.interrupted and report.committed_batches == 2 and report.batches == 4
    assert report.committed_rows == 6 == store_count(engine)
    with using_locale("en"):
        assert summary_lines(report)[-1].startswith("Interrupted: 2 of 4 batches were written (6 rows)")
    again = run_import(StoresKind, path)
    assert again.tally.outcomes == {"unchanged": 6, "created": 4}


def test_progress_without_a_terminal_is_plain_lines(run_import, tmp_path: Path) -> None:
    stream = io.StringIO()
    path = write_csv(tmp_path / "stores.csv", "store_code,name", [f"S{i},Shop {i}" for i in range(1200)])
    with using_locale("en"):
        run_import(StoresKind, path, progress=PlainProgress(stream, interval=0))
    output = stream.getvalue()
    assert "\r" not in output and "\x1b" not in output
    lines = output.splitlines()
    assert "Checking: 500 rows" in lines[0] and "rows/s, about" in lines[0] and "s left" in lines[0]
    assert any(line.startswith("Checking: 1,200 rows in ") for line in lines)
    assert lines[-1].startswith("Writing: 1,200 rows in ")


def test_several_files_and_the_json_lines_sample_import_as_one_run(engine, run_import, tmp_path: Path) -> None:
    more = write_csv(tmp_path / "more.csv", "store_code,name", ["NTE-01,Maison Aubépine Nantes"])
    report = run_import(StoresKind, SAMPLES / "stores.jsonl", more)
    assert report.read == 5 and report.tally.outcomes == {"created": 5}
    assert stores_in(engine)["WEB"] == ("Boutique en ligne", None, "web")


def test_on_a_terminal_the_bar_shows_rows_per_second_and_time_left() -> None:
    stream = io.StringIO()
    bar = BarProgress(stream)
    bar.start("Checking")
    bar.update(500, 0.25)
    bar.update(1000, 0.5)
    bar.finish()
    drawn = stream.getvalue()
    assert "Checking" in drawn and "1000/1000" in drawn and " rows/s" in drawn


def test_an_unreadable_row_inside_a_group_does_not_cut_it(run_import, tmp_path: Path) -> None:
    TicketsKind.checked.clear()
    rows = ["T1,a1", "T1,a2", "T1,a3,extra", "T1,a4", "T2,b1"]
    run_import(TicketsKind, write_csv(tmp_path / "t.csv", "ticket,code", rows), batch_size=2,
               rejects_path=str(tmp_path / "rejects.csv"))  # fmt: skip
    assert TicketsKind.checked == [["T1", "T1", "T1"], ["T2"]]
