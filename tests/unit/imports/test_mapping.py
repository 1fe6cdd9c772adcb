"""The mapping file: our field ← their column, constants, formats, delimiter; mistakes named with their place."""

from __future__ import annotations

from pathlib import Path

import pytest

from portal.i18n import using_locale
from portal.imports.kinds import FieldSpec
from portal.imports.mapping import ColumnMapping, MappingError, load_mapping
from portal.imports.registry import KINDS
from portal.imports.stores import StoresKind

FIELDS = (FieldSpec("code", required=True), FieldSpec("name", required=True), FieldSpec("when"), FieldSpec("channel"))
CONFIG = Path(__file__).resolve().parents[3] / "portal" / "config" / "import"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mapping.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_mapping_turns_their_columns_into_our_fields(tmp_path: Path) -> None:
    mapping = load_mapping(
        write(
            tmp_path,
            """
            [columns]
            code = "N° magasin"
            name = "Enseigne"
            [constants]
            channel = "in_store"
            [formats]
            date = ["%d/%m/%Y"]
            datetime = "%d/%m/%Y %H:%M"
            timezone = "Europe/Paris"
            decimal_comma = true
            [csv]
            delimiter = "\\t"
            """,
        ),
        FIELDS,
    )
    assert mapping.delimiter == "\t"
    assert mapping.formats.date == ("%d/%m/%Y",) and mapping.formats.datetime == ("%d/%m/%Y %H:%M",)
    assert mapping.formats.decimal_comma
    columns = mapping.resolve(FIELDS, ["N° magasin", "Enseigne", "when", "other"], "shops.csv")
    assert columns.fields_of({"N° magasin": "A1", "Enseigne": "Lyon", "when": None, "other": "x"}) == {
        "code": "A1",
        "name": "Lyon",
        "when": None,
        "channel": "in_store",
    }
    assert columns.column_of("code") == "N° magasin" and columns.column_of(None) == ""


def test_without_a_mapping_the_columns_are_our_field_names() -> None:
    columns = ColumnMapping().resolve(FIELDS, ["name", "code"], "x.csv")
    assert columns.fields_of({"code": "A", "name": "B"}) == {"code": "A", "name": "B"}


def test_a_missing_required_column_is_reported_once_for_the_file() -> None:
    with using_locale("en"), pytest.raises(MappingError) as raised:
        ColumnMapping(columns={"code": "Magasin"}).resolve(FIELDS, ["Code", "when"], "shops.csv")
    assert str(raised.value).startswith("shops.csv: the column(s) “Magasin”, “name” are missing")


def test_a_constant_stands_for_a_missing_column() -> None:
    columns = ColumnMapping(constants={"name": "Web"}).resolve(FIELDS, ["code"], "x.csv")
    assert columns.fields_of({"code": "W"}) == {"code": "W", "name": "Web"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[colums]\ncode = 'A'", "[colums]: unknown table"),
        ("[columns]\nshop = 'A'", "[columns] shop: unknown field; this kind has code, name, when, channel."),
        ("[columns]\ncode = ''", "[columns] code: must be a non-empty text"),
        ("[formats]\ndate = ['%Q']", "[formats] date: “%Q” is not a date format"),
        ("[formats]\ndate = ['dd/mm']", "[formats] date: “dd/mm” is not a date format"),
        ("[formats]\ntimezone = 'Mars/Olympus'", "“Mars/Olympus” is not a time zone"),
        ("[formats]\ndecimal_comma = 'yes'", "decimal_comma: must be true or false"),
        ("[formats]\nlocale = 'fr'", "[formats] locale: unknown setting"),
        ("[csv]\ndelimiter = ';;'", "[csv] delimiter: must be one character"),
        ("columns = 3", "[columns]: must be a table"),
        ("[columns\n", "not valid TOML"),
    ],
)
def test_mistakes_in_a_mapping_are_named(tmp_path: Path, text: str, expected: str) -> None:
    with using_locale("en"), pytest.raises(MappingError) as raised:
        load_mapping(write(tmp_path, text), FIELDS)
    assert str(raised.value).startswith("mapping.toml")
    assert expected in str(raised.value)


def test_every_shipped_example_mapping_loads_for_its_kind() -> None:
    examples = sorted(CONFIG.glob("*.toml"))
    assert examples
    for path in examples:
        if path.stem.replace("_", "-") in KINDS:
            load_mapping(path, KINDS[path.stem.replace("_", "-")].fields)
    assert load_mapping(CONFIG / "stores.toml", StoresKind.fields).delimiter == ";"
