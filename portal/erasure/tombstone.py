"""The tombstone: what is left of an erased customer, and the check every writer of customers must make.

An erased customer keeps a keyed hash of their address (`erased_email_hash`) and of the retailer's customer id
(`erased_ref_hash`), so that neither a CRM export nor a till can bring them back. Any code that creates a customer from
an address (imports, the retailer API, the store tablet, the website banner) calls `refuse_erased_email` first: an
import must not silently recreate a marketing profile for an address whose owner asked to be forgotten.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel import Session

from portal.i18n import gettext
from portal.identity.keys import keyed_hash
from portal.models import Customer, email_key
from portal.settings import Settings

ERASED_EMAIL_PURPOSE = "erased-email"
ERASED_REF_PURPOSE = "erased-retailer-id"


class ErasedAddress(ValueError):
    """The address belongs to an erased customer: no profile may be recreated for it."""


def erased_email_hash(settings: Settings, email: str) -> str:
    """The keyed hash a tombstone keeps instead of the address (same for any spelling of the address)."""
    return keyed_hash(settings.secret_key, ERASED_EMAIL_PURPOSE, email_key(email))


def erased_ref_hash(settings: Settings, retailer_ref: str) -> str:
    """The keyed hash a tombstone keeps instead of the retailer's customer id (CRM, tills)."""
    return keyed_hash(settings.secret_key, ERASED_REF_PURPOSE, retailer_ref.strip())


def is_erased_ref(session: Session, settings: Settings, retailer_ref: str) -> bool:
    """Whether the retailer's customer id `retailer_ref` belonged to a customer who was erased."""
    digest = erased_ref_hash(settings, retailer_ref)
    return session.scalars(select(Customer.id).where(Customer.erased_ref_hash == digest).limit(1)).first() is not None


def is_erased_email(session: Session, settings: Settings, email: str) -> bool:
    """Whether `email` belonged to a customer who was erased."""
    digest = erased_email_hash(settings, email)
    return session.scalars(select(Customer.id).where(Customer.erased_email_hash == digest).limit(1)).first() is not None


def refuse_erased_email(session: Session, settings: Settings, email: str) -> None:
    """Call before creating a customer from `email` (import, API, store); raises ErasedAddress for an erased one."""
    if is_erased_email(session, settings, email):
        raise ErasedAddress(gettext("This email address belongs to a customer whose data was erased at their request."))
