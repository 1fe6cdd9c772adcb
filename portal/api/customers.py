"""Customers pushed by the retailer's systems in real time: the same rows, rules and messages as `portal import`.

`PUT /api/v1/customers/{customer_id}` goes through the customers import kind (`imports.apply.apply_items`), so a
CRM calling the API and a CRM exporting a file end with the same record, the same history and the same merges.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from portal.api import schemas
from portal.consent.register import PurposeRegister
from portal.imports.apply import apply_items
from portal.imports.customers import CustomersKind
from portal.imports.kinds import ImportContext
from portal.settings import Settings

OUTCOMES = ("created", "updated", "merged", "unchanged")


class CustomerWriteRefused(Exception):
    """The customer cannot be written: `reason` is "erased" (they asked to be forgotten) or "restricted"."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def put_customer(
    session: Session,
    *,
    settings: Settings,
    register: PurposeRegister,
    customer_id: str,
    body: schemas.CustomerWrite,
    actor: str,
    now: datetime,
) -> schemas.CustomerWriteResult:
    """Create or update the customer the retailer knows as `customer_id`.

    Raises imports.apply.ItemsRefused (a bad value, or a conflict a person must settle) and CustomerWriteRefused;
    nothing is written then.
    """
    context = ImportContext(settings=settings, register=register, now=now, source="api", actor=actor)
    item = {**body.model_dump(exclude_none=True), "customer_id": customer_id}
    tally = apply_items(session, CustomersKind(context), [item])
    for reason in ("erased", "restricted"):
        if tally.reasons[reason]:
            raise CustomerWriteRefused(reason)
    outcome = next(outcome for outcome in OUTCOMES if tally.outcomes[outcome])
    return schemas.CustomerWriteResult(customer_id=customer_id, outcome=outcome)  # type: ignore[arg-type]
