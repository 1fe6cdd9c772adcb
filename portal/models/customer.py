"""The customer: who the data is about."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime

from sqlalchemy import Column, ColumnElement, Index, func, literal_column
from sqlmodel import Field, SQLModel

from portal.models.types import UTCDateTime, bytewise, utcnow

# Profile fields in display order; the overview lists the ones held and later pages show each.
PROFILE_FIELDS = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "postal_address",
    "birth_date",
    "loyalty_number",
    "preferred_language",
)


class Customer(SQLModel, table=True):
    __tablename__ = "customer"
    __table_args__ = (
        Index("ix_customer_email_key", "email_key", unique=True),
        Index("ix_customer_retailer_ref", "retailer_ref", unique=True),
        # Imports and sign-up check an address against the erased ones (requests/erasure.py is_erased_email).
        Index("ix_customer_erased_email_hash", "erased_email_hash"),
        # …and imports check the retailer's customer id against the erased ones too (imports/lookup.py is_erased).
        Index("ix_customer_erased_ref_hash", "erased_ref_hash"),
    )

    id: int | None = Field(default=None, primary_key=True)
    # `email_key` is the case-folded address that identifies the customer; `email` keeps their spelling.
    # The retailer's own customer id (CRM, tills), by which its systems ask the API about this customer.
    retailer_ref: str | None = Field(default=None, max_length=64)
    email: str | None = Field(default=None, max_length=254)
    email_key: str | None = Field(default=None, max_length=254)
    first_name: str | None = Field(default=None, max_length=100)
    last_name: str | None = Field(default=None, max_length=100)
    phone: str | None = Field(default=None, max_length=32)
    address_line1: str | None = Field(default=None, max_length=200)
    address_line2: str | None = Field(default=None, max_length=200)
    postal_code: str | None = Field(default=None, max_length=16)
    city: str | None = Field(default=None, max_length=100)
    country: str | None = Field(default=None, max_length=2)  # ISO 3166-1 alpha-2
    birth_date: date | None = None
    loyalty_number: str | None = Field(default=None, max_length=32)
    preferred_language: str = Field(default="fr", max_length=8)
    source: str = Field(default="store", max_length=32)  # store | web | import | support
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    # Restriction of processing (Art. 18): data kept but not used; marketing consent reads answer "no".
    restricted_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    # When the customer was last warned that inactivity will have them anonymised (retention); the inactivity rule
    # anonymises only customers warned long enough ago and inactive since.
    inactivity_warned_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    # Tombstone after erasure: the row stays so a later import cannot silently recreate a profile.
    erased_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    erased_email_hash: str | None = Field(default=None, max_length=128)
    erased_ref_hash: str | None = Field(default=None, max_length=128)  # keyed hash of the retailer's customer id

    @staticmethod
    def stored_profile_columns() -> tuple[str, ...]:
        """The columns behind PROFILE_FIELDS (a postal address spans several)."""
        return (*(f for f in PROFILE_FIELDS if f != "postal_address"), *POSTAL_ADDRESS_COLUMNS)

    def held_profile_fields(self) -> list[str]:
        """Names of the profile fields for which we hold a value."""
        return held_profile_fields({c: getattr(self, c) for c in self.stored_profile_columns()})


POSTAL_ADDRESS_COLUMNS = ("address_line1", "address_line2", "postal_code", "city")


def held_profile_fields(values: Mapping[str, object]) -> list[str]:
    """The PROFILE_FIELDS that hold a value, given the stored columns (a row or a mapping)."""
    held = []
    for name in PROFILE_FIELDS:
        if name == "postal_address":
            if any(values.get(column) for column in POSTAL_ADDRESS_COLUMNS):
                held.append(name)
        elif values.get(name):
            held.append(name)
    return held


def email_key(address: str) -> str:
    """The form under which an address is stored and looked up (case-insensitive, trimmed)."""
    return address.strip().casefold()


# What the staff queue's search compares with the start of what an agent typed (portal/backoffice/queue.py): the
# address, the last name, and "first last". Indexed bytewise, so a prefix is one range of the index (migration 0011).
_table = Customer.__table__  # type: ignore[attr-defined]  # SQLModel's __table__, which mypy does not see
_blank: ColumnElement[str] = literal_column(
    "''"
)  # literals, not bound values: an expression index serves only the same expression
SEARCH_EMAIL = bytewise(_table.c.email_key)
SEARCH_LAST_NAME = bytewise(func.lower(_table.c.last_name))
SEARCH_FULL_NAME = bytewise(
    func.lower(
        func.coalesce(_table.c.first_name, _blank)
        .op("||")(literal_column("' '"))
        .op("||")(func.coalesce(_table.c.last_name, _blank))
    )
)
# SQLite's unique index on email_key compares bytewise already; PostgreSQL needs its own.
Index("ix_customer_search_email", SEARCH_EMAIL).ddl_if(dialect="postgresql")
Index("ix_customer_search_last_name", SEARCH_LAST_NAME)
Index("ix_customer_search_full_name", SEARCH_FULL_NAME, _table=_table)  # the table is not inferred from the expression
