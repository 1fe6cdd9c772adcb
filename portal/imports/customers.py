"""The customers kind: one record per customer from the CRM, the tills and the web shop, kept true day after day.

Rows are matched and merged as `matching.py` says. Rights come first: a row naming an erased customer (by email
address or customer id, through the tombstone's keyed hashes) recreates nothing, and a restricted customer's
record is neither enriched nor changed; both are counted as dropped. A changed value leaves a `ProfileChange` with
the import's channel ("import" or "api"), which the customer reads in the history of their profile.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select
from sqlmodel import Session

from portal.audit import record_audit
from portal.erasure.tombstone import erased_email_hash, erased_ref_hash
from portal.i18n import gettext
from portal.imports.customer_values import FIELDS, CustomerRow, parse_customer
from portal.imports.kinds import FieldSpec, ImportContext, RowError, Tally
from portal.imports.matching import Decision, People, Person, resolve
from portal.imports.merge import merge_customers
from portal.models import Customer
from portal.profile.service import apply_changes

SOURCE = "import"  # customer.source of a record an import creates (from a file or through the API)
NEW_COLUMNS = (
    "retailer_ref",
    "email",
    "email_key",
    "first_name",
    "last_name",
    "phone",
    "address_line1",
    "address_line2",
    "postal_code",
    "city",
    "country",
    "birth_date",
    "loyalty_number",
    "preferred_language",
)


class CustomersKind:
    name: ClassVar[str] = "customers"
    fields: ClassVar[tuple[FieldSpec, ...]] = FIELDS

    def __init__(self, context: ImportContext) -> None:
        self.context = context
        self.today = context.now.astimezone(ZoneInfo(context.timezone)).date()
        # The check's model of the records, following the rows checked so far (a file's rows see the rows before).
        self._checked = People()

    def parse(self, fields: Mapping[str, Any], line: int) -> CustomerRow:
        given = {**self.context.constants, **{k: v for k, v in fields.items() if v is not None}}
        return parse_customer(given, line, today=self.today, formats=self.context.formats)

    def group_key(self, record: CustomerRow) -> str | None:
        return None

    def check(self, session: Session, batch: Sequence[CustomerRow]) -> dict[int, list[RowError]]:
        self._checked.load(session, [row.ref for row in batch], keep_rows=False)
        erased = self._erased(session, batch, self._checked)
        problems: dict[int, list[RowError]] = {}
        for position, row in enumerate(batch):
            if position in erased:
                continue
            decision = resolve(self._checked, row.ref)
            if decision.error is not None:
                problems[position] = [decision.error]
            elif decision.action == "create":
                ref = row.ref
                self._checked.add(Person(None, ref.retailer_id, ref.email_key, ref.loyalty_number, False, None))
            elif decision.action in ("update", "merge") and decision.target is not None:
                for other in decision.absorbed:
                    self._checked.forget(other)
                self._checked.update(decision.target, row.ref)
        return problems

    def write(self, session: Session, batch: Sequence[CustomerRow], tally: Tally) -> None:
        people = People()
        people.load(session, [row.ref for row in batch], keep_rows=True)
        erased = self._erased(session, batch, people)
        done = Tally()
        created: list[tuple[Person, dict[str, Any]]] = []
        for position, row in enumerate(batch):
            if position in erased:
                done.count("dropped", reason="erased")
                continue
            decision = resolve(people, row.ref)
            touched = [p for p in (decision.target, *decision.absorbed) if p is not None]
            if any(person.customer is None for person in touched):  # a record made by an earlier row of the batch
                self._insert(session, created)
                for person in touched:
                    person.customer = person.customer or session.get(Customer, person.id)
            self._apply(session, people, row, decision, created, done)
        self._insert(session, created)
        if done.outcomes["created"] or done.outcomes["updated"] or done.outcomes["merged"]:
            record_audit(
                session,
                actor=self.context.actor,
                action="customer.imported",
                detail={
                    **{k: done.outcomes[k] for k in ("created", "updated", "merged", "unchanged", "dropped")},
                    "channel": self.context.source,
                },
                now=self.context.now,
            )
        session.flush()
        tally.add(done)

    # --- Writing one row ------------------------------------------------------------------------------------------

    def _apply(
        self,
        session: Session,
        people: People,
        row: CustomerRow,
        decision: Decision,
        created: list[tuple[Person, dict[str, Any]]],
        tally: Tally,
    ) -> None:
        if decision.error is not None:  # the records changed since the check (another import, a customer's edit)
            tally.count("rejected", reason=decision.error.reason or "conflict")
            tally.note(gettext("Line %(line)s: %(problem)s", line=row.line, problem=decision.error.message))
            return
        if decision.action == "restricted":
            tally.count("dropped", reason="restricted")
            return
        if decision.action == "create":
            ref = row.ref
            person = Person(None, ref.retailer_id, ref.email_key, ref.loyalty_number, False, self.context.now)
            people.add(person)
            created.append((person, self._new_values(row)))
            tally.count("created")
            return
        target = decision.target
        assert target is not None and target.customer is not None
        for other in decision.absorbed:
            assert other.customer is not None
            report = merge_customers(
                session,
                target.customer,
                other.customer,
                actor=self.context.actor,
                source=self.context.source,
                now=self.context.now,
            )
            people.forget(other)
            tally.note(
                gettext(
                    "Line %(line)s: customer records %(kept)s and %(merged)s were one person; merged into %(kept)s.",
                    line=row.line,
                    kept=report.survivor_id,
                    merged=report.absorbed_id,
                )
            )
        people.forget(target)
        changed = self._update(session, target.customer, row)
        people.add(Person.of(target.customer, keep_row=True))
        tally.count("merged" if decision.absorbed else "updated" if changed else "unchanged")

    def _new_values(self, row: CustomerRow) -> dict[str, Any]:
        now = self.context.now
        given = {"preferred_language": self.context.settings.default_locale, **row.values}
        return {
            **{column: given.get(column) for column in NEW_COLUMNS},
            "source": SOURCE,
            "created_at": now,
            "updated_at": now,
        }

    def _insert(self, session: Session, created: list[tuple[Person, dict[str, Any]]]) -> None:
        """Insert the records made so far in one statement (ORM objects cost more than the rest of a row's work)."""
        if not created:
            return
        table = Customer.__table__
        statement = insert(table).returning(table.c.id, sort_by_parameter_order=True)
        ids = session.execute(statement, [values for _person, values in created]).scalars().all()
        for (person, _values), customer_id in zip(created, ids, strict=True):
            person.id = customer_id
        created.clear()

    def _update(self, session: Session, customer: Customer, row: CustomerRow) -> bool:
        """Set the row's values that differ; each profile field changed leaves its history. Whether any changed."""
        changes = {
            column: (getattr(customer, column), value)
            for column, value in row.values.items()
            if column != "email_key" and getattr(customer, column) != value
        }
        if "email" in changes and customer.email_key == row.values["email_key"]:
            del changes["email"]  # the same address written in other capitals: the customer's spelling stays
        retailer_ref = changes.pop("retailer_ref", None)
        if retailer_ref is not None:  # the retailer's own key, not a detail the customer gave: no history
            customer.retailer_ref = retailer_ref[1]
            customer.updated_at = self.context.now
        if "email" in changes:
            customer.email_key = row.values["email_key"]
        if changes:
            if customer.id is None:  # made by an earlier row of this batch: its history needs its id
                session.flush()
            apply_changes(
                session,
                customer,
                changes,
                actor=self.context.actor,
                channel=self.context.source,
                now=self.context.now,
                request_id=None,
            )
        return bool(changes) or retailer_ref is not None

    # --- Rights ---------------------------------------------------------------------------------------------------

    def _erased(self, session: Session, batch: Sequence[CustomerRow], people: People) -> set[int]:
        """Positions of the rows naming an erased customer by an identifier no live record holds (one held by a live
        record is that record's: the person came back by themselves)."""
        settings = self.context.settings
        refs = {row.values["retailer_ref"] for row in batch if "retailer_ref" in row.values}
        emails = {row.values["email"] for row in batch if "email" in row.values}
        ref_digests = {erased_ref_hash(settings, ref): ref for ref in refs}
        email_digests = {erased_email_hash(settings, email): email for email in emails}
        erased_refs: set[str] = set()
        erased_emails: set[str] = set()
        if ref_digests:
            found = session.scalars(select(Customer.erased_ref_hash).where(Customer.erased_ref_hash.in_(ref_digests)))
            erased_refs = {ref_digests[digest] for digest in found if digest}
        if email_digests:
            found = session.scalars(
                select(Customer.erased_email_hash).where(Customer.erased_email_hash.in_(email_digests))
            )
            erased_emails = {email_digests[digest] for digest in found if digest}
        positions = set()
        for position, row in enumerate(batch):
            ref = row.ref
            if (ref.retailer_id in erased_refs and ref.retailer_id not in people.by_ref) or (
                ref.email in erased_emails and ref.email_key not in people.by_email
            ):
                positions.add(position)
        return positions
