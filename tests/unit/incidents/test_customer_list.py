"""Reading an uploaded list of customers: encodings, headings, columns, line numbers; nothing guessed."""

from __future__ import annotations

import pytest

from portal.incidents.customer_list import UPLOAD_BYTES, numbered_keys
from portal.incidents.selection import SelectionRefused


def refused(data: bytes, column: str = "") -> SelectionRefused:
    with pytest.raises(SelectionRefused) as caught:
        numbered_keys(data, column=column)
    return caught.value


def test_one_value_per_line_with_or_without_bom_and_crlf_keeps_the_line_numbers() -> None:
    text = 'a@example.com\r\n\r\n  R-42  \r\n"b@example.com"\r\n'
    expected = [(1, "a@example.com"), (3, "R-42"), (4, "b@example.com")]
    assert numbered_keys(text.encode()) == expected
    assert numbered_keys(b"\xef\xbb\xbf" + text.encode()) == expected


def test_a_heading_line_is_skipped_and_not_reported() -> None:
    assert numbered_keys(b"Email\na@example.com\n") == [(2, "a@example.com")]
    assert numbered_keys(b"courriel\na@example.com") == [(2, "a@example.com")]


def test_a_csv_column_is_found_by_its_heading_or_named_by_heading_or_number() -> None:
    data = b'nom;e-mail;ville\nDurand;a@example.com;Lyon\n;;\nMartin;"b@example.com";Paris\n'
    assert numbered_keys(data) == [(2, "a@example.com"), (4, "b@example.com")]
    assert numbered_keys(data, column="2") == [(2, "a@example.com"), (4, "b@example.com")]
    assert numbered_keys(data, column="Ville") == [(2, "Lyon"), (4, "Paris")]
    # By number, a first row that is no known heading is data (reported if it names nobody); a short row reports
    # its line with an empty value (the selection lists it as not a customer).
    assert numbered_keys(b"id,name\nR-1,A\n\nx\n", column="2") == [(1, "name"), (2, "A"), (4, "")]
    assert numbered_keys(b"id,name\nR-1,A\n", column="1") == [(2, "R-1")]


def test_several_columns_and_no_column_named_is_refused_not_guessed() -> None:
    assert "several columns" in refused(b"name,city\nDurand,Lyon\n").message
    assert "several columns" in refused(b"email,id\na@example.com,R-1\n").message  # two could fit: ask
    assert refused(b"a,b\n1,2\n", column="3").params == {"column": "3"}
    assert "headed" in refused(b"a,b\n1,2\n", column="email").message
    assert "one column" in refused(b"a@example.com\n", column="2").message


def test_a_stray_quote_does_not_swallow_the_next_lines() -> None:
    data = b'email,name\n"a@example.com,"Durand\nb@example.com,Martin\n'
    assert numbered_keys(data, column="1")[-1] == (3, "b@example.com")


@pytest.mark.parametrize(
    ("data", "line"),
    [
        ("a@example.com\nb@example.com\nc\xe9cile@example.com\n".encode("latin-1"), 3),
        ("a@example.com\n\x92quoted\x92\n".encode("latin-1"), 2),
        (b"\xff\xfe" + "a@example.com\n".encode("utf-16-le"), 1),
    ],
)
def test_other_encodings_are_refused_with_the_line(data: bytes, line: int) -> None:
    error = refused(data)
    assert error.status == 400 and error.params == {"line": line} and "UTF-8" in error.message


def test_utf16_without_a_bom_and_binary_files_are_refused_as_not_text() -> None:
    error = refused("a@example.com\nb@example.com\n".encode("utf-16-le"))
    assert "not a text or CSV file" in error.message and error.params == {"line": 1}
    assert "not a text or CSV file" in refused(b"PK\x03\x04\x14\x00\x06\x00").message


@pytest.mark.parametrize("data", [b"", b"\xef\xbb\xbf", b"\n\r\n  \n", b"\xef\xbb\xbf\r\n"])
def test_an_empty_file_is_refused(data: bytes) -> None:
    assert "empty" in refused(data).message


def test_an_oversize_file_or_list_is_refused_with_413() -> None:
    assert refused(b"a" * (UPLOAD_BYTES + 1)).status == 413
    assert refused(b"x\n" * 100_001).status == 413
    assert "column" in refused(b"a\n", column="\x00").message
