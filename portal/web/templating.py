"""The one Jinja2 environment that renders pages and emails (HTML autoescaped, plain-text emails not)."""

from __future__ import annotations

import hashlib
import re
from datetime import date
from functools import cache

import jinja2
from markupsafe import Markup, escape

from portal import i18n
from portal.labels import TEMPLATE_GLOBALS, not_held_label, note_code, note_text
from portal.retailer import Retailer
from portal.settings import STATIC_DIR, TEMPLATES_DIR, Settings
from portal.web.template_fragments import StaticFragments
from portal.web.template_locales import CompiledTranslations, LocalisedEnvironment, LocalisedLoader
from portal.web.template_runtime import OutputCodeGenerator, PortalContext


@cache
def _static_digest(path: str) -> str:
    file = STATIC_DIR / path
    return hashlib.sha256(file.read_bytes()).hexdigest()[:12] if file.is_file() else "missing"


def static_url(path: str) -> str:
    """URL of a static file with a content hash, so it can be cached for a year and still change on deploy."""
    return f"/static/{path}?v={_static_digest(path)}"


URL = re.compile(r"https?://[^\s<>\"']+")


def linkify(text: str) -> Markup:
    """Escape plain text and make its http(s) URLs clickable (the demo mailbox shows text emails this way)."""
    escaped = str(escape(text))
    # Safe: the text was escaped first, and the URL pattern excludes quotes and angle brackets.
    return Markup(URL.sub(lambda m: f'<a href="{m.group(0)}">{m.group(0)}</a>', escaped))  # noqa: S704


def from_iso_date(value: str) -> date | str:
    """A stored YYYY-MM-DD as a date, for the `date` filter to show in the reader's language; anything else as is."""
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        return value


def make_environment(*, settings: Settings, retailer: Retailer) -> jinja2.Environment:
    env = LocalisedEnvironment(
        loader=LocalisedLoader(jinja2.FileSystemLoader(TEMPLATES_DIR)),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=True),
        # {% trans %} translated as each template is compiled, once per language (template_locales says why).
        extensions=[CompiledTranslations, StaticFragments],
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        # Checking template files for changes costs two stat() calls per render; only development wants it.
        auto_reload=settings.environment == "development",
    )
    # Values written and functions called with less of Jinja2's per-value work (template_runtime says why).
    env.code_generator_class = OutputCodeGenerator
    env.context_class = PortalContext
    # What is still translated at run time: `_()` in expressions, plurals missing from the catalogue, templates made
    # from strings (template_locales lists them).
    env.install_gettext_callables(  # type: ignore[attr-defined]  # added by the jinja2.ext.i18n extension
        gettext=lambda message: i18n.translations(i18n.get_locale()).gettext(message),
        ngettext=lambda s, p, n: i18n.translations(i18n.get_locale()).ngettext(s, p, n),
        # Old-style gettext: {% trans %} variables are still escaped (Markup %), and it renders the overview
        # 15% faster than newstyle's per-call wrapper; `ngettext()` in expressions is formatted with `%` by hand.
        newstyle=False,
    )
    env.filters.update(
        datetime=i18n.format_datetime,
        date=i18n.format_date,
        time=i18n.format_time,
        number=i18n.format_number,
        money=i18n.format_money,
        percent=i18n.format_percent,
        linkify=linkify,
        from_iso_date=from_iso_date,
    )
    # Not code lookups (an unknown code is not shown as it is): beside TEMPLATE_GLOBALS.
    env.globals.update(TEMPLATE_GLOBALS, not_held_label=not_held_label, note_code=note_code, note_text=note_text)
    # The values templates need, one by one: never the Settings object, which holds the secret key and the SMTP
    # password (a template, or anything rendering one, must not be able to print them).
    env.globals.update(
        retailer=retailer,
        base_url=settings.base_url,  # absolute links in emails
        static_url=static_url,
        current_locale=i18n.get_locale,
        locale_names=i18n.LOCALE_NAMES,
        supported_locales=i18n.SUPPORTED_LOCALES,
        nbsp=Markup("&nbsp;"),
    )
    return env
