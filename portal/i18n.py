"""Locales: catalogues, the per-request locale, negotiation and Babel formatting.

The locale is resolved once per request by `LocaleMiddleware` and kept in a context variable, so templates,
services rendering emails and error pages all speak the same language without passing it around.
"""

from __future__ import annotations

import contextlib
import gettext as gettext_module
import io
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import date, datetime, time
from decimal import Decimal
from functools import cache, lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from babel import Locale
from babel import dates as babel_dates
from babel import numbers as babel_numbers
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from portal.settings import PROJECT_ROOT

LOCALES_DIR = PROJECT_ROOT / "locales"
SUPPORTED_LOCALES = ("fr", "en")
DEFAULT_LOCALE = "fr"
LOCALE_NAMES = {"fr": "Français", "en": "English"}

_current_locale: ContextVar[str] = ContextVar("locale", default=DEFAULT_LOCALE)
_current_timezone: ContextVar[str] = ContextVar("timezone", default="Europe/Paris")


@cache
def translations(locale: str) -> gettext_module.NullTranslations:
    """The catalogue of `locale`, compiled in memory from its .po file (no build step to forget)."""
    po_path = LOCALES_DIR / locale / "LC_MESSAGES" / "messages.po"
    if not po_path.exists():
        return gettext_module.NullTranslations()
    with po_path.open("rb") as fp:
        catalog = read_po(fp, locale=locale)
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return gettext_module.GNUTranslations(buffer)


def get_locale() -> str:
    return _current_locale.get()


def set_locale(locale: str) -> None:
    _current_locale.set(locale if locale in SUPPORTED_LOCALES else DEFAULT_LOCALE)


def set_timezone(name: str) -> None:
    _current_timezone.set(name)


@contextlib.contextmanager
def using_locale(locale: str) -> Iterator[None]:
    """Speak `locale` inside the block (emails go out in the recipient's language, not the requester's)."""
    token = _current_locale.set(locale if locale in SUPPORTED_LOCALES else DEFAULT_LOCALE)
    try:
        yield
    finally:
        _current_locale.reset(token)


def email_language(preferred: str | None, *, acting_on_page: str | None = None) -> str:
    """The one rule for the language of an email to a person, applied by every sender.

    The language of the page the person is using when their own act sends the email, else the language they prefer
    (a step taken by staff, a job): one flow never changes language half-way.
    """
    for choice in (acting_on_page, preferred):
        if choice in SUPPORTED_LOCALES:
            return choice
    return DEFAULT_LOCALE


class ContextualMessage(str):
    """A message id with a context (gettext's msgctxt), for a word a language translates differently by role:
    the status "Received" is « Reçue » in French, the date label "Received" « Reçu le »."""

    context: str

    def __new__(cls, context: str, message: str) -> ContextualMessage:
        instance = super().__new__(cls, message)
        instance.context = context
        return instance


def gettext(message: str, **variables: object) -> str:
    if isinstance(message, ContextualMessage):
        text = translations(get_locale()).pgettext(message.context, str(message))
    else:
        text = translations(get_locale()).gettext(message)
    return text % variables if variables else text


def ngettext(singular: str, plural: str, n: int, **variables: object) -> str:
    text = translations(get_locale()).ngettext(singular, plural, n)
    variables.setdefault("num", n)
    return text % variables


_ = gettext


def lazy_gettext(message: str) -> str:
    """Marks a string for extraction where it is defined; translate it with `gettext` where it is shown."""
    return message


def lazy_pgettext(context: str, message: str) -> str:
    """As `lazy_gettext`, for a message with a context; `gettext` translates it in that context."""
    return ContextualMessage(context, message)


def parse_accept_language(header: str) -> list[str]:
    """Language tags of an Accept-Language header, best first (q=0 means "not this one")."""
    weighted = []
    for position, part in enumerate(header.split(",")):
        pieces = part.strip().split(";")
        tag = pieces[0].strip().lower()
        if not tag or tag == "*":
            continue
        quality = 1.0
        for parameter in pieces[1:]:
            name, _sep, value = parameter.strip().partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > 0:
            weighted.append((-quality, position, tag))
    return [tag for _q, _p, tag in sorted(weighted)]


def negotiate_locale(*, chosen: str | None, accept_language: str | None, default: str = DEFAULT_LOCALE) -> str:
    """Explicit choice, then the browser's Accept-Language, then the default."""
    if chosen in SUPPORTED_LOCALES:
        return chosen
    for tag in parse_accept_language(accept_language or ""):
        primary = tag.split("-")[0]
        if primary in SUPPORTED_LOCALES:
            return primary
    return default


# --- Formatting, always for the current locale and in the configured time zone ----------------------------------


def _babel_locale() -> Locale:
    return _babel_locale_for(get_locale())


@cache
def _babel_locale_for(locale: str) -> Locale:
    return Locale.parse({"fr": "fr_FR", "en": "en_GB"}.get(locale, locale))


def local_time(value: datetime) -> datetime:
    return value.astimezone(ZoneInfo(_current_timezone.get()))


def format_datetime(value: datetime | None, format: str = "medium") -> str:
    if value is None:
        return ""
    return babel_dates.format_datetime(local_time(value), format=format, locale=_babel_locale())


def format_date(value: date | datetime | None, format: str = "long") -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = local_time(value).date()
    return _format_date(value, format, get_locale())


# Babel re-reads locale data and re-parses the pattern on every call (a third of the overview's render time);
# pages repeat the same few dates and counts, so the formatted strings are kept.
@lru_cache(maxsize=8192)
def _format_date(value: date, format: str, locale: str) -> str:
    return babel_dates.format_date(value, format=format, locale=_babel_locale_for(locale))


def format_time(value: datetime | None, format: str = "short") -> str:
    if value is None:
        return ""
    local, locale = local_time(value), get_locale()
    clock_fields = _clock_fields(format, locale)
    if clock_fields is None:  # the pattern shows more than the clock (a time zone): format the instant itself
        return babel_dates.format_time(local, format=format, locale=_babel_locale_for(locale))
    second = local.second if "s" in clock_fields else 0
    return _format_clock(local.hour, local.minute, second, format, locale)


# What a time pattern may show for the result to depend on the wall clock alone (hours, minutes, seconds, AM/PM).
_CLOCK_FIELDS = frozenset("hHkKmsabB")


@cache
def _clock_fields(format: str, locale: str) -> frozenset[str] | None:
    """The fields of `locale`'s `format` time pattern, or None when it shows anything else (a zone, fractions)."""
    time_formats = _babel_locale_for(locale).time_formats
    # A named format ("short"…) or, as Babel also takes, a pattern of its own ("HH:mm").
    pattern = time_formats[format].pattern if format in time_formats else format
    fields = frozenset(token[1][0] for token in babel_dates.tokenize_pattern(pattern) if token[0] == "field")
    return fields if fields <= _CLOCK_FIELDS else None


# A browsing page lists hundreds of times of day: Babel took ~14 µs for each (21% of the page's samples,
# bench/README.md), while a day holds at most 1,440 distinct minutes: each is formatted once per locale.
@lru_cache(maxsize=8192)
def _format_clock(hour: int, minute: int, second: int, format: str, locale: str) -> str:
    return babel_dates.format_time(time(hour, minute, second), format=format, locale=_babel_locale_for(locale))


def format_number(value: int | float | Decimal) -> str:
    return _format_number(value, get_locale())


@lru_cache(maxsize=8192)
def _format_number(value: int | float | Decimal, locale: str) -> str:
    return babel_numbers.format_decimal(value, locale=_babel_locale_for(locale))


def format_money(cents: int, currency: str = "EUR") -> str:
    return _format_money(cents, currency, get_locale())


@lru_cache(maxsize=8192)
def _format_money(cents: int, currency: str, locale: str) -> str:
    return babel_numbers.format_currency(Decimal(cents) / 100, currency, locale=_babel_locale_for(locale))


def catalog_path(locale: str) -> Path:
    return LOCALES_DIR / locale / "LC_MESSAGES" / "messages.po"


def format_percent(value: float) -> str:
    """`value` in percent (95.5 → "95.5%" / "95,5 %"), one decimal at most."""
    return _format_percent(round(value, 1), get_locale())


@lru_cache(maxsize=1024)
def _format_percent(value: float, locale: str) -> str:
    # The locale's own pattern ("95,5 %" in French), with the decimal kept rather than rounded away.
    fraction = Decimal(str(value)) / 100
    return babel_numbers.format_percent(fraction, locale=_babel_locale_for(locale), decimal_quantization=False)
