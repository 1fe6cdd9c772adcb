"""The column mapping: how a retailer's export names and writes our fields, so their files import unedited.

A small TOML file (examples in portal/config/import/):

    [columns]     our field = their column (CSV header, or JSON Lines key)
    [constants]   a field's value on every row, when the export has no column for it
    [formats]     date / datetime (strptime formats tried in order), timezone, decimal_comma
    [csv]         delimiter (sniffed from the header otherwise)

Without a mapping file the columns are our field names.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from portal.i18n import gettext
from portal.imports.kinds import FieldSpec
from portal.imports.values import Formats

TABLES = ("columns", "constants", "formats", "csv")
FORMAT_KEYS = ("date", "datetime", "timezone", "decimal_comma")
# A date every strptime format must read back, to refuse a format that cannot work before reading any row.
_PROBE = datetime(2026, 11, 23, 14, 5, 9)  # noqa: DTZ001 - only formatted and parsed back


class MappingError(ValueError):
    """The mapping file cannot be used; the message names the file and what is wrong."""


@dataclasses.dataclass(frozen=True)
class ColumnMapping:
    columns: Mapping[str, str] = dataclasses.field(default_factory=dict)  # our field → their column
    constants: Mapping[str, str] = dataclasses.field(default_factory=dict)
    formats: Formats = dataclasses.field(default_factory=Formats)
    delimiter: str | None = None

    def column_of(self, field: str) -> str:
        """The retailer's name for one of our fields, as errors report it."""
        return self.columns.get(field, field)

    def resolve(self, fields: Sequence[FieldSpec], header: Sequence[str] | None, source: str) -> FileColumns:
        """Which column of this file holds each field. A required field with neither a column in the header nor a
        constant is a mistake of the whole file, reported once (JSON Lines have no header: each row says)."""
        wanted = {spec.name: self.column_of(spec.name) for spec in fields}
        if header is None:
            return FileColumns(wanted, dict(self.constants))
        position = {name: index for index, name in enumerate(header)}
        missing = [
            column
            for spec in fields
            if spec.required and (column := wanted[spec.name]) not in position and spec.name not in self.constants
        ]
        if missing:
            raise MappingError(
                gettext(
                    "%(file)s: the column(s) %(columns)s are missing from the header (found: %(found)s); name"
                    " them in the mapping file's [columns] table if the export calls them otherwise.",
                    file=source,
                    columns=", ".join(f"“{name}”" for name in missing),
                    found=", ".join(f"“{name}”" for name in header),
                )
            )
        present = {field: column for field, column in wanted.items() if column in position}
        return FileColumns(
            present, dict(self.constants), {field: position[column] for field, column in present.items()}
        )


@dataclasses.dataclass(frozen=True)
class FileColumns:
    """The mapping resolved against one file's header: turns a raw row into our fields."""

    columns: Mapping[str, str]  # our field → the column holding it
    constants: Mapping[str, str]
    positions: Mapping[str, int] | None = None  # our field → its place in a CSV row (None for JSON Lines)

    def fields_of(self, values: Sequence[str | None] | dict[str, Any]) -> dict[str, Any]:
        if isinstance(values, dict):  # a JSON Lines object (dict, not Mapping: an ABC check costs, a million times)
            fields = {field: values.get(column) for field, column in self.columns.items()}
        else:
            assert self.positions is not None
            fields = {field: values[index] for field, index in self.positions.items()}
        if self.constants:
            for field, value in self.constants.items():
                if fields.get(field) in (None, ""):
                    fields[field] = value
        return fields

    def column_of(self, field: str | None) -> str:
        if field is None:
            return ""
        return self.columns.get(field, field)


def load_mapping(path: str | Path, fields: Sequence[FieldSpec]) -> ColumnMapping:
    """Read and check a mapping file for a kind whose fields are `fields`."""
    path = Path(path)
    try:
        with path.open("rb") as stream:
            data = tomllib.load(stream)
    except OSError as exc:
        raise MappingError(gettext("%(file)s: cannot be read (%(reason)s).", file=path, reason=exc.strerror)) from None
    except tomllib.TOMLDecodeError as exc:
        raise MappingError(gettext("%(file)s: not valid TOML (%(reason)s).", file=path.name, reason=str(exc))) from None
    return _Reader(path, fields).mapping(data)


class _Reader:
    def __init__(self, path: Path, fields: Sequence[FieldSpec]) -> None:
        self.path = path
        self.known = [spec.name for spec in fields]

    def fail(self, where: str, message: str) -> MappingError:
        return MappingError(gettext("%(file)s, %(where)s: %(problem)s", file=self.path.name, where=where,
                                    problem=message))  # fmt: skip

    def mapping(self, data: Mapping[str, Any]) -> ColumnMapping:
        for table in data:
            if table not in TABLES:
                raise self.fail(
                    f"[{table}]",
                    gettext("unknown table; a mapping has %(tables)s.", tables=", ".join(f"[{t}]" for t in TABLES)),
                )
        return ColumnMapping(
            columns=self.texts(data, "columns", allow_scalars=False),
            constants=self.texts(data, "constants", allow_scalars=True),
            formats=self.formats(self.table(data, "formats")),
            delimiter=self.delimiter(self.table(data, "csv")),
        )

    def table(self, data: Mapping[str, Any], name: str) -> Mapping[str, Any]:
        value = data.get(name, {})
        if not isinstance(value, dict):
            raise self.fail(f"[{name}]", gettext("must be a table."))
        return value

    def texts(self, data: Mapping[str, Any], name: str, *, allow_scalars: bool) -> dict[str, str]:
        texts = {}
        for field, value in self.table(data, name).items():
            where = f"[{name}] {field}"
            if field not in self.known:
                raise self.fail(
                    where, gettext("unknown field; this kind has %(fields)s.", fields=", ".join(self.known))
                )
            if isinstance(value, bool | int | float) and allow_scalars:
                value = str(value).lower() if isinstance(value, bool) else str(value)
            if not isinstance(value, str) or not value.strip():
                raise self.fail(where, gettext("must be a non-empty text in quotes."))
            texts[field] = value.strip()
        return texts

    def formats(self, table: Mapping[str, Any]) -> Formats:
        for key in table:
            if key not in FORMAT_KEYS:
                raise self.fail(f"[formats] {key}", gettext("unknown setting; [formats] has %(keys)s.",
                                                            keys=", ".join(FORMAT_KEYS)))  # fmt: skip
        timezone = table.get("timezone", Formats.timezone)
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            raise self.fail("[formats] timezone", gettext("“%(value)s” is not a time zone like Europe/Paris.",
                                                          value=timezone)) from None  # fmt: skip
        decimal_comma = table.get("decimal_comma", False)
        if not isinstance(decimal_comma, bool):
            raise self.fail("[formats] decimal_comma", gettext("must be true or false."))
        return Formats(
            date=self.patterns(table, "date"),
            datetime=self.patterns(table, "datetime"),
            timezone=timezone,
            decimal_comma=decimal_comma,
        )

    def patterns(self, table: Mapping[str, Any], key: str) -> tuple[str, ...]:
        value = table.get(key, [])
        patterns = [value] if isinstance(value, str) else value
        if not isinstance(patterns, list) or not all(isinstance(p, str) and p for p in patterns):
            raise self.fail(
                f"[formats] {key}", gettext("must be a list of formats such as %(example)s.", example='["%d/%m/%Y"]')
            )
        for pattern in patterns:
            try:
                readable = "%" in pattern and datetime.strptime(_PROBE.strftime(pattern), pattern) is not None  # noqa: DTZ007 - a format check only
            except ValueError:
                readable = False
            if not readable:
                raise self.fail(
                    f"[formats] {key}",
                    gettext("“%(value)s” is not a date format such as %(example)s.", value=pattern,
                            example="%d/%m/%Y %H:%M"),
                )  # fmt: skip
        return tuple(patterns)

    def delimiter(self, table: Mapping[str, Any]) -> str | None:
        for key in table:
            if key != "delimiter":
                raise self.fail(f"[csv] {key}", gettext("unknown setting; [csv] has delimiter."))
        value = table.get("delimiter")
        if value is None:
            return None
        if value == "\\t":
            value = "\t"
        if not isinstance(value, str) or len(value) != 1 or value in ('"', "\r", "\n"):
            raise self.fail(
                "[csv] delimiter", gettext("must be one character, such as %(example)s.", example='";" or "\\t"')
            )
        return value
