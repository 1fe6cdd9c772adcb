"""Negotiation and Babel formatting for each locale."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from babel import dates as babel_dates
from babel.messages.pofile import read_po

from portal import i18n


@pytest.mark.parametrize(
    ("chosen", "header", "expected"),
    [
        (None, None, "fr"),
        ("en", "fr", "en"),
        ("xx", "en-US,en;q=0.8", "en"),
        (None, "es, en;q=0.2", "en"),
        (None, "en;q=0.2, fr;q=0.8", "fr"),
    ],
)
def test_negotiation(chosen, header, expected) -> None:
    assert i18n.negotiate_locale(chosen=chosen, accept_language=header) == expected


def test_money_numbers_and_dates_follow_the_locale() -> None:
    with i18n.using_locale("fr"):
        assert i18n.format_money(123450).replace("\u202f", " ").replace("\xa0", " ") == "1 234,50 €"
        assert i18n.format_number(10000).replace("\u202f", " ").replace("\xa0", " ") == "10 000"
        assert i18n.format_date(date(2026, 11, 23)) == "23 novembre 2026"
    with i18n.using_locale("en"):
        assert i18n.format_money(123450) == "€1,234.50"
        assert i18n.format_number(10000) == "10,000"


def test_times_are_shown_in_europe_paris() -> None:
    # 23:30 UTC on 31 December is already the next year in Paris.
    with i18n.using_locale("en"):
        assert i18n.format_date(datetime(2025, 12, 31, 23, 30, tzinfo=UTC)) == "1 January 2026"
        assert i18n.format_time(datetime(2026, 7, 1, 12, 0, tzinfo=UTC)) == "14:00"


@pytest.mark.parametrize("locale", ["fr", "en"])
@pytest.mark.parametrize("format", ["short", "medium", "long", "full"])
def test_times_read_from_the_cache_are_babel_s_own(locale: str, format: str) -> None:
    # Times of day are formatted once per minute (or second) and locale; across a change to summer time and back,
    # every format must still be what Babel gives for the instant itself, zone names included.
    zone = ZoneInfo("Europe/Paris")
    moments = [datetime(2026, 3, 28, 22, 0, tzinfo=UTC) + timedelta(minutes=7 * n, seconds=n % 60) for n in range(500)]
    moments += [datetime(2026, 10, 25, 0, 30, tzinfo=UTC) + timedelta(minutes=10 * n) for n in range(20)]
    with i18n.using_locale(locale):
        babel_locale = i18n._babel_locale()
        for moment in moments * 2:  # the second pass reads the cache
            expected = babel_dates.format_time(moment.astimezone(zone), format=format, locale=babel_locale)
            assert i18n.format_time(moment, format) == expected


def test_french_uses_the_singular_for_zero_and_one() -> None:
    french = i18n.translations("fr")
    singular = french.ngettext("%(num)s page viewed", "%(num)s pages viewed", 1)
    assert french.ngettext("%(num)s page viewed", "%(num)s pages viewed", 0) == singular
    assert french.ngettext("%(num)s page viewed", "%(num)s pages viewed", 2) != singular
    english = i18n.translations("en")
    assert english.ngettext("%(num)s page viewed", "%(num)s pages viewed", 0) == "%(num)s pages viewed"


@pytest.mark.parametrize(
    ("preferred", "page", "expected"),
    [
        ("fr", "en", "en"),  # her own act from an English page: the page's language, all through the flow
        ("fr", None, "fr"),  # a step staff take: the language she prefers
        ("en", None, "en"),
        ("xx", None, "fr"),
        (None, "en", "en"),
    ],
)
def test_one_rule_for_an_email_s_language(preferred, page, expected) -> None:
    assert i18n.email_language(preferred, acting_on_page=page) == expected


# Words French writes as English does (cognates, the archive README's headings): every other French entry must read
# differently from the English one, or it was left untranslated.
SAME_IN_FRENCH_AND_ENGLISH = frozenset(
    {
        "%(num)s page",
        "Action",
        "Actions",
        "Audit",
        "CNIL",  # the French authority's name, in both languages
        "Confirmation",
        "Date",
        "FORMATS",
        "Incident %(reference)s",
        "GPC",  # Global Privacy Control, a browser signal named the same in every language
        "Incidents",
        "Message",
        "Page",
        "Pages",
        "QUESTIONS",
        "Question",
        "question",
        "Rectification",
        "Total",
        "Type",
    }
)


def test_no_french_entry_is_the_english_one_but_the_declared_cognates() -> None:
    def entries(locale: str) -> dict[tuple[str | None, str], object]:
        with i18n.catalog_path(locale).open("rb") as file:
            catalog = read_po(file, locale=locale)
        return {(m.context, m.id if isinstance(m.id, str) else m.id[0]): m.string for m in catalog if m.id}

    french, english = entries("fr"), entries("en")
    alike = {msgid for key, msgid in ((k, k[1]) for k in french) if french[key] == english.get(key)}
    assert alike <= SAME_IN_FRENCH_AND_ENGLISH, f"untranslated in French: {sorted(alike - SAME_IN_FRENCH_AND_ENGLISH)}"
