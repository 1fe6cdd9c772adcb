"""What the DPO types about a breach, checked field by field with a message in their language."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from portal.i18n import gettext

TEXT_LIMIT = 5000
NOTICE_PARTS = ("nature", "consequences", "measures", "advice")  # what Art. 34(2) asks a notice to tell
NOTICE_LANGUAGES = ("fr", "en")


@dataclasses.dataclass(frozen=True)
class IncidentFacts:
    discovered_at: datetime
    nature: str
    data_categories: tuple[str, ...]
    people_estimate: int
    consequences: str
    measures: str


def _text(form: Mapping[str, str], name: str, errors: dict[str, str], *, required: bool = True) -> str:
    value = " ".join((form.get(name) or "").split(" ")).strip()
    if required and not value:
        errors[name] = gettext("Please fill in this field.")
    elif len(value) > TEXT_LIMIT:
        errors[name] = gettext("At most %(limit)s characters, please.", limit=TEXT_LIMIT)
    return value


def parse_local_datetime(value: str, *, timezone: str) -> datetime | None:
    """A `datetime-local` field ("2026-11-23T09:30"), read in the portal's time zone; None when it is not one."""
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if moment.tzinfo is not None:
        return moment.astimezone(UTC)
    return moment.replace(tzinfo=ZoneInfo(timezone)).astimezone(UTC)


def parse_day(value: str) -> date | None:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        return None


def parse_incident(
    form: Mapping[str, str], categories: list[str], *, now: datetime, timezone: str
) -> tuple[IncidentFacts | None, dict[str, str]]:
    """The facts of a breach from the form, or the errors per field."""
    errors: dict[str, str] = {}
    discovered = parse_local_datetime(form.get("discovered_at", ""), timezone=timezone)
    if discovered is None:
        errors["discovered_at"] = gettext("Give the date and time it was discovered, e.g. 2026-11-23 09:30.")
    elif discovered > now:
        errors["discovered_at"] = gettext("The discovery cannot be in the future.")
    chosen = tuple(code for code in categories if form.get(f"category_{code}"))
    if not chosen:
        errors["categories"] = gettext("Tick at least one category of data concerned.")
    people = (form.get("people_estimate") or "").strip()
    if not people.isdigit() or len(people) > 9:
        errors["people_estimate"] = gettext("Give an approximate number of people, in digits.")
    values = {name: _text(form, name, errors) for name in ("nature", "consequences", "measures")}
    if errors or discovered is None:
        return None, errors
    return IncidentFacts(discovered, values["nature"], chosen, int(people), values["consequences"],
                         values["measures"]), {}  # fmt: skip


def parse_notice(form: Mapping[str, str]) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """The notice in each language, part by part (`fr_nature`, `en_advice`…); every part is required."""
    errors: dict[str, str] = {}
    notice = {
        language: {part: _text(form, f"{language}_{part}", errors) for part in NOTICE_PARTS}
        for language in NOTICE_LANGUAGES
    }
    return notice, errors
