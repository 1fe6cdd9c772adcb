"""The one CSV writer of every export keeps spreadsheet formulas from running."""

from __future__ import annotations

import pytest

from portal.csvfile import csv_line


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_text_that_a_spreadsheet_would_run_is_quoted(start: str) -> None:
    assert csv_line([f"{start}1+1", "plain"]).startswith(f"'{start}") or csv_line([f"{start}1+1"]).startswith(
        f"\"'{start}"
    )


def test_numbers_and_empty_cells_are_written_as_they_are() -> None:
    assert csv_line([-12.5, -3, None, "a"]) == "-12.5,-3,,a\r\n"


def test_a_phone_number_or_a_signed_amount_stays_as_written() -> None:
    assert csv_line(["+33612345678", "+33 6 12 34 56 78", "-12,50", "+1 (555)"]) == (
        '+33612345678,+33 6 12 34 56 78,"-12,50",\'+1 (555)\r\n'
    )
