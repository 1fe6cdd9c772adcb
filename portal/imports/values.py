"""Reading the values of the retailer's exports: dates in their format, amounts with a decimal comma, yes/no.

Each reader raises ValueError with a message in the operator's language that says what was expected, so a kind
turns it into a RowError for its field without writing the message again.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from portal.i18n import gettext

TRUE_WORDS = frozenset({"1", "true", "yes", "y", "oui", "o", "vrai", "granted", "opt-in", "optin", "x"})
FALSE_WORDS = frozenset({"0", "false", "no", "n", "non", "faux", "withdrawn", "refused", "opt-out", "optout", ""})


@dataclasses.dataclass(frozen=True)
class Formats:
    """How the retailer's files write values (the [formats] table of a mapping file).

    `date` and `datetime` are strptime formats tried in order (ISO 8601 is always understood); a date-time written
    without an offset is a time in `timezone`; `decimal_comma` reads "12,50" as twelve and a half.
    """

    date: tuple[str, ...] = ()
    datetime: tuple[str, ...] = ()
    timezone: str = "Europe/Paris"
    decimal_comma: bool = False


def as_text(value: object) -> str | None:
    """A field's value as stripped text, None when absent or blank: CSV gives text, JSON Lines and the API also
    numbers and booleans (a customer id written 1042 is the text "1042")."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        raise ValueError(gettext("A single value is expected here, not a list or an object."))
    text = str(value).strip()
    return text or None


def read_date(text: str, formats: Formats) -> date:
    text = text.strip()
    for pattern in formats.date:
        try:
            return datetime.strptime(text, pattern).date()  # noqa: DTZ007 - a calendar date has no zone
        except ValueError:
            continue
    try:
        return date.fromisoformat(text)
    except ValueError:
        pass
    raise ValueError(
        gettext(
            "“%(value)s” is not a date in the format %(format)s.", value=text, format=_shown(formats.date, "YYYY-MM-DD")
        )
    )


def read_datetime(text: str, formats: Formats) -> datetime:
    """An aware UTC date-time; one written without an offset is read in `formats.timezone`."""
    text = text.strip()
    parsed: datetime | None = None
    for pattern in formats.datetime:
        try:
            parsed = datetime.strptime(text, pattern)  # noqa: DTZ007 - the zone is applied below
            break
        except ValueError:
            continue
    if parsed is None:
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
        except ValueError:
            raise ValueError(
                gettext(
                    "“%(value)s” is not a date and time in the format %(format)s.",
                    value=text,
                    format=_shown(formats.datetime, "YYYY-MM-DDTHH:MM:SS"),
                )
            ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZoneInfo(formats.timezone))
    return parsed.astimezone(UTC)


def read_cents(text: str, formats: Formats) -> int:
    """An amount in cents: "12.50" (or "12,50" with a decimal comma) is 1250; spaces between thousands are allowed."""
    cleaned = text.strip().replace("\u202f", "").replace("\xa0", "").replace(" ", "")
    if formats.decimal_comma:
        cleaned = cleaned.replace(".", "").replace(",", ".")
    try:
        amount = Decimal(cleaned)
    except InvalidOperation:
        amount = Decimal("NaN")
    if not amount.is_finite() or amount != amount.quantize(Decimal("0.01")) or abs(amount) >= Decimal(10) ** 12:
        example = "12,50" if formats.decimal_comma else "12.50"
        raise ValueError(gettext("“%(value)s” is not an amount like %(example)s.", value=text.strip(), example=example))
    return int(amount * 100)


def read_int(text: str) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise ValueError(gettext("“%(value)s” is not a whole number.", value=text.strip())) from None
    if abs(value) >= 2**31:
        raise ValueError(gettext("“%(value)s” is not a whole number.", value=text.strip()))
    return value


def read_bool(text: str) -> bool:
    word = text.strip().casefold()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError(
        gettext("“%(value)s” is neither yes nor no (write yes/no, oui/non, true/false or 1/0).", value=text.strip())
    )


def _shown(patterns: tuple[str, ...], default: str) -> str:
    """A strptime pattern as a person writes it: %d/%m/%Y is DD/MM/YYYY."""
    if not patterns:
        return default
    pattern = patterns[0]
    for code, shown in (
        ("%d", "DD"),
        ("%m", "MM"),
        ("%Y", "YYYY"),
        ("%y", "YY"),
        ("%H", "HH"),
        ("%M", "MM"),
        ("%S", "SS"),
    ):
        pattern = pattern.replace(code, shown)
    return pattern
