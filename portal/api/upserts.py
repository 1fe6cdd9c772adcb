"""The retailer's systems pushing the records a file import brings: the same kind, rules and messages as the files."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from portal.api import schemas
from portal.consent.register import PurposeRegister
from portal.imports.apply import apply_items
from portal.imports.kinds import ImportContext
from portal.imports.stores import StoresKind
from portal.settings import Settings


def put_store(
    session: Session,
    *,
    code: str,
    change: schemas.StoreChange,
    settings: Settings,
    register: PurposeRegister,
    actor: str,
    now: datetime,
) -> schemas.StoreResult:
    """Create or update the store `code` with the file import's rules and messages; ItemsRefused says why not."""
    context = ImportContext(settings=settings, register=register, now=now, source="api", actor=actor)
    tally = apply_items(session, StoresKind(context), [{"store_code": code, **change.model_dump()}])
    (outcome,) = (name for name, n in tally.outcomes.items() if n)
    return schemas.StoreResult(code=code, outcome=outcome)
