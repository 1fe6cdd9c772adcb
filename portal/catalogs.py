"""Translation catalogues: extract messages from the sources, update fr/en, check they are complete."""

from __future__ import annotations

import io

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from portal.i18n import LOCALES_DIR, SUPPORTED_LOCALES
from portal.settings import PROJECT_ROOT

POT_PATH = LOCALES_DIR / "messages.pot"
METHOD_MAP = [
    ("portal/**.py", "python"),
    ("templates/**.html", "jinja2"),
    ("templates/**.txt", "jinja2"),
]
# The templates' own tags must parse, or Babel skips the whole file without a word.
TEMPLATE_EXTENSIONS = "jinja2.ext.i18n,portal.web.template_fragments.UncheckedStaticFragments"
OPTIONS_MAP = {
    "portal/**.py": {},
    "templates/**.html": {"extensions": TEMPLATE_EXTENSIONS, "trimmed": "false"},
    "templates/**.txt": {"extensions": TEMPLATE_EXTENSIONS, "trimmed": "false"},
}
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "lazy_gettext": None, "lazy_pgettext": ((1, "c"), 2)}


def extract() -> Catalog:
    """Every translatable message in portal/ and templates/, as a fresh catalogue."""
    catalog = Catalog(project="privacy-portal", msgid_bugs_address="dpo@example.com", charset="utf-8")
    for filename, lineno, message, comments, context in extract_from_dir(
        PROJECT_ROOT,
        method_map=METHOD_MAP,
        options_map=OPTIONS_MAP,
        keywords=KEYWORDS,
        comment_tags=("Translators:",),
        strip_comment_tags=True,
    ):
        if "/migrations/" in filename:
            continue
        catalog.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    return catalog


def _po_bytes(catalog: Catalog) -> bytes:
    buffer = io.BytesIO()
    write_po(buffer, catalog, width=120, omit_header=False, sort_output=True, include_lineno=False)
    return buffer.getvalue()


def message_ids(catalog: Catalog) -> set[object]:
    return {message.id for message in catalog if message.id}


def update_catalogs() -> None:
    """Rewrite messages.pot and merge it into each language (new entries arrive empty, to be translated)."""
    template = extract()
    POT_PATH.parent.mkdir(parents=True, exist_ok=True)
    POT_PATH.write_bytes(_po_bytes(template))
    for locale in SUPPORTED_LOCALES:
        path = LOCALES_DIR / locale / "LC_MESSAGES" / "messages.po"
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            with path.open("rb") as fp:
                catalog = read_po(fp, locale=locale)
        else:
            catalog = Catalog(locale=locale, project="privacy-portal", charset="utf-8")
        catalog.update(template, no_fuzzy_matching=True)
        catalog.obsolete.clear()
        catalog.fuzzy = False  # a fuzzy header would drop Plural-Forms from the compiled catalogue
        path.write_bytes(_po_bytes(catalog))


def check_catalogs() -> list[str]:
    """Problems that make a commit incomplete: stale messages.pot, untranslated or fuzzy entries."""
    problems: list[str] = []
    fresh = message_ids(extract())
    if not POT_PATH.exists():
        return [f"{POT_PATH} is missing: run `portal catalog update`"]
    with POT_PATH.open("rb") as fp:
        pot = message_ids(read_po(fp))
    for missing in sorted(map(str, fresh - pot)):
        problems.append(f"messages.pot lacks {missing!r}: run `portal catalog update`")
    for stale in sorted(map(str, pot - fresh)):
        problems.append(f"messages.pot still has {stale!r}, no longer in the sources: run `portal catalog update`")
    for locale in SUPPORTED_LOCALES:
        path = LOCALES_DIR / locale / "LC_MESSAGES" / "messages.po"
        if not path.exists():
            problems.append(f"{path} is missing")
            continue
        with path.open("rb") as fp:
            catalog = read_po(fp, locale=locale)
        ids = message_ids(catalog)
        for missing in sorted(map(str, fresh - ids)):
            problems.append(f"{locale}: no entry for {missing!r}")
        for message in catalog:
            if not message.id:
                continue
            strings = message.string if isinstance(message.string, tuple) else (message.string,)
            if message.fuzzy:
                problems.append(f"{locale}: fuzzy entry {message.id!r}")
            elif not all(strings):
                problems.append(f"{locale}: untranslated {message.id!r}")
    return problems
