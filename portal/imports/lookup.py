"""Finding the customer a row of purchases, consents or page views is about, a batch at a time.

A row names its customer by the retailer's customer id, an email address or a loyalty number; the first one the
row gives that matches a live customer wins, in that order (the order of trust: an id the retailer's systems
assigned, then an address the customer proved, then a card number). Three queries per batch, whatever its size.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from sqlalchemy import Connection
from sqlmodel import Session

from portal.db import as_connection
from portal.erasure.tombstone import is_erased_email, is_erased_ref
from portal.imports.kinds import FieldSpec
from portal.models import Customer, email_key
from portal.settings import Settings


@dataclasses.dataclass(frozen=True)
class CustomerRef:
    """How a row names its customer; at least one of the three is set."""

    retailer_id: str | None = None
    email: str | None = None
    loyalty_number: str | None = None

    @property
    def email_key(self) -> str | None:
        return email_key(self.email) if self.email else None


VALUES_PER_QUERY = 5000  # well under SQLite's limit of bound values in one statement
# The fields by which a row of purchases, consents or page views names its customer, in the order of trust; each
# of those kinds declares them by CUSTOMER_FIELD_SPECS, so that they are named and explained alike.
CUSTOMER_FIELD_SPECS = (
    FieldSpec("customer_id", help="The retailer's customer id (or give email or loyalty_number)."),
    FieldSpec("email", help="The customer's email address, when the row has no customer id."),
    FieldSpec("loyalty_number", help="The customer's loyalty card number, when the row has neither."),
)
CUSTOMER_FIELDS = tuple(spec.name for spec in CUSTOMER_FIELD_SPECS)


def customer_ref_of(values: Mapping[str, str | None]) -> CustomerRef | None:
    """The customer a row names by its CUSTOMER_FIELDS (text values); None when it names none."""
    ref = CustomerRef(
        retailer_id=values.get("customer_id"), email=values.get("email"), loyalty_number=values.get("loyalty_number")
    )
    return ref if ref.retailer_id or ref.email or ref.loyalty_number else None


def named_by(ref: CustomerRef) -> str:
    """The first field the row names its customer by: where an "unknown customer" message points."""
    return "customer_id" if ref.retailer_id else "email" if ref.email else "loyalty_number"


class FoundCustomer(NamedTuple):  # a tuple: a batch of a million-line file finds thousands
    id: int
    retailer_ref: str | None
    restricted: bool


class CustomerIndex:
    """The live customers named by a batch of rows, read in three queries.

    Through the driver, with prebuilt statements: an import of a million purchase lines asks this for every
    receipt, and SQLAlchemy's handling of a large IN list and of its result rows cost more than the queries.
    """

    def __init__(self, session: Session, refs: Iterable[CustomerRef]) -> None:
        refs = list(refs)
        connection = as_connection(session)
        self._by_ref: dict[str, FoundCustomer] = {}
        self._by_email: dict[str, FoundCustomer] = {}
        self._by_loyalty: dict[str, FoundCustomer] = {}
        wanted = sorted({r.retailer_id for r in refs if r.retailer_id})
        for customer_id, retailer_ref, restricted_at in _alive(connection, "retailer_ref", wanted):
            self._by_ref[retailer_ref] = FoundCustomer(customer_id, retailer_ref, restricted_at is not None)
        wanted = sorted({key for r in refs if (key := r.email_key)})
        for customer_id, retailer_ref, restricted_at, key in _alive(connection, "email_key", wanted):
            self._by_email[key] = FoundCustomer(customer_id, retailer_ref, restricted_at is not None)
        wanted = sorted({r.loyalty_number for r in refs if r.loyalty_number})
        for customer_id, retailer_ref, restricted_at, number in _alive(connection, "loyalty_number", wanted):
            # Two live records may share a card until merged: the oldest answers, as the matching does.
            self._by_loyalty.setdefault(number, FoundCustomer(customer_id, retailer_ref, restricted_at is not None))

    def find(self, ref: CustomerRef) -> FoundCustomer | None:
        if ref.retailer_id and ref.retailer_id in self._by_ref:
            return self._by_ref[ref.retailer_id]
        if (key := ref.email_key) and key in self._by_email:
            return self._by_email[key]
        if ref.loyalty_number and ref.loyalty_number in self._by_loyalty:
            return self._by_loyalty[ref.loyalty_number]
        return None


def is_erased(session: Session, settings: Settings, ref: CustomerRef) -> bool:
    """Whether the row names a customer who was erased at their request, by the address or the retailer's id their
    tombstone keeps a keyed hash of."""
    if ref.retailer_id and is_erased_ref(session, settings, ref.retailer_id):
        return True
    return bool(ref.email) and is_erased_email(session, settings, ref.email)


def _alive(connection: Connection, column: str, wanted: list[str]) -> Iterable[tuple[Any, ...]]:
    """Id, retailer id and restriction of the live customers whose `column` is one of `wanted` (and that column's
    value, when it is not the retailer id), in the order of their ids."""
    if not wanted:
        return []
    mark = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    extra = "" if column == "retailer_ref" else f", {column}"
    rows: list[tuple[Any, ...]] = []
    for start in range(0, len(wanted), VALUES_PER_QUERY):
        chunk = wanted[start : start + VALUES_PER_QUERY]
        rows.extend(
            connection.exec_driver_sql(
                f"SELECT id, retailer_ref, restricted_at{extra} FROM {Customer.__tablename__}"
                f" WHERE erased_at IS NULL AND {column} IN ({', '.join([mark] * len(chunk))}) ORDER BY id",
                tuple(chunk),
            )
        )
    return rows
