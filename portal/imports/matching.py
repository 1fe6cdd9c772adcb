"""One record per customer: which existing record(s) a row is about, and what to do with them.

A row is matched by the retailer's customer id, then by the normalised email address, then by the loyalty number
(the order of trust: an id the retailer's systems assigned, an address the customer proved, a card number). When
its identifiers point at two records, the row proves they are one person and they are merged, unless something only
a person can settle stands in the way (two different customer ids, two different loyalty cards, a restricted
record): that is a conflict, reported and never guessed.

The same `resolve` runs twice: when the file is checked, over a model of the records (`Person`) that follows the
rows before, and when it is written, over the real ones; so what the check accepts is what the write does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlmodel import Session

from portal.i18n import gettext
from portal.imports.kinds import RowError
from portal.imports.lookup import CustomerRef
from portal.models import Customer

FAR_FUTURE = datetime.max
_MATCHED = (
    Customer.id,
    Customer.retailer_ref,
    Customer.email_key,
    Customer.loyalty_number,
    Customer.restricted_at,
    Customer.created_at,
)


@dataclasses.dataclass(eq=False)
class Person:
    """What matching needs of a customer record; `customer` is the row itself when writing."""

    id: int | None
    retailer_ref: str | None
    email_key: str | None
    loyalty_number: str | None
    restricted: bool
    created_at: datetime | None
    customer: Customer | None = None

    @classmethod
    def of(cls, customer: Customer, *, keep_row: bool) -> Person:
        return cls(
            id=customer.id,
            retailer_ref=customer.retailer_ref,
            email_key=customer.email_key,
            loyalty_number=customer.loyalty_number,
            restricted=customer.restricted_at is not None,
            created_at=customer.created_at,
            customer=customer if keep_row else None,
        )

    @property
    def age(self) -> tuple[datetime, int]:
        """Older records first; a record made by this import (no id yet) is the newest."""
        created = self.created_at.replace(tzinfo=None) if self.created_at else FAR_FUTURE
        return (created, self.id if self.id is not None else 2**63)


@dataclasses.dataclass(frozen=True)
class Decision:
    """create | update | merge | restricted | conflict."""

    action: str
    target: Person | None = None
    absorbed: tuple[Person, ...] = ()
    error: RowError | None = None


class People:
    """The records rows are matched against, indexed by the three identifiers."""

    def __init__(self) -> None:
        self.by_id: dict[int, Person] = {}
        self.by_ref: dict[str, Person] = {}
        self.by_email: dict[str, Person] = {}
        self.by_loyalty: dict[str, Person] = {}

    def load(self, session: Session, refs: Iterable[CustomerRef], *, keep_rows: bool) -> None:
        """Add the live records the rows name, unless already known (what a check saw before wins: it is newer)."""
        refs = list(refs)
        conditions: list[Any] = []
        for column, wanted in (
            (Customer.retailer_ref, {r.retailer_id for r in refs if r.retailer_id} - self.by_ref.keys()),
            (Customer.email_key, {k for r in refs if (k := r.email_key)} - self.by_email.keys()),
            (Customer.loyalty_number, {r.loyalty_number for r in refs if r.loyalty_number} - self.by_loyalty.keys()),
        ):
            if wanted:
                conditions.append(column.in_(sorted(wanted)))
        if not conditions:
            return
        where = (Customer.erased_at.is_(None), or_(*conditions))
        if keep_rows:
            for customer in session.scalars(select(Customer).where(*where).order_by(Customer.id)):
                if customer.id not in self.by_id:
                    self.add(Person.of(customer, keep_row=True))
            return
        # The check reads only what matching needs: no row objects kept in the session for a whole file.
        for row in session.execute(select(*_MATCHED).where(*where).order_by(Customer.id)):
            if row.id not in self.by_id:
                self.add(
                    Person(row.id, row.retailer_ref, row.email_key, row.loyalty_number, row.restricted_at is not None,
                           row.created_at)
                )  # fmt: skip

    def add(self, person: Person) -> None:
        if person.id is not None:
            self.by_id[person.id] = person
        if person.retailer_ref:
            self.by_ref[person.retailer_ref] = person
        if person.email_key:
            self.by_email[person.email_key] = person
        if person.loyalty_number:
            self.by_loyalty.setdefault(person.loyalty_number, person)

    def forget(self, person: Person) -> None:
        for index, key in (
            (self.by_ref, person.retailer_ref),
            (self.by_email, person.email_key),
            (self.by_loyalty, person.loyalty_number),
        ):
            if key and index.get(key) is person:
                del index[key]

    def update(self, person: Person, ref: CustomerRef) -> None:
        """The person now also holds the row's identifiers."""
        self.forget(person)
        person.retailer_ref = ref.retailer_id or person.retailer_ref
        person.email_key = ref.email_key or person.email_key
        person.loyalty_number = ref.loyalty_number or person.loyalty_number
        self.add(person)

    def candidates(self, ref: CustomerRef) -> list[tuple[str, Person]]:
        """The distinct records the row's identifiers point at, in the order of trust, with what matched."""
        found: list[tuple[str, Person]] = []
        for how, index, key in (
            ("customer_id", self.by_ref, ref.retailer_id),
            ("email", self.by_email, ref.email_key),
            ("loyalty_number", self.by_loyalty, ref.loyalty_number),
        ):
            person = index.get(key) if key else None
            if person is not None and all(person is not other for _how, other in found):
                found.append((how, person))
        return found


def _conflict(field: str, message: str) -> Decision:
    return Decision("conflict", error=RowError(field, message, reason="conflict"))


def _differs(mine: str | None, theirs: str | None) -> bool:
    return bool(mine and theirs and mine != theirs)


def resolve(people: People, ref: CustomerRef) -> Decision:
    """What the row does: create a record, update one, merge several, or nothing (restricted, conflict)."""
    found = people.candidates(ref)
    if not found:
        return Decision("create")
    persons = [person for _how, person in found]
    if len(found) == 1:
        how, person = found[0]
        if person.restricted:
            return Decision("restricted", target=person)
        if how != "customer_id" and _differs(ref.retailer_id, person.retailer_ref):
            return _conflict(
                how,
                gettext(
                    "This customer is already on file under another customer id (%(other)s): a person must decide "
                    "whether they are the same.",
                    other=person.retailer_ref,
                ),
            )
        if how == "email" and _differs(ref.loyalty_number, person.loyalty_number):
            return _conflict(
                "loyalty_number",
                gettext(
                    "The customer with this email address has another loyalty card (%(other)s): a person must "
                    "decide which one is right.",
                    other=person.loyalty_number,
                ),
            )
        if how == "loyalty_number" and _differs(ref.email_key, person.email_key):
            return _conflict(
                "email",
                gettext(
                    "This loyalty card belongs to a customer with another email address: a person must decide "
                    "whether they are the same."
                ),
            )
        return Decision("update", target=person)
    if any(person.restricted for person in persons):
        return _conflict(
            found[1][0],
            gettext(
                "This row names two customer records, one of them with its processing restricted: a person must "
                "decide whether to merge them."
            ),
        )
    retailer_ids = {p.retailer_ref for p in persons if p.retailer_ref} | ({ref.retailer_id} - {None})
    if len(retailer_ids) > 1:
        return _conflict(
            found[1][0],
            gettext(
                "This row names two customer records with different customer ids (%(ids)s): a person must decide "
                "whether they are the same.",
                ids=", ".join(sorted(i for i in retailer_ids if i)),
            ),
        )
    cards = {p.loyalty_number for p in persons if p.loyalty_number} | ({ref.loyalty_number} - {None})
    if len(cards) > 1:
        return _conflict(
            "loyalty_number",
            gettext(
                "This row names two customer records with different loyalty cards (%(cards)s): a person must decide "
                "which one is right.",
                cards=", ".join(sorted(c for c in cards if c)),
            ),
        )
    survivor = persons[0] if found[0][0] == "customer_id" else min(persons, key=lambda p: p.age)
    return Decision("merge", target=survivor, absorbed=tuple(p for p in persons if p is not survivor))
