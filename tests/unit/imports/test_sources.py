"""Reading exports: delimiters, BOM, JSON Lines, gzip, and clear errors for files that cannot be read."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from portal.i18n import using_locale
from portal.imports.sources import Source, SourceError


def rows_of(path: Path) -> tuple[list[str] | None, list[tuple[int, dict, str | None]]]:
    with Source(str(path)) as source:
        rows = [(row.line, source.original(row.values), row.problem) for row in source.rows()]
        return source.columns, rows


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_the_delimiter_is_sniffed_from_the_header(tmp_path: Path, delimiter: str) -> None:
    path = tmp_path / "stores.csv"
    path.write_text(delimiter.join(["code", "name", "city"]) + "\n" + delimiter.join(["A1", "Shop, big", ""]) + "\n")
    if delimiter == ",":
        path.write_text('code,name,city\nA1,"Shop, big",\n')
    columns, rows = rows_of(path)
    assert columns == ["code", "name", "city"]
    assert rows == [(2, {"code": "A1", "name": "Shop, big", "city": None}, None)]


def test_a_byte_order_mark_is_not_part_of_the_first_column(tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes("\ufeffcode;name\r\nA1;Épinal\r\n".encode())
    columns, rows = rows_of(path)
    assert columns == ["code", "name"]
    assert rows[0][1] == {"code": "A1", "name": "Épinal"}


def test_a_quoted_value_over_several_lines_reports_its_first_line(tmp_path: Path) -> None:
    path = tmp_path / "multi.csv"
    path.write_text('code,name\n\nA1,"two\nlines"\nB2,x\n')
    _, rows = rows_of(path)
    assert [(line, values["code"]) for line, values, _ in rows] == [(3, "A1"), (5, "B2")]
    assert rows[0][1]["name"] == "two\nlines"


def test_a_ragged_row_is_a_row_problem_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text("code,name\nA1,x,extra\nB2\nC3,z\n")
    with using_locale("en"):
        _, rows = rows_of(path)
    assert [(line, problem is not None) for line, _, problem in rows] == [(2, True), (3, True), (4, False)]
    assert "3 columns where the header has 2" in rows[0][2]


def test_json_lines_a_bad_line_is_a_row_problem(tmp_path: Path) -> None:
    path = tmp_path / "stores.jsonl"
    path.write_text('{"code": "A1", "n": 3}\n\n{"code": \n[1, 2]\n')
    with using_locale("en"):
        columns, rows = rows_of(path)
    assert columns is None
    assert rows[0] == (1, {"code": "A1", "n": 3}, None)
    assert rows[1][0] == 3 and "not valid JSON" in rows[1][2]
    assert rows[2][0] == 4 and "one JSON object" in rows[2][2]


def test_gzip_is_read_as_it_streams(tmp_path: Path) -> None:
    path = tmp_path / "stores.csv.gz"
    with gzip.open(path, "wt", encoding="utf-8") as stream:
        stream.write("code;name\n" + "".join(f"S{i};Shop {i}\n" for i in range(1000)))
    _, rows = rows_of(path)
    assert len(rows) == 1000 and rows[-1] == (1001, {"code": "S999", "name": "Shop 999"}, None)


def test_latin1_is_refused_naming_the_file_and_line_with_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "caisse.csv"
    path.write_bytes("code;name\nA1;Lyon\nB2;Épinal\n".encode("latin-1"))
    with using_locale("fr"), pytest.raises(SourceError) as raised:
        rows_of(path)
    assert "caisse.csv, ligne 3" in str(raised.value) and "iconv" in str(raised.value)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("", "the file is empty"),
        ("\n\n", "the file is empty"),
        ("code,,name\nA,B,C\n", "column without a name"),
        ("code,name,code\nA,B,C\n", "“code” appears twice"),
    ],
)
def test_files_that_cannot_be_read_say_why(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with using_locale("en"), pytest.raises(SourceError, match=expected):
        rows_of(path)


def test_a_missing_file_is_a_source_error(tmp_path: Path) -> None:
    with using_locale("en"), pytest.raises(SourceError, match="cannot be read"):
        Source(str(tmp_path / "nowhere.csv"))


def test_a_damaged_gzip_is_a_source_error(tmp_path: Path) -> None:
    packed = gzip.compress(("store_code,name\n" + "".join(f"S{i},Shop {i}\n" for i in range(5000))).encode())
    damaged = {"corrupt": packed[:200] + b"\0" * 50 + packed[250:], "truncated": packed[: len(packed) // 2]}
    for name, content in damaged.items():
        path = tmp_path / f"{name}.csv.gz"
        path.write_bytes(content)
        with using_locale("en"), pytest.raises(SourceError, match=f"{name}.csv.gz: cannot be read after line"):
            rows_of(path)
