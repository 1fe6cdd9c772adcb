"""Reading the retailer's export files as they come: CSV with any delimiter, or JSON Lines, maybe gzipped, maybe piped.

Everything streams: a file is read a line at a time (decompressed as it is read), so memory stays flat whatever
its size. Each line is decoded on its own, so a file that is not UTF-8 is reported at the exact line it breaks.
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import json
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from portal.i18n import gettext

STDIN = "-"
DELIMITERS = (",", ";", "\t", "|")
MAX_FIELD = 1024 * 1024  # csv's default limit (128 KB) is below what a long product label list can reach


class SourceError(ValueError):
    """A file that cannot be read at all (missing, empty, not UTF-8, no header…); nothing of it can be imported."""


@dataclasses.dataclass(frozen=True, slots=True)
class RawRow:
    """One row as the export wrote it: its first line, its values, or why it cannot be read.

    A CSV row's values are a list in the order of the header (stripped, None when empty: a list is what a million
    rows can afford); a JSON Lines row's are its object.
    """

    line: int
    values: list[str | None] | dict[str, Any]
    problem: str | None = None


class Source:
    """One file (or standard input) opened for reading; iterate `rows()` once.

    `columns` is the header of a CSV file (None for JSON Lines, whose rows name their own keys); `position` and
    `size` are in bytes of the file as stored (compressed for .gz) and say how far through the file the reading is.
    """

    def __init__(self, name: str, *, delimiter: str | None = None) -> None:
        self.name = name
        self.display_name = "stdin" if name == STDIN else Path(name).name
        self._delimiter = delimiter
        self._raw: IO[bytes]
        try:
            self._raw = sys.stdin.buffer if name == STDIN else open(name, "rb")  # noqa: SIM115 - closed by close()
        except OSError as exc:
            raise SourceError(
                gettext("%(file)s: cannot be read (%(reason)s).", file=name, reason=exc.strerror)
            ) from None
        self.size: int | None = None
        if name != STDIN:
            self.size = Path(name).stat().st_size
        self._stream: IO[bytes] = self._raw
        if name.endswith(".gz"):
            self._stream = gzip.GzipFile(fileobj=self._raw, mode="rb")  # type: ignore[assignment]  # GzipFile is a binary stream but not typed as IO[bytes]
        self._lines = self._decoded_lines()
        self._blank_before = 0  # blank lines before the first, so that line numbers stay the file's
        self.columns: list[str] | None = None
        self.is_json = False
        try:
            self._first = self._first_line()
        except SourceError:
            self.close()
            raise

    @property
    def position(self) -> int:
        try:
            return self._raw.tell()
        except OSError:  # a pipe
            return 0

    def close(self) -> None:
        if self._raw is not sys.stdin.buffer:
            self._raw.close()

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- Lines ----------------------------------------------------------------------------------------------------

    def _decoded_lines(self) -> Iterator[str]:
        number = 0
        try:
            for raw in self._stream:
                number += 1
                if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                    raw = raw[3:]
                try:
                    yield raw.decode("utf-8")
                except UnicodeDecodeError:
                    raise SourceError(
                        gettext(
                            "%(file)s, line %(line)s: the file is not in UTF-8 (exports from older tills are often in"
                            " Latin-1 or Windows-1252). Convert it first, for example: iconv -f WINDOWS-1252 -t UTF-8"
                            " %(file)s > converted.csv",
                            file=self.display_name,
                            line=number,
                        )
                    ) from None
        except (OSError, EOFError, zlib.error) as exc:  # a truncated or corrupt .gz
            raise SourceError(
                gettext("%(file)s: cannot be read after line %(line)s (%(reason)s).",
                        file=self.display_name, line=number, reason=str(exc) or type(exc).__name__)
            ) from None  # fmt: skip

    def _first_line(self) -> str:
        for line in self._lines:
            if line.strip():
                return line
            self._blank_before += 1
        raise SourceError(gettext("%(file)s: the file is empty.", file=self.display_name))

    # --- Rows -----------------------------------------------------------------------------------------------------

    def rows(self) -> Iterator[RawRow]:
        """The rows of the file; a CSV file's header is read (and checked) before this returns."""
        if self._first.lstrip().startswith("{"):
            self.is_json = True
            return self._json_rows()
        csv.field_size_limit(MAX_FIELD)
        reader = csv.reader(
            _chain(self._first, self._lines), delimiter=self._delimiter or _sniffed_delimiter(self._first)
        )
        self.columns = [name.strip() for name in next(reader)]
        self._check_header(self.columns)
        return self._csv_rows(reader)

    def original(self, values: list[str | None] | dict[str, Any]) -> dict[str, Any]:
        """A row's values by column, as the rejects file shows them (cells beyond the header numbered)."""
        if isinstance(values, dict):
            return values
        columns = self.columns or []
        extra = [f"#{n}" for n in range(len(columns) + 1, len(values) + 1)]
        return dict(zip([*columns, *extra], values, strict=False))

    def _json_rows(self) -> Iterator[RawRow]:
        for number, line in enumerate(_chain(self._first, self._lines), start=1 + self._blank_before):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except ValueError as exc:
                yield RawRow(number, {"raw": line.rstrip("\r\n")}, gettext("This line is not valid JSON (%(reason)s).",
                             reason=str(exc)))  # fmt: skip
                continue
            if not isinstance(value, dict):
                yield RawRow(number, {"raw": line.rstrip("\r\n")}, gettext("Each line must be one JSON object."))
                continue
            yield RawRow(number, value)

    def _csv_rows(self, reader: Any) -> Iterator[RawRow]:
        assert self.columns is not None
        width = len(self.columns)
        skipped = self._blank_before
        start = reader.line_num + 1
        try:
            for cells in reader:
                line, start = start, reader.line_num + 1
                values = [cell.strip() or None for cell in cells]
                if len(values) == width:
                    yield RawRow(line + skipped, values)
                elif any(values):  # a blank line is no row
                    problem = gettext(
                        "This row has %(found)s columns where the header has %(expected)s (check the delimiter and"
                        " the quotes).",
                        found=len(cells),
                        expected=width,
                    )
                    yield RawRow(line + skipped, values, problem)
        except csv.Error as exc:
            raise SourceError(
                gettext("%(file)s, line %(line)s: the CSV cannot be read (%(reason)s).",
                        file=self.display_name, line=reader.line_num + skipped, reason=str(exc))
            ) from None  # fmt: skip

    def _check_header(self, columns: list[str]) -> None:
        if any(not name for name in columns):
            raise SourceError(
                gettext(
                    "%(file)s, line %(line)s: the header has a column without a name; the first line must name every"
                    " column.",
                    file=self.display_name,
                    line=self._blank_before + 1,
                )
            )
        seen: set[str] = set()
        for name in columns:
            if name in seen:
                raise SourceError(
                    gettext("%(file)s, line %(line)s: the column “%(column)s” appears twice in the header.",
                            file=self.display_name, line=self._blank_before + 1, column=name)
                )  # fmt: skip
            seen.add(name)


def _chain(first: str, rest: Iterator[str]) -> Iterator[str]:
    yield first
    yield from rest


def _sniffed_delimiter(header: str) -> str:
    """The delimiter the header uses most: exports name their columns in plain words, so this is reliable where
    csv.Sniffer, which guesses from quoting patterns, is not."""
    counts = {delimiter: header.count(delimiter) for delimiter in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","
