"""The consents and page-views kinds through `portal import`'s runner: the sample files, their example mappings,
gzip, and a report naming the retailer's own columns."""

from __future__ import annotations

import gzip
from pathlib import Path

from sqlalchemy import Engine, func, select

from portal.consent.register import load_register
from portal.db import transaction
from portal.i18n import using_locale
from portal.imports.browsing import PageViewsKind
from portal.imports.consents import ConsentsKind
from portal.imports.kinds import ImportContext, Kind
from portal.imports.mapping import load_mapping
from portal.imports.runner import ImportReport, ImportRun
from portal.models import ConsentEvent, PageView
from portal.settings import Settings
from tests.import_helpers import CONFIG, SAMPLES, make_sample_customers


def import_file(
    engine: Engine, settings: Settings, clock, kind_class: type[Kind], path: Path, mapping: str, **options
) -> ImportReport:  # type: ignore[no-untyped-def]
    columns = load_mapping(CONFIG / mapping, kind_class.fields)
    context = ImportContext(
        settings=settings,
        register=load_register(settings.purposes_file),
        now=clock(),
        source="import",
        actor=f"import:{path.name}",
        formats=columns.formats,
        constants=columns.constants,
    )
    with using_locale("en"):
        return ImportRun(engine, kind_class(context), context, files=[str(path)], mapping=columns, **options).run()


def count(engine: Engine, model) -> int:  # type: ignore[no-untyped-def]
    with transaction(engine) as session:
        return session.execute(select(func.count()).select_from(model)).scalar_one()


def test_the_samples_import_with_their_example_mappings(engine, settings, clock, tmp_path) -> None:
    make_sample_customers(engine)
    report = import_file(engine, settings, clock, ConsentsKind, SAMPLES / "consents.csv", "consents.toml")
    assert report.read == 14 and report.tally.outcomes == {"created": 13, "unchanged": 1}
    zipped = tmp_path / "page-views.csv.gz"
    zipped.write_bytes(gzip.compress((SAMPLES / "page-views.csv").read_bytes()))
    report = import_file(engine, settings, clock, PageViewsKind, zipped, "page-views.toml")
    assert report.read == 8 and report.tally.outcomes == {"created": 4, "dropped": 4}
    again = import_file(engine, settings, clock, PageViewsKind, SAMPLES / "page-views.jsonl", "page-views.toml")
    assert again.tally.outcomes == {"unchanged": 4, "dropped": 4}
    assert count(engine, PageView) == 4


def test_a_file_with_bad_rows_imports_nothing_and_names_their_columns(engine, settings, clock, tmp_path) -> None:
    make_sample_customers(engine)
    path = tmp_path / "crm.csv"
    lines = (SAMPLES / "consents.csv").read_text(encoding="utf-8").splitlines()
    lines[3] = "C0001;;;newsletter;oui;02/02/2022 17:45;"
    lines[5] = "C0404;;;browsing_analytics;oui;05/10/2021 11:04;"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = import_file(engine, settings, clock, ConsentsKind, path, "consents.toml")
    assert [(p.line, p.column) for p in report.problems] == [(4, "Finalité"), (6, "N° client")]
    assert report.problems[1].message == "No customer matches this row."
    assert count(engine, ConsentEvent) == 0
    rejects = tmp_path / "rejects.csv"
    report = import_file(engine, settings, clock, ConsentsKind, path, "consents.toml", rejects_path=str(rejects))
    assert report.tally.outcomes == {"created": 11, "unchanged": 1} and count(engine, ConsentEvent) == 11
    assert "newsletter" in rejects.read_text(encoding="utf-8")
