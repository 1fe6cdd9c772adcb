"""Stores and the web shop, by the retailer's store code: created, updated or found unchanged."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from sqlalchemy import select
from sqlmodel import Session

from portal.audit import record_audit
from portal.i18n import gettext
from portal.imports.kinds import FieldSpec, ImportContext, RowError, RowInvalid, Tally
from portal.models import Store
from portal.models.commerce import STORE_KIND_SHOP, STORE_KIND_WEB

STORE_KINDS = {
    "store": STORE_KIND_SHOP,
    "shop": STORE_KIND_SHOP,
    "magasin": STORE_KIND_SHOP,
    "web": STORE_KIND_WEB,
    "online": STORE_KIND_WEB,
    "internet": STORE_KIND_WEB,
}


@dataclasses.dataclass(frozen=True)
class StoreRecord:
    code: str
    name: str
    city: str | None
    kind: str
    line: int

    @property
    def content(self) -> tuple[str, str | None, str]:
        return (self.name, self.city, self.kind)


def text_field(
    fields: Mapping[str, Any], name: str, errors: list[RowError], *, limit: int, required: bool = False
) -> str | None:
    """A text field as given (a number in a JSON body reads as its digits), checked for length and control
    characters; appends to `errors` and returns None when it is unusable."""
    value = fields.get(name)
    if isinstance(value, bool | list | dict):
        errors.append(RowError(name, gettext("Expected a text.")))
        return None
    text = "" if value is None else str(value).strip()
    if not text:
        if required:
            errors.append(RowError(name, gettext("This field is required.")))
        return None
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        errors.append(RowError(name, gettext("This value contains control characters.")))
        return None
    if len(text) > limit:
        errors.append(RowError(name, gettext("This value is longer than %(limit)s characters.", limit=limit)))
        return None
    return text


class StoresKind:
    """Upsert by store code. A code given twice in one run with different content is refused: which is right
    needs a person."""

    name: ClassVar[str] = "stores"
    fields: ClassVar[tuple[FieldSpec, ...]] = (
        FieldSpec("store_code", required=True, help="the retailer's store code, e.g. LYO-01 (16 characters at most)"),
        FieldSpec("name", required=True, help="the store's name as customers know it"),
        FieldSpec("city", help="the town it is in (empty for the web shop)"),
        FieldSpec("kind", help="store (a shop, the default) or web (the web shop)"),
    )

    def __init__(self, context: ImportContext) -> None:
        self.context = context
        self._seen: dict[str, StoreRecord] = {}

    def parse(self, fields: Mapping[str, Any], line: int) -> StoreRecord:
        errors: list[RowError] = []
        code = text_field(fields, "store_code", errors, limit=16, required=True)
        name = text_field(fields, "name", errors, limit=100, required=True)
        city = text_field(fields, "city", errors, limit=100)
        kind_text = text_field(fields, "kind", errors, limit=16)
        kind = STORE_KINDS.get((kind_text or "store").casefold())
        if kind is None:
            errors.append(RowError("kind", gettext("“%(value)s” is neither store nor web.", value=kind_text)))
        if errors:
            raise RowInvalid(errors)
        assert code is not None and name is not None and kind is not None
        return StoreRecord(code=code, name=name, city=city, kind=kind, line=line)

    def group_key(self, record: StoreRecord) -> str | None:
        return None

    def check(self, session: Session, batch: Sequence[StoreRecord]) -> dict[int, list[RowError]]:
        problems: dict[int, list[RowError]] = {}
        for position, record in enumerate(batch):
            earlier = self._seen.setdefault(record.code, record)
            if earlier.content != record.content:
                message = gettext(
                    "The store code “%(code)s” is also on line %(line)s with a different name, city or kind.",
                    code=record.code,
                    line=earlier.line,
                )
                problems[position] = [RowError("store_code", message)]
        return problems

    def write(self, session: Session, batch: Sequence[StoreRecord], tally: Tally) -> None:
        codes = sorted({record.code for record in batch})
        stored = {store.code: store for store in session.scalars(select(Store).where(Store.code.in_(codes)))}
        for record in batch:
            store = stored.get(record.code)
            if store is None:
                store = Store(code=record.code, name=record.name, city=record.city, kind=record.kind)
                session.add(store)
                stored[record.code] = store
                outcome = "created"
            elif (store.name, store.city, store.kind) != record.content:
                store.name, store.city, store.kind = record.content
                outcome = "updated"
            else:
                tally.count("unchanged")
                continue
            tally.count(outcome)
            record_audit(
                session,
                actor=self.context.actor,
                action=f"store.{outcome}",
                target=f"store:{record.code}",
                detail={"source": self.context.source},
                now=self.context.now,
            )
