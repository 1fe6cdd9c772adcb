"""What the banner sends: small, strict JSON bodies (an unexpected field is refused, not ignored)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StringConstraints

# The id the banner draws in the visitor's browser (crypto.randomUUID, version 4): 122 random bits, lowercase.
VISITOR_ID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
VisitorId = Annotated[str, StringConstraints(min_length=36, max_length=36, pattern=VISITOR_ID_PATTERN)]
CHOICES = ("accept_all", "refuse_all", "custom", "gpc")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VisitorOnly(_Strict):
    visitor_id: VisitorId


class BannerAnswer(_Strict):
    """One answer: the button used and the resulting choice for every purpose the banner showed."""

    visitor_id: VisitorId
    choice: Literal["accept_all", "refuse_all", "custom", "gpc"]
    consents: dict[Annotated[str, StringConstraints(max_length=48)], StrictBool] = Field(max_length=20)
    policy_version: Annotated[str, StringConstraints(min_length=1, max_length=32)]
    banner_version: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{12}$")]
    locale: Literal["fr", "en"]


class Shown(_Strict):
    """The banner was shown: counted, nothing else (no id)."""
