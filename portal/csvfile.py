"""The one CSV writer of every export: staff reports, the audit trail, consent proof, archives, import rejects.

A cell that starts with = + - @ (or a tab or carriage return) is run as a formula by spreadsheets: a page title
like `=HYPERLINK(…)` sent by a website would become a live link in the DPO's copy (CSV injection, OWASP). Text
cells starting so get a leading apostrophe, which spreadsheets show as text; numbers are written as they are.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from typing import Any, Protocol

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_SIGNED_NUMBER = re.compile(r"[+-][0-9][0-9 .,]*\Z")


class _Writable(Protocol):
    def write(self, text: str, /) -> Any: ...


def safe_cell(value: object) -> object:
    """A value as a CSV cell: text that a spreadsheet would run as a formula is quoted with an apostrophe; numbers,
    dates and the rest are left to csv (which writes None as an empty cell). A signed number written as text (a
    phone number "+33 6 12 34 56 78", an amount "-12,50") runs nothing and stays as it is."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) and not _SIGNED_NUMBER.match(value):
        return "'" + value
    return value


class SafeWriter:
    """csv.writer with every cell made safe (RFC 4180 line ends)."""

    def __init__(self, stream: _Writable) -> None:
        self._writer = csv.writer(stream, lineterminator="\r\n")

    def writerow(self, values: Iterable[object]) -> None:
        self._writer.writerow([safe_cell(value) for value in values])

    def writerows(self, rows: Iterable[Iterable[object]]) -> None:
        for row in rows:
            self.writerow(row)


def csv_line(values: Iterable[object]) -> str:
    """One safe CSV line, with its line end."""
    buffer = io.StringIO()
    SafeWriter(buffer).writerow(values)
    return buffer.getvalue()
