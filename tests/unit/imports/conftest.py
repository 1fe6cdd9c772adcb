"""What the import tests share: an import context, a runner over files of one kind, the stores in the database."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from portal.consent.register import load_register
from portal.db import transaction
from portal.imports.kinds import ImportContext, Kind
from portal.imports.mapping import ColumnMapping, load_mapping
from portal.imports.runner import ImportReport, ImportRun
from portal.models import Store
from portal.settings import Settings

CONFIG = Path(__file__).resolve().parents[3] / "portal" / "config" / "import"
SAMPLES = CONFIG / "samples"


@pytest.fixture
def import_context(settings: Settings, clock) -> ImportContext:  # type: ignore[no-untyped-def]
    return ImportContext(
        settings=settings, register=load_register(settings.purposes_file), now=clock(), source="import",
        actor="import:test.csv",
    )  # fmt: skip


RunImport = Callable[..., ImportReport]


@pytest.fixture
def run_import(engine: Engine, import_context: ImportContext) -> RunImport:
    def run(kind_class: type[Kind], *files: Path | str, mapping: Path | None = None, **options: object) -> ImportReport:
        columns = load_mapping(mapping, kind_class.fields) if mapping else ColumnMapping()
        kind = kind_class(import_context)
        return ImportRun(
            engine,
            kind,
            import_context,
            files=[str(f) for f in files],
            mapping=columns,
            **options,  # type: ignore[arg-type]
        ).run()

    return run


def stores_in(engine: Engine) -> dict[str, tuple[str, str | None, str]]:
    with transaction(engine) as session:
        return {s.code: (s.name, s.city, s.kind) for s in session.scalars(select(Store))}
