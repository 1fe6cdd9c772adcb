"""What one kind of record (customers, stores, purchases, consents, page views) provides to the importer.

The file importer (`portal import`, runner.py) and the retailer API call the same three steps, so a row in a CSV
file and an item in a JSON body meet the same rules and the same messages:

1. `parse(fields, line)`: one row's fields (our field names, text values after the column mapping) to a record;
   no database. Raises RowInvalid with every problem of the row.
2. `check(session, batch)`: the rules that need the database or the rows before (unknown store, unknown customer,
   a receipt number seen with different content…), read-only. Returns the problems per position in the batch and
   may complete the records (resolved ids). Called on every batch before anything is written.
3. `write(session, batch, tally)`: writes the batch in the caller's transaction and counts each outcome in `tally`.

A kind whose record spans several rows (a receipt and its lines) says so with `group_key`: the importer never cuts
a batch inside a group, and rejects the whole group when one of its rows is bad (a row `parse` refuses names its
group with `RowInvalid(errors, group=…)` when it can).

Records must pickle (dataclasses or tuples defined at module level): between its two passes the file importer
keeps the checked records in a temporary file, not in memory. A kind with many rows to a run (purchases) may also
be a `PackedKind`: the importer then keeps each checked batch as the kind packs it (plain tuples, one per group,
holding only what `write` needs), which is written and read back several times faster than the records.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar, Protocol, runtime_checkable

from sqlmodel import Session

from portal.consent.register import PurposeRegister
from portal.imports.values import Formats
from portal.settings import Settings


@dataclasses.dataclass(frozen=True)
class RowError:
    """One problem of one row: the field it is about (our name, None for the whole row) and a translated message.

    `reason` is the short code the summary counts a rejected row under when it is not a bad value ("conflict": two
    records a person must reconcile); None counts it as "invalid".
    """

    field: str | None
    message: str
    reason: str | None = None


class RowInvalid(ValueError):
    """Every problem of a row. A kind whose records span several rows gives the row's `group` (its group_key) when
    it could read it, so that the importer rejects the other rows of that group too."""

    def __init__(self, errors: Sequence[RowError], group: str | None = None) -> None:
        super().__init__("; ".join(e.message for e in errors))
        self.errors = list(errors)
        self.group = group


@dataclasses.dataclass(frozen=True)
class FieldSpec:
    """A field of a kind: its name (what a mapping maps a column to), whether a row must have it, what it holds."""

    name: str
    required: bool = False
    help: str = ""  # one line for the documentation and `portal import --help-fields`, in English


@dataclasses.dataclass
class Tally:
    """What an import did: outcome counts, reasons for what was dropped or rejected, and notes for the report.

    Outcomes are "created", "updated", "unchanged", "merged", "rejected" and "dropped"; `reasons` counts the
    "dropped" and "rejected" ones by a short code (erased, restricted, no_consent, conflict…), and `notes` lists the
    events a person should read (merges, conflicts that need a person), already translated.
    """

    outcomes: Counter[str] = dataclasses.field(default_factory=Counter)
    reasons: Counter[str] = dataclasses.field(default_factory=Counter)
    notes: list[str] = dataclasses.field(default_factory=list)

    def count(self, outcome: str, n: int = 1, *, reason: str | None = None) -> None:
        self.outcomes[outcome] += n
        if reason is not None:
            self.reasons[reason] += n

    def note(self, text: str) -> None:
        self.notes.append(text)

    def add(self, other: Tally) -> None:
        self.outcomes.update(other.outcomes)
        self.reasons.update(other.reasons)
        self.notes.extend(other.notes)


@dataclasses.dataclass(frozen=True)
class ImportContext:
    """What every step of an import may need. `source` is where the data came from, recorded with what it changes:
    "import" (files) or "api"; `actor` goes into the audit trail ("import:<file name>", "api:<key prefix>")."""

    settings: Settings
    register: PurposeRegister
    now: datetime
    source: str
    actor: str
    formats: Formats = dataclasses.field(default_factory=Formats)
    constants: Mapping[str, str] = dataclasses.field(default_factory=dict)  # a field's value for every row

    @property
    def timezone(self) -> str:
        return self.settings.timezone


class Kind(Protocol):
    """One kind of record; an instance lives for one import run and may remember what it saw (receipt numbers)."""

    name: ClassVar[str]  # "customers", "stores", "purchases", "consents", "page-views"
    fields: ClassVar[tuple[FieldSpec, ...]]

    def __init__(self, context: ImportContext) -> None: ...

    def parse(self, fields: Mapping[str, Any], line: int) -> Any: ...

    def group_key(self, record: Any) -> str | None: ...

    def check(self, session: Session, batch: Sequence[Any]) -> dict[int, list[RowError]]: ...

    def write(self, session: Session, batch: Sequence[Any], tally: Tally) -> None: ...


@runtime_checkable
class PackedKind(Protocol):
    """A kind whose checked batches the file importer keeps packed between its passes (see the module's text).

    `write_packed(session, pack(batch), tally)` must do exactly what `write(session, batch, tally)` does.
    """

    def pack(self, batch: Sequence[Any]) -> Any: ...

    def write_packed(self, session: Session, packed: Any, tally: Tally) -> None: ...
