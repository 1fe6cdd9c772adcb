"""Templates compiled once per language (portal/web/template_locales.py): the same text as run-time translation."""

from __future__ import annotations

import jinja2
import pytest

from portal import i18n
from portal.web.template_locales import CompiledTranslations, LocalisedEnvironment, LocalisedLoader

TEMPLATES = {
    "layout.html": "<title>{% block title %}{% endblock %}</title><p>{% trans %}Legal basis{% endtrans %}</p>"
    "{% block content %}{% endblock %}",
    "macros.html": "{% macro basis() %}<b>{% trans %}Legal basis{% endtrans %}</b>{% endmacro %}",
    "page.html": """{% extends "layout.html" %}{% import "macros.html" as m %}
{% block title %}{% trans %}Your data{% endtrans %}{% endblock %}
{% block content %}
{{ m.basis() }}
{% trans date=day %}You gave your consent on {{ date }}.{% endtrans %}
{% trans version=version, date=day %}Privacy policy version {{ version }} of {{ date }}.{% endtrans %}
{% trans %}100% plain, never translated{% endtrans %}
{% trans share=share %}{{ share }}%% formatted, never translated{% endtrans %}
{% trans count=n %}{{ count }} purchase{% pluralize %}{{ count }} purchases{% endtrans %}
{% trans n=n %}{{ n }} day left{% pluralize %}{{ n }} days left{% endtrans %}
{% trans count=n, num=day %}{{ num }} page viewed in all, newest first.{% pluralize %}
{{ num }} pages viewed in all, newest first.{% endtrans %}
{% trans count=n %}Once{% pluralize %}Several times{% endtrans %}
{% trans share=share, again=share %}{{ share }}% then {{ again }}, never translated{% endtrans %}
{% trans %}
    Trimmed   across
    lines
{% endtrans %}
{% endblock %}""",
}
CONTEXT = {"day": "<1 mai>", "version": "3 & 4", "share": "<50>", "n": 2}


def _environment(
    env_class: type[jinja2.Environment], loader: jinja2.BaseLoader, extension: object
) -> jinja2.Environment:
    env = env_class(loader=loader, autoescape=True, extensions=[extension], trim_blocks=True, lstrip_blocks=True)
    env.policies["ext.i18n.trimmed"] = True
    env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=lambda message: i18n.translations(i18n.get_locale()).gettext(message),
        ngettext=lambda s, p, n: i18n.translations(i18n.get_locale()).ngettext(s, p, n),
        newstyle=False,
    )
    return env


# 0 takes the singular in French and the plural in English; "{{ count }} purchase" is not in the catalogues, so it
# falls back by n == 1 in both languages, which compiling by the language's rule would get wrong at 0.
@pytest.mark.parametrize("count", [0, 1, 2, 21])
@pytest.mark.parametrize("locale", i18n.SUPPORTED_LOCALES)
def test_compiled_text_is_what_run_time_translation_renders(locale: str, count: int) -> None:
    run_time = _environment(jinja2.Environment, jinja2.DictLoader(TEMPLATES), "jinja2.ext.i18n")
    compiled = _environment(LocalisedEnvironment, LocalisedLoader(jinja2.DictLoader(TEMPLATES)), CompiledTranslations)
    context = {**CONTEXT, "n": count}
    with i18n.using_locale(locale):
        expected = run_time.get_template("page.html").render(context)
        rendered = compiled.get_template("page.html").render(context)
    assert rendered == expected
    assert "&lt;1 mai&gt;" in rendered and "3 &amp; 4" in rendered and "&lt;50&gt;%" in rendered  # values escaped
    assert "100% plain" in rendered and "&lt;50&gt;% then &lt;50&gt;" in rendered
    assert ("Base légale" in rendered) == (locale == "fr")
    assert ("0 jour restant" in rendered) == (locale == "fr" and count == 0)
    assert ("&lt;1 mai&gt; pages consultées" in rendered) == (locale == "fr" and count > 1)


def test_a_template_and_what_it_extends_and_imports_speak_the_language_it_was_fetched_in() -> None:
    env = _environment(LocalisedEnvironment, LocalisedLoader(jinja2.DictLoader(TEMPLATES)), CompiledTranslations)
    with i18n.using_locale("fr"):
        french = env.get_template("page.html")
    with i18n.using_locale("en"):
        english = env.get_template("page.html")
    assert (french.name, english.name) == ("fr:page.html", "en:page.html")
    # Rendered in the other language's context, each still says what it was compiled to say: fetch inside the locale.
    with i18n.using_locale("en"):
        assert "<b>Base légale</b>" in french.render(CONTEXT) and "<p>Base légale</p>" in french.render(CONTEXT)
    with i18n.using_locale("fr"):
        assert "<b>Legal basis</b>" in english.render(CONTEXT)


def test_texts_and_plurals_in_the_catalogue_are_not_looked_up_at_run_time() -> None:
    env = _environment(LocalisedEnvironment, LocalisedLoader(jinja2.DictLoader(TEMPLATES)), CompiledTranslations)

    def no_run_time_gettext(message: str) -> str:
        raise AssertionError(f"translated at run time: {message!r}")

    def ngettext_of_missing_plurals_only(singular: str, plural: str, n: int) -> str:
        assert singular in ("%(count)s purchase", "Once"), f"translated at run time: {singular!r}"  # not catalogued
        return i18n.translations("fr").ngettext(singular, plural, n)

    env.globals.update(gettext=no_run_time_gettext, ngettext=ngettext_of_missing_plurals_only)
    with i18n.using_locale("fr"):
        rendered = env.get_template("page.html").render(CONTEXT)
    assert "Vous avez donné votre consentement le &lt;1 mai&gt;." in rendered and "2 jours restants" in rendered


def test_templates_made_from_strings_translate_at_run_time() -> None:
    env = _environment(LocalisedEnvironment, LocalisedLoader(jinja2.DictLoader(TEMPLATES)), CompiledTranslations)
    template = env.from_string("{% trans %}Legal basis{% endtrans %}")
    with i18n.using_locale("fr"):
        assert template.render() == "Base légale"
    with i18n.using_locale("en"):
        assert template.render() == "Legal basis"
