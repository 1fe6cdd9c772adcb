"""Choosing the customers a breach concerns: by store and purchase dates, by category of data, or from a list.

Selection only adds to the incident's recipients (each customer once); nothing is sent until the DPO, having seen
the count, sends the notices. Erased customers are never selected: nothing of theirs is left to leak.
"""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import exists, func, select
from sqlmodel import Session

from portal.audit import record_audit
from portal.db import dialect_insert
from portal.i18n import gettext, lazy_gettext
from portal.incidents.service import incident_by_reference
from portal.models import Customer, IncidentRecipient, PageViewTotal, Purchase, PurchaseTotal, Store, email_key

LIST_LIMIT = 100_000  # lines in one uploaded list
KEY_LIMIT = 254


class SelectionRefused(ValueError):
    """The selection cannot be made; `message` (a message id, with `params`) says why; `status` is the HTTP answer."""

    def __init__(self, message: str, *, status: int = 400, **params: object) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.params = params

    def translated(self) -> str:
        """The message in the current language."""
        text = gettext(self.message)
        return text % self.params if self.params else text


@dataclasses.dataclass(frozen=True)
class BadLine:
    number: int
    text: str
    reason: str  # message id


@dataclasses.dataclass(frozen=True)
class Selected:
    matched: int  # customers the method found
    added: int  # of which were not selected already
    bad_lines: tuple[BadLine, ...] = ()


# What holding a category of data means in the portal's tables; the other categories are not stored here.
def _category_condition(category: str):  # type: ignore[no-untyped-def]
    conditions = {
        "identity": Customer.id.is_not(None),
        "email_address": Customer.email.is_not(None),
        "phone_number": Customer.phone.is_not(None),
        "postal_address": Customer.address_line1.is_not(None),
        "loyalty": Customer.loyalty_number.is_not(None),
        "purchases": exists().where(PurchaseTotal.customer_id == Customer.id),
        "invoices": exists().where(PurchaseTotal.customer_id == Customer.id),
        "browsing": exists().where(PageViewTotal.customer_id == Customer.id),
    }
    return conditions.get(category)


SELECTABLE_CATEGORIES = ("identity", "email_address", "phone_number", "postal_address", "loyalty", "purchases",
                         "invoices", "browsing")  # fmt: skip


def _add(session: Session, incident_id: int, customer_ids: list[int], *, method: str, now: datetime) -> int:
    """Select the customers not selected yet; returns how many were new (counted: executemany has no rowcount)."""
    if not customer_ids:
        return 0
    before = _selected_count(session, incident_id)
    for start in range(0, len(customer_ids), 1000):
        statement = dialect_insert(session)(IncidentRecipient.__table__).on_conflict_do_nothing(
            index_elements=["incident_id", "customer_id"]
        )
        rows = [
            {"incident_id": incident_id, "customer_id": c, "selected_at": now, "selected_by": method}
            for c in customer_ids[start : start + 1000]
        ]
        session.execute(statement, rows)
    return _selected_count(session, incident_id) - before


def _selected_count(session: Session, incident_id: int) -> int:
    return session.execute(
        select(func.count()).select_from(IncidentRecipient).where(IncidentRecipient.incident_id == incident_id)
    ).scalar_one()


def _record(session: Session, *, reference: str, method: str, result: Selected, actor: str, now: datetime,
            request_id: str | None) -> Selected:  # fmt: skip
    record_audit(
        session,
        actor=actor,
        action="incident.recipients_selected",
        target=f"incident:{reference}",
        detail={"method": method, "matched": result.matched, "added": result.added, "bad_lines": len(result.bad_lines)},
        now=now,
        request_id=request_id,
    )
    return result


def select_by_store(
    session: Session,
    *,
    reference: str,
    store_code: str,
    first_day: date,
    last_day: date,
    timezone: str,
    actor: str,
    now: datetime,
    request_id: str | None = None,
) -> Selected:
    """Customers who bought in the store between the two days (inclusive, in the portal's time zone)."""
    incident = incident_by_reference(session, reference)
    store_id = session.scalars(select(Store.id).where(Store.code == store_code.strip())).first()
    if store_id is None:
        raise SelectionRefused(lazy_gettext("There is no store with this code."))
    if last_day < first_day:
        raise SelectionRefused(lazy_gettext("The end of the period is before its start."))
    zone = ZoneInfo(timezone)
    start = datetime.combine(first_day, time(0), tzinfo=zone)
    end = datetime.combine(last_day + timedelta(days=1), time(0), tzinfo=zone)
    ids = session.scalars(
        select(Purchase.customer_id)
        .join(Customer, Customer.id == Purchase.customer_id)
        .where(
            Purchase.store_id == store_id,
            Purchase.purchased_at >= start,
            Purchase.purchased_at < end,
            Customer.erased_at.is_(None),
        )
        .distinct()
    ).all()
    result = Selected(len(ids), _add(session, incident.id, list(ids), method="store", now=now))
    return _record(session, reference=incident.reference, method="store", result=result, actor=actor, now=now,
                   request_id=request_id)  # fmt: skip


def select_by_category(
    session: Session, *, reference: str, category: str, actor: str, now: datetime, request_id: str | None = None
) -> Selected:
    """Every customer of whom the portal holds data of `category` (a code of the register's data categories)."""
    incident = incident_by_reference(session, reference)
    condition = _category_condition(category)
    if condition is None:
        raise SelectionRefused(lazy_gettext("The portal holds no data of this category: choose another one."))
    ids = session.scalars(select(Customer.id).where(Customer.erased_at.is_(None), condition)).all()
    result = Selected(len(ids), _add(session, incident.id, list(ids), method="category", now=now))
    return _record(session, reference=incident.reference, method="category", result=result, actor=actor, now=now,
                   request_id=request_id)  # fmt: skip


def select_from_list(
    session: Session, *, reference: str, text: str, actor: str, now: datetime, request_id: str | None = None
) -> Selected:
    """One email address or retailer customer id per line, pasted. A line that names nobody is reported, never
    guessed."""
    lines = text.splitlines()
    if len(lines) > LIST_LIMIT:
        raise SelectionRefused(lazy_gettext("The list is too long: send it in several parts."))
    keys = [(number, line.strip().strip('"').strip()) for number, line in enumerate(lines, start=1) if line.strip()]
    return select_named(session, reference=reference, keys=keys, method="list", actor=actor, now=now,
                        request_id=request_id)  # fmt: skip


def select_named(
    session: Session,
    *,
    reference: str,
    keys: list[tuple[int, str]],
    method: str,
    actor: str,
    now: datetime,
    request_id: str | None = None,
) -> Selected:
    """The customers named by `keys`: (line number, email address or retailer id), pasted or read from a file by
    `customer_list`. Each line naming nobody is reported with its number, never guessed."""
    incident = incident_by_reference(session, reference)
    found = _customers_named(session, [key for _, key in keys])
    ids: list[int] = []
    bad: list[BadLine] = []
    for number, key in keys:
        if not key or len(key) > KEY_LIMIT or "," in key or ";" in key:
            bad.append(BadLine(number, key[:80], lazy_gettext("Not one email address or customer id")))
            continue
        customer = found.get(_lookup_key(key))
        if customer is None:
            bad.append(BadLine(number, key[:80], lazy_gettext("No customer with this address or id")))
        elif customer[1] is not None:
            bad.append(BadLine(number, key[:80], lazy_gettext("This customer's data was erased")))
        else:
            ids.append(customer[0])
    unique = list(dict.fromkeys(ids))
    result = Selected(len(unique), _add(session, incident.id, unique, method=method, now=now), tuple(bad))
    return _record(session, reference=incident.reference, method=method, result=result, actor=actor, now=now,
                   request_id=request_id)  # fmt: skip


def _lookup_key(key: str) -> tuple[str, str]:
    return ("email", email_key(key)) if "@" in key else ("ref", key)


def _customers_named(session: Session, keys: list[str]) -> dict[tuple[str, str], tuple[int, datetime | None]]:
    """(id, erased_at) of the customers the keys name, looked up 1,000 at a time (a list may hold 100,000 lines)."""
    wanted = {_lookup_key(key) for key in keys if key and len(key) <= KEY_LIMIT}
    found: dict[tuple[str, str], tuple[int, datetime | None]] = {}
    for kind, column in (("email", Customer.email_key), ("ref", Customer.retailer_ref)):
        values = sorted(value for k, value in wanted if k == kind)
        for start in range(0, len(values), 1000):
            rows = session.execute(
                select(column, Customer.id, Customer.erased_at).where(column.in_(values[start : start + 1000]))
            )
            for value, customer_id, erased_at in rows:
                found[(kind, value)] = (customer_id, erased_at)
    return found
