"""Purchase files through the importer: the sample till export with its mapping, the web shop's JSON Lines."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from sqlalchemy import Engine

from portal.imports.kinds import ImportContext
from portal.imports.mapping import ColumnMapping, load_mapping
from portal.imports.purchases import Purchases
from portal.imports.runner import ImportReport, ImportRun
from tests.factories import make_customer, make_store
from tests.unit.imports.conftest import CONFIG, SAMPLES
from tests.unit.imports.test_purchases import assert_totals_match_a_recount, snapshot


@pytest.fixture
def known(engine: Engine) -> Engine:
    """The stores and customers the samples name, as `portal import stores|customers` leaves them."""
    for code, kind in (("PAR-01", "store"), ("LYO-01", "store"), ("WEB", "web")):
        make_store(engine, code=code, kind=kind)
    for ref, email, card in (
        ("CRM-000101", "alice.martin@example.com", "FID-5001"),
        ("CRM-000102", "bruno.petit@example.com", "FID-5002"),
        ("CRM-000103", "chloe.durand@example.org", "FID-5003"),
    ):
        make_customer(engine, retailer_ref=ref, email=email, loyalty_number=card)
    return engine


def run(engine: Engine, context: ImportContext, path: Path, mapping: Path | None = None) -> ImportReport:
    columns = load_mapping(mapping, Purchases.fields) if mapping else ColumnMapping()
    context = dataclasses.replace(context, formats=columns.formats, constants=columns.constants)
    return ImportRun(engine, Purchases(context), context, files=[str(path)], mapping=columns).run()


def test_the_till_sample_imports_with_its_mapping_and_again_changes_nothing(known, import_context, settings) -> None:
    report = run(known, import_context, SAMPLES / "purchases.csv", CONFIG / "purchases.toml")
    assert (report.read, report.rejected) == (7, 0)
    assert (dict(report.tally.outcomes), dict(report.tally.reasons)) == ({"created": 3, "dropped": 1}, {"anonymous": 1})
    purchases, lines, _ = snapshot(known)
    assert [(p.receipt_number, p.channel, p.total_cents) for p in purchases] == [
        ("PAR-01-000123", "in_store", 4288),
        ("LYO-01-000078", "in_store", 4570),
        ("LYO-01-000079", "in_store", 3870),
    ]
    assert len(lines) == 6
    before = snapshot(known)
    again = run(known, import_context, SAMPLES / "purchases.csv", CONFIG / "purchases.toml")
    assert dict(again.tally.outcomes) == {"unchanged": 3, "dropped": 1}
    assert snapshot(known) == before
    assert_totals_match_a_recount(known, settings.timezone)


def test_the_web_shop_sample_holds_whole_receipts(known, import_context, settings) -> None:
    report = run(known, import_context, SAMPLES / "purchases.jsonl")
    assert dict(report.tally.outcomes) == {"created": 2}
    purchases, lines, _ = snapshot(known)
    assert [(p.channel, p.total_cents) for p in purchases] == [("web", 6480), ("click_and_collect", 4380)]
    assert len(lines) == 3
    assert_totals_match_a_recount(known, settings.timezone)


def test_bad_rows_are_reported_under_the_exports_own_columns(known, import_context, tmp_path: Path) -> None:
    rows = (SAMPLES / "purchases.csv").read_text(encoding="utf-8").splitlines()
    rows[2] = rows[2].replace(";2;8,99;", ";-2;8,99;")  # line 3: a negative quantity
    rows[4] = rows[4].replace("LYO-01;", "NCE-01;", 1)  # line 5: an unknown store, in a receipt's first row
    path = tmp_path / "ventes.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    report = run(known, import_context, path, CONFIG / "purchases.toml")
    found = sorted((p.line, p.column) for p in report.problems)
    assert (3, "Qté") in found and (5, "Magasin") in found
    assert not report.written
    assert snapshot(known)[0] == []
