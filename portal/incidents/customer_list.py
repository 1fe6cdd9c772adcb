"""Reading an uploaded list of the customers a breach concerns: a CSV or plain-text file, in UTF-8.

One email address or retailer customer id per line, or a column of a CSV file (named by its heading or number, or
found by a heading that says what it holds). The file is refused whole, with a message saying what to fix, when it
is empty, too big, not UTF-8 or not text; each line that names nobody is reported later by the selection, with its
line number. Nothing is guessed: a file with several columns and no column named is refused.
"""

from __future__ import annotations

import csv
import re
from datetime import datetime

from sqlmodel import Session

from portal.i18n import lazy_gettext
from portal.incidents.selection import LIST_LIMIT, Selected, SelectionRefused, select_named

UPLOAD_BYTES = 5_000_000  # 100,000 lines of about 50 bytes
BOM = b"\xef\xbb\xbf"
# Characters a text file does not hold (tab, line feed and carriage return aside): a UTF-16 file read as UTF-8 is
# full of NULs, a spreadsheet's binary file of everything else.
NOT_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
DELIMITERS = (",", ";", "\t")
# Headings that say what a column holds; a first line equal to one of them is a heading, not a customer.
HEADINGS = frozenset(
    {"email", "e-mail", "courriel", "adresse e-mail", "adresse email", "mail"}
    | {"customer_id", "customer id", "retailer_ref", "id client", "identifiant client", "id"}
)


def select_from_file(
    session: Session,
    *,
    reference: str,
    data: bytes,
    column: str = "",
    actor: str,
    now: datetime,
    request_id: str | None = None,
) -> Selected:
    """Select the customers an uploaded file names (see `numbered_keys`); bad lines come back with their numbers."""
    keys = numbered_keys(data, column=column)
    return select_named(session, reference=reference, keys=keys, method="file", actor=actor, now=now,
                        request_id=request_id)  # fmt: skip


def numbered_keys(data: bytes, *, column: str = "") -> list[tuple[int, str]]:
    """The (line number, value) of every non-empty line of the file, in the file's order; raises SelectionRefused."""
    if len(column) > 64 or NOT_TEXT.search(column):
        raise SelectionRefused(lazy_gettext("Give the column by its heading or its number."))
    if len(data) > UPLOAD_BYTES:
        raise SelectionRefused(lazy_gettext("The file is larger than 5 MB: send it in several parts."), status=413)
    text = _decoded(data.removeprefix(BOM))
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    if len(lines) > LIST_LIMIT:
        raise SelectionRefused(lazy_gettext("The list is too long: send it in several parts."), status=413)
    if not any(line.strip() for line in lines):
        raise SelectionRefused(lazy_gettext("The file is empty: it names no customer."))
    first = next(number for number, line in enumerate(lines) if line.strip())
    delimiter = next((d for d in DELIMITERS if d in lines[first]), None)
    if delimiter is None:  # one value per line
        if column.strip() not in ("", "1"):
            raise SelectionRefused(lazy_gettext("The file has one column only: leave the column empty."))
        start = first + 1 if _is_heading(lines[first]) else first
        return [(number, line.strip().strip('"').strip()) for number, line in enumerate(lines[start:], start + 1)
                if line.strip()]  # fmt: skip
    # Each line read on its own: a stray quote must not swallow the lines after it (and their numbers).
    rows = [next(csv.reader([line], delimiter=delimiter), []) for line in lines]
    index, start = _column(rows[first], column.strip())
    keys = []
    for number, row in enumerate(rows[first + start :], first + start + 1):
        if any(cell.strip() for cell in row):
            keys.append((number, row[index].strip() if index < len(row) else ""))
    return keys


def _decoded(data: bytes) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise SelectionRefused(
            lazy_gettext("The file is not in UTF-8 (line %(line)s): save it as UTF-8 text or CSV and send it again."),
            line=line,
        ) from None
    found = NOT_TEXT.search(text)
    if found:
        line = text.count("\n", 0, found.start()) + 1
        raise SelectionRefused(
            lazy_gettext("The file is not a text or CSV file in UTF-8 (line %(line)s): save it as UTF-8 text or CSV."),
            line=line,
        )
    return text


def _is_heading(cell: str) -> bool:
    return cell.strip().strip('"').strip().lower() in HEADINGS


def _column(heading: list[str], column: str) -> tuple[int, int]:
    """Which column holds the customers (0-based), and 1 when the first row is headings (skipped), else 0."""
    if column.isdigit():
        index = int(column) - 1
        if not 0 <= index < len(heading):
            raise SelectionRefused(lazy_gettext("The file has no column %(column)s."), column=column)
        return index, 1 if _is_heading(heading[index]) else 0
    names = [cell.strip().lower() for cell in heading]
    if column:
        if column.lower() not in names:
            raise SelectionRefused(lazy_gettext("The file's first line has no column headed « %(column)s »."),
                                   column=column[:64])  # fmt: skip
        return names.index(column.lower()), 1
    known = [index for index, name in enumerate(names) if name in HEADINGS]
    if len(known) != 1:
        raise SelectionRefused(lazy_gettext(
            "The file has several columns: give the heading or number of the one holding the email addresses or "
            "customer ids."
        ))  # fmt: skip
    return known[0], 1
