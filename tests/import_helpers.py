"""Driving a kind of import the way the runner does, over the sample files and their example mappings.

The runner (`portal import`) reads files; these helpers read the samples just enough (CSV with the mapping's
delimiter, JSON Lines) to give a kind its rows under our field names, then parse, check and write in one transaction.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import tomllib
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from portal.consent.register import load_register
from portal.db import transaction
from portal.i18n import using_locale
from portal.imports.kinds import ImportContext, Kind, RowError, RowInvalid, Tally
from portal.imports.values import Formats
from portal.settings import PROJECT_ROOT, Settings

CONFIG = PROJECT_ROOT / "portal" / "config" / "import"
SAMPLES = CONFIG / "samples"


@dataclasses.dataclass(frozen=True)
class ColumnMapping:
    columns: dict[str, str]
    constants: dict[str, str]
    formats: Formats
    delimiter: str = ","


def load_mapping(path: Path) -> ColumnMapping:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    formats = data.get("formats", {})
    return ColumnMapping(
        columns=data.get("columns", {}),
        constants=data.get("constants", {}),
        formats=Formats(
            date=tuple(formats.get("date", ())),
            datetime=tuple(formats.get("datetime", ())),
            timezone=formats.get("timezone", "Europe/Paris"),
            decimal_comma=formats.get("decimal_comma", False),
        ),
        delimiter=data.get("csv", {}).get("delimiter", ","),
    )


def mapped_rows(path: Path, mapping: ColumnMapping | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line, fields under our names) of a CSV or JSON Lines file, through `mapping` when given."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        if path.suffix == ".jsonl":
            raw: Iterator[tuple[int, Mapping[str, Any]]] = (
                (n, json.loads(text)) for n, text in enumerate(handle, start=1) if text.strip()
            )
        else:
            reader = csv.DictReader(handle, delimiter=mapping.delimiter if mapping else ",")
            raw = ((reader.line_num, row) for row in reader)
        for line, row in raw:
            if mapping is None:
                yield line, {k: (v.strip() or None) if isinstance(v, str) else v for k, v in row.items()}
                continue
            fields = {}
            for ours, theirs in mapping.columns.items():
                value = row.get(theirs)
                fields[ours] = (value.strip() or None) if isinstance(value, str) else value
            yield line, fields


def context(
    settings: Settings, now: datetime, mapping: ColumnMapping | None = None, *, source: str = "import"
) -> ImportContext:
    return ImportContext(
        settings=settings,
        register=load_register(settings.purposes_file),
        now=now,
        source=source,
        actor=f"{source}:test",
        formats=mapping.formats if mapping else Formats(),
        constants=mapping.constants if mapping else {},
    )


@dataclasses.dataclass
class Outcome:
    tally: Tally
    errors: dict[int, list[RowError]]  # by line

    def messages(self) -> dict[int, list[tuple[str | None, str]]]:
        return {line: [(e.field, e.message) for e in found] for line, found in self.errors.items()}


def run(engine: Engine, kind: Kind, rows: list[tuple[int, dict[str, Any]]], *, locale: str = "en") -> Outcome:
    """Parse, check, then (when no row is bad) write every row in one transaction, as one batch; messages in
    `locale`, the operator's language."""
    with using_locale(locale):
        return _run(engine, kind, rows)


def _run(engine: Engine, kind: Kind, rows: list[tuple[int, dict[str, Any]]]) -> Outcome:
    records, lines, errors = [], [], {}
    for line, fields in rows:
        try:
            records.append(kind.parse(fields, line))
            lines.append(line)
        except RowInvalid as invalid:
            errors[line] = invalid.errors
    tally = Tally()
    with transaction(engine) as session:
        for position, found in kind.check(session, records).items():
            errors[lines[position]] = found
        if not errors:
            kind.write(session, records, tally)
    return Outcome(tally, errors)


SAMPLE_PEOPLE = (
    ("Camille", "Durand"),
    ("Léo", "Bernard"),
    ("Inès", "Moreau"),
    ("Hugo", "Petit"),
    ("Chloé", "Roux"),
    ("Lucas", "Fournier"),
    ("Manon", "Girard"),
    ("Nathan", "Lambert"),
    ("Léa", "Bonnet"),
    ("Jules", "Mercier"),
)


def sample_email(first: str, last: str) -> str:
    plain = str.maketrans("éèçï", "eeci")
    return f"{first.lower().translate(plain)}.{last.lower()}@example.fr"


def make_sample_customers(engine: Engine) -> dict[str, Any]:
    """The customers the sample files name: C0001…C0010, prenom.nom@example.fr, loyalty cards AUB-00000001…"""
    from tests.factories import make_customer

    return {
        f"C{n:04d}": make_customer(
            engine,
            retailer_ref=f"C{n:04d}",
            email=sample_email(first, last),
            first_name=first,
            last_name=last,
            loyalty_number=f"AUB-{n:08d}",
        )
        for n, (first, last) in enumerate(SAMPLE_PEOPLE, start=1)
    }
