"""The shapes the API reads and writes. Pydantic validates requests and gives the OpenAPI document its schemas."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, model_validator
from pydantic_core import PydanticCustomError

from portal.banner.schemas import VisitorId
from portal.clock import CLOCK_SKEW_MINUTES

MAX_BATCH = 1000
_RFC3339 = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}(:[0-9]{2}([.][0-9]{1,6})?)?([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)


def _rfc3339_text(value: Any) -> Any:
    # Pydantic would also read 1700000000 (or "1700000000") as a Unix time: the document says a date-time string.
    if not isinstance(value, str) or not _RFC3339.match(value):
        raise PydanticCustomError("datetime_type", "expected a date and time in ISO 8601 with an offset")
    return value


Moment = Annotated[AwareDatetime, BeforeValidator(_rfc3339_text)]
# The clock-skew allowance (portal.clock) is said in each moment's description, since a schema cannot compare with
# "now"; a later moment is refused (422, `in_future`).
MOMENT_BOUND = (
    f" At most {CLOCK_SKEW_MINUTES} minutes after the portal's clock (clock-skew allowance); a later moment is refused"
    " with 422 `in_future`."
)

# Patterns use explicit character ranges, never \s or \S, whose meaning differs between Python and the ECMAScript
# regexes that OpenAPI tools use. An odd but well-formed address or id simply matches nobody (404).
Email = Annotated[
    str, StringConstraints(min_length=3, max_length=254, pattern=r"^[^@\x00-\x1f\x7f]+@[^@\x00-\x1f\x7f]+$")
]
CustomerRef = Annotated[str, StringConstraints(min_length=1, max_length=64)]
IDENTIFIERS = ("email", "customer_id")
PurposeCode = Annotated[str, StringConstraints(min_length=1, max_length=48, pattern=r"^[a-z0-9_]+$")]


def _identify_customer() -> PydanticCustomError:
    # A typed error, so that errors.py words it from its type (not from the text of the message).
    return PydanticCustomError("identify_customer", "identify the customer with exactly one of email or customer_id")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _exactly_one_identifier(schema: dict[str, Any]) -> None:
    # Say in the document what the validator enforces: one of the two, never null, never both.
    for name in IDENTIFIERS:
        field = schema["properties"][name]
        field.update(next(option for option in field.pop("anyOf") if option.get("type") != "null"))
        field.pop("default", None)
    schema["oneOf"] = [
        {"required": [name], "not": {"required": [other]}} for name, other in (IDENTIFIERS, IDENTIFIERS[::-1])
    ]


class CustomerIdentifier(_Strict):
    """A customer, by email address or by the retailer's own customer id: exactly one of the two."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_exactly_one_identifier)

    email: Email | None = Field(default=None, description="The customer's email address (any case).")
    customer_id: CustomerRef | None = Field(default=None, description="The retailer's customer id (CRM number).")

    @model_validator(mode="before")
    @classmethod
    def _no_null_identifier(cls, data: Any) -> Any:
        if isinstance(data, dict) and any(name in data and data[name] is None for name in IDENTIFIERS):
            raise _identify_customer()
        return data

    @model_validator(mode="after")
    def _exactly_one(self) -> CustomerIdentifier:
        if (self.email is None) == (self.customer_id is None):
            raise _identify_customer()
        return self


class ConsentLookup(CustomerIdentifier):
    """Whose consents to read. POSTed rather than put in the URL, so that addresses stay out of access logs."""


class ConsentChange(CustomerIdentifier):
    purpose: PurposeCode = Field(description="A consent-based purpose code from GET /api/v1/purposes.")
    granted: bool = Field(description="true: consent given; false: consent withdrawn.")
    channel: Literal["store", "support", "import", "api", "web"] = Field(
        description="Where the customer answered: store (till), support (call centre), import, api, web."
    )
    policy_version: str = Field(
        min_length=1, max_length=32, description="The policy version whose wording the customer was shown."
    )
    locale: Literal["fr", "en"] = Field(description="The language of the wording shown.")
    occurred_at: Moment | None = Field(
        default=None, description="When the customer answered (ISO 8601 with offset); now when omitted." + MOMENT_BOUND
    )


class VisitorLink(CustomerIdentifier):
    """The web shop tells which customer a website visitor is, at sign-in or checkout."""

    visitor_id: VisitorId = Field(
        description="The visitor id of the consent banner on your website: `PortalConsent.visitorId()` in the page."
    )


class ConsentState(BaseModel):
    purpose: str
    granted: bool = Field(description="The customer's latest answer; false when never asked (nothing pre-ticked).")
    usable: bool = Field(description="Whether the data may be used for this purpose now (false while restricted).")
    changed_at: AwareDatetime | None = None
    channel: str | None = None


class CustomerConsents(BaseModel):
    customer_id: str | None = Field(description="The retailer's customer id, when known.")
    restricted: bool = Field(description="Processing is restricted (GDPR Art. 18): use nothing for marketing.")
    policy_version: str
    consents: list[ConsentState]


class VisitorLinkResult(BaseModel):
    joined: int = Field(description="How many of the visitor's banner answers joined the customer's consent history.")
    changed: list[str] = Field(description="The purposes whose current consent the joined answers changed.")
    relinked: bool = Field(description="The visitor was linked to another customer before (a shared computer).")
    consents: CustomerConsents


class ConsentChangeResult(BaseModel):
    changed: bool = Field(description="false when the consent already stood so: nothing was recorded.")
    consent: ConsentState


def _exactly_one_of_three(schema: dict[str, Any]) -> None:
    names = (*IDENTIFIERS, "visitor_id")
    for name in names:
        field = schema["properties"][name]
        field.update(next(option for option in field.pop("anyOf") if option.get("type") != "null"))
        field.pop("default", None)
    schema["oneOf"] = [
        {"required": [name], "not": {"anyOf": [{"required": [other]} for other in names if other != name]}}
        for name in names
    ]


class BrowsingEvent(CustomerIdentifier):
    """A page view of a customer, named by email, customer id, or the visitor id of the website's consent banner
    (judged against the consents of the customer the web shop linked that visitor to; unlinked: dropped)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_exactly_one_of_three)

    visitor_id: VisitorId | None = Field(default=None, description="The visitor id of the website's consent banner.")

    @model_validator(mode="before")
    @classmethod
    def _no_null_identifier(cls, data: Any) -> Any:
        if isinstance(data, dict) and any(data.get(name, "") is None for name in (*IDENTIFIERS, "visitor_id")):
            raise _identify_customer()
        return data

    @model_validator(mode="after")
    def _exactly_one(self) -> BrowsingEvent:
        if [self.email, self.customer_id, self.visitor_id].count(None) != 2:
            raise _identify_customer()
        return self

    url: Annotated[str, StringConstraints(min_length=8, max_length=2000, pattern=r"^https?://[^\x00-\x20\x7f]+$")]
    title: Annotated[str, StringConstraints(max_length=300)] | None = None
    viewed_at: Moment = Field(description="When the page was viewed (ISO 8601 with offset)." + MOMENT_BOUND)


class BrowsingBatch(_Strict):
    events: list[BrowsingEvent] = Field(min_length=1, max_length=MAX_BATCH)


class DroppedCounts(BaseModel):
    no_consent: int = Field(description="Browsing consent was not given at the event's time.")
    unknown_customer: int = Field(description="No customer (or an erased one) matches.")
    restricted: int = Field(description="The customer's processing is restricted.")


class IngestionResult(BaseModel):
    received: int
    kept: int
    dropped: int
    dropped_because: DroppedCounts


class PurposeInfo(BaseModel):
    code: str
    consent_based: bool
    legal_basis: str
    title: dict[str, str]


class PurposeList(BaseModel):
    policy_version: str
    policy_date: str
    purposes: list[PurposeInfo]


Text = Annotated[str, StringConstraints(max_length=254)]


class CustomerWrite(_Strict):
    """A customer as the retailer's systems hold them; the values are checked as in a file import (same messages).

    A field left out (or null) keeps what is on file."""

    email: Text | None = Field(default=None, description="Email address; a record already holding it is merged.")
    first_name: Text | None = None
    last_name: Text | None = None
    phone: Text | None = Field(default=None, description="National (of `country`, France by default) or +E.164.")
    address_line1: Text | None = Field(default=None, description="Give it with `postal_code` and `city`.")
    address_line2: Text | None = None
    postal_code: Text | None = None
    city: Text | None = None
    country: Text | None = Field(default=None, description="ISO 3166-1 alpha-2 code, e.g. FR.")
    birth_date: Text | None = Field(default=None, description="YYYY-MM-DD, between 1900 and today.")
    loyalty_number: Text | None = Field(
        default=None, description="Loyalty card; a record already holding it is merged."
    )
    preferred_language: Text | None = Field(default=None, description="fr or en.")


class CustomerWriteResult(BaseModel):
    customer_id: str = Field(description="The retailer's customer id.")
    outcome: Literal["created", "updated", "merged", "unchanged"] = Field(
        description="merged: the values named another record of the same person, now one record."
    )


# A store code in a URL: letters, digits and . _ - or inner spaces (no slash, nothing a path would normalise away).
STORE_CODE_PATTERN = r"^[A-Za-z0-9](?:[A-Za-z0-9._ -]{0,14}[A-Za-z0-9._-])?$"


class StoreChange(_Strict):
    """A store or the web shop, as the retailer's systems name it; its code is in the URL."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=100)] = Field(
        description="The store's name as customers know it."
    )
    city: Annotated[str, StringConstraints(max_length=100)] | None = Field(
        default=None, description="The town it is in; null for the web shop."
    )
    kind: Literal["store", "web"] = Field(default="store", description="store (a shop) or web (the web shop).")


class StoreResult(BaseModel):
    code: str
    outcome: Literal["created", "updated", "unchanged"] = Field(description="What the call did.")


Amount = Annotated[Decimal, Field(max_digits=14, decimal_places=2)]
Label = Annotated[str, StringConstraints(max_length=200)]


class PurchaseLineItem(_Strict):
    """One line of a receipt. Quantities and amounts are checked as a file's are (1 or more; not negative)."""

    sku: Annotated[str, StringConstraints(min_length=1, max_length=32)] = Field(description="The article's code.")
    label: Label | None = Field(default=None, description="The article's name as printed; the sku when omitted.")
    quantity: int = Field(description="How many were bought: 1 or more (returns are not imported).")
    unit_price: Amount = Field(description="The price of one article, tax included, in the receipt's currency.")
    line_total: Amount | None = Field(default=None, description="quantity × unit_price, checked when given.")


class Receipt(_Strict):
    """A purchase with its lines, keyed by receipt number: sending it again changes nothing."""

    receipt_number: Annotated[str, StringConstraints(min_length=1, max_length=32)] = Field(
        description="The till's or web shop's receipt number, unique across stores."
    )
    store_code: Annotated[str, StringConstraints(min_length=1, max_length=16)] = Field(
        description="The store's code (PUT /api/v1/stores/{code} first)."
    )
    purchased_at: Moment = Field(description="When the sale was made (ISO 8601 with offset)." + MOMENT_BOUND)
    channel: Literal["in_store", "web", "click_and_collect"] | None = Field(
        default=None, description="How the customer bought; the store's own (web for the web shop) when omitted."
    )
    customer_id: CustomerRef | None = Field(default=None, description="The retailer's customer id.")
    email: Email | None = Field(default=None, description="The customer's email address, when there is no id.")
    loyalty_number: Annotated[str, StringConstraints(min_length=1, max_length=32)] | None = Field(
        default=None, description="The loyalty card number, when there is neither id nor email."
    )
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = Field(
        default="EUR", description="ISO 4217 code."
    )
    total: Amount | None = Field(default=None, description="The receipt's total, checked against its lines.")
    lines: list[PurchaseLineItem] = Field(min_length=1, max_length=MAX_BATCH)


class PurchaseBatch(_Strict):
    purchases: list[Receipt] = Field(min_length=1, max_length=MAX_BATCH)


class PurchaseDrops(BaseModel):
    anonymous: int = Field(description="No customer named: an anonymous sale, nobody's personal data.")
    erased: int = Field(description="The customer was erased at their request.")
    restricted: int = Field(description="The customer's processing is restricted.")


class PurchaseResult(BaseModel):
    received: int
    created: int
    unchanged: int = Field(description="Already recorded with the same content.")
    dropped: int
    dropped_because: PurchaseDrops


class ErrorDetail(BaseModel):
    field: str
    message: str


class ErrorBody(BaseModel):
    code: str
    message: str
    details: list[ErrorDetail] = []


class Error(BaseModel):
    error: ErrorBody
