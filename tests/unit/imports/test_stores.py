"""The stores kind, from files and through apply_items (what the API calls), on both databases."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from portal.db import transaction
from portal.i18n import using_locale
from portal.imports.apply import ItemsRefused, apply_items
from portal.imports.kinds import RowInvalid
from portal.imports.stores import StoresKind
from portal.models import AuditEvent
from tests.unit.imports.conftest import CONFIG, SAMPLES, stores_in


def test_the_sample_imports_with_its_mapping_and_again_changes_nothing(engine, run_import) -> None:
    report = run_import(StoresKind, SAMPLES / "stores.csv", mapping=CONFIG / "stores.toml")
    assert report.read == 4 and report.tally.outcomes == {"created": 4}
    assert stores_in(engine)["WEB"] == ("Boutique en ligne", None, "web")
    assert stores_in(engine)["LYO-01"] == ("Maison Aubépine Lyon Presqu'île", "Lyon", "store")
    again = run_import(StoresKind, SAMPLES / "stores.csv", mapping=CONFIG / "stores.toml")
    assert again.tally.outcomes == {"unchanged": 4}
    with transaction(engine) as session:
        actions = sorted(e.action for e in session.scalars(select(AuditEvent)))
    assert actions == ["import.batch_written"] * 2 + ["store.created"] * 4


def test_a_changed_row_updates_the_store(engine, run_import, tmp_path: Path) -> None:
    run_import(StoresKind, SAMPLES / "stores.csv", mapping=CONFIG / "stores.toml")
    changed = tmp_path / "stores.csv"
    changed.write_text("store_code,name,city\nLYO-01,Maison Aubépine Lyon Confluence,Lyon\n", encoding="utf-8")
    report = run_import(StoresKind, changed)
    assert report.tally.outcomes == {"updated": 1}
    assert stores_in(engine)["LYO-01"][0] == "Maison Aubépine Lyon Confluence"
    with transaction(engine) as session:
        updated = session.scalars(select(AuditEvent).where(AuditEvent.action == "store.updated")).one()
    assert updated.target == "store:LYO-01" and updated.actor == "import:test.csv"


def test_parse_refuses_what_cannot_be_a_store(import_context) -> None:
    kind = StoresKind(import_context)
    assert kind.parse({"store_code": 42, "name": "Web", "kind": "Internet"}, 1).code == "42"
    with using_locale("en"), pytest.raises(RowInvalid) as raised:
        kind.parse({"store_code": "X" * 17, "name": None, "city": "a\x07b", "kind": "kiosk"}, 1)
    assert {(e.field, e.message) for e in raised.value.errors} == {
        ("store_code", "This value is longer than 16 characters."),
        ("name", "This field is required."),
        ("city", "This value contains control characters."),
        ("kind", "“kiosk” is neither store nor web."),
    }


def test_a_code_twice_with_different_content_is_refused(engine, import_context) -> None:
    kind = StoresKind(import_context)
    records = [kind.parse({"store_code": "A", "name": n}, i) for i, n in ((2, "One"), (3, "One"), (4, "Two"))]
    with transaction(engine) as session, using_locale("en"):
        problems = kind.check(session, records)
    assert list(problems) == [2]
    assert problems[2][0].message == "The store code “A” is also on line 2 with a different name, city or kind."


def test_apply_items_writes_all_or_nothing(engine, import_context) -> None:
    with transaction(engine) as session:
        tally = apply_items(session, StoresKind(import_context), [{"store_code": "A", "name": "Shop A"}])
    assert tally.outcomes == {"created": 1}
    with pytest.raises(ItemsRefused), transaction(engine) as session:
        apply_items(session, StoresKind(import_context), [{"store_code": "B", "name": "B"}, {"store_code": "C"}])
    assert set(stores_in(engine)) == {"A"}
