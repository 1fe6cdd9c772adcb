"""Templates compiled once per language, their `{% trans %}` texts translated when they are compiled.

A `{% trans %}` left to run time costs a call through Jinja2's context, a catalogue look-up and an escape, ≈3 µs;
a page has 25–140 of them (bench/README.md, issue 17). Compiled per language it is text written into the template.
Its variables are written in where the text names them, as `{{ }}` would be (formatting them with `Markup %` took
2.5 µs a text), and a plural picks one of its forms, each compiled the same way, by the language's plural rule.

The language is part of the template's name: `get_template("base.html")` loads "fr:base.html" when the request speaks
French, and what that template extends, includes or imports is loaded in French too (`join_path`). A template is
therefore rendered in the language that was current when it was fetched: fetch it inside `i18n.using_locale`, not
before. `{{ _("…") }}` in expressions, a `{% trans %}` with a context, a plural whose catalogue entry is missing,
and templates made from strings still translate at run time.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, MutableMapping
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.ext import InternationalizationExtension
from jinja2.parser import Parser

from portal import i18n

_SEPARATOR = ":"
# What Jinja2's old-style `%` formatting of a {% trans %} text reads: a variable (which its body writes as %(name)s),
# or "%%". Any other "%" is left to run time, where `%` does what it always did.
_FORMAT = re.compile(r"%\((\w+)\)s|%%|%")
# The filter that gives a count's plural form, index 0 or 1, in a language: a filter is called directly, where a
# function in the template would go through its context.
PLURAL_FORM_FILTER = "plural_form"
# The language of the template being parsed, for the extension's `_make_node`, which is not given the parser. Parsing
# is synchronous: a thread parses one template at a time.
_parsing = threading.local()


def _split(name: str) -> tuple[str | None, str]:
    locale, separator, rest = name.partition(_SEPARATOR)
    return (locale, rest) if separator and locale in i18n.SUPPORTED_LOCALES else (None, name)


class CompiledTranslations(InternationalizationExtension):
    """Jinja2's i18n extension, but a `{% trans %}` is translated as the template is compiled: its text, or its two
    plural forms and the choice between them."""

    def __init__(self, environment: jinja2.Environment) -> None:
        super().__init__(environment)
        environment.filters[PLURAL_FORM_FILTER] = plural_form

    def parse(self, parser: Parser) -> nodes.Node | list[nodes.Node]:
        _parsing.locale = _split(parser.name)[0] if parser.name else None
        try:
            return super().parse(parser)
        finally:
            _parsing.locale = None

    def _make_node(
        self,
        singular: str,
        plural: str | None,
        context: str | None,
        variables: dict[str, nodes.Expr],
        plural_expr: nodes.Expr | None,
        vars_referenced: bool,
        num_called_num: bool,
    ) -> nodes.Output:
        locale: str | None = getattr(_parsing, "locale", None)
        at_run_time = context is not None or self.environment.newstyle_gettext  # type: ignore[attr-defined]
        forms = None if locale is None or at_run_time else _forms(locale, singular, plural, vars_referenced)
        if forms is None:
            return super()._make_node(
                singular, plural, context, variables, plural_expr, vars_referenced, num_called_num
            )
        if plural_expr is None:
            return _output(forms[0], variables)
        # Two forms (French and English have two): the first when the language's rule says 0, else the second.
        which = nodes.Filter(plural_expr, PLURAL_FORM_FILTER, [nodes.Const(locale)], [], None, None)
        chosen = nodes.Compare(which, [nodes.Operand("eq", nodes.Const(0))])
        # Typed as Jinja2 types `_make_node`; `parse` returns whatever node it is given.
        return nodes.If(chosen, [_output(forms[0], variables)], [], [_output(forms[1], variables)])  # type: ignore[return-value]


def plural_form(count: int, locale: str) -> int:
    """Which plural form `count` takes in `locale`: what `ngettext` computes first (`GNUTranslations.plural`)."""
    return i18n.translations(locale).plural(count)  # type: ignore[attr-defined]


def _forms(locale: str, singular: str, plural: str | None, vars_referenced: bool) -> list[str] | None:
    """The catalogue's text, or its two plural forms, as Jinja2's old-style call would get them at run time; None
    when compiling them could differ from run time (a plural missing from the catalogue falls back by n == 1, not
    by the language's rule)."""
    catalogue = i18n.translations(locale)
    # What the run-time call does to a text into which no variable is formatted.
    if not vars_referenced:
        singular = singular.replace("%%", "%")
        plural = plural.replace("%%", "%") if plural is not None else None
    if plural is None:
        return [catalogue.gettext(singular)]
    rule = getattr(catalogue, "plural", None)
    if rule is None:
        return None
    forms: dict[int, str] = {}
    for count in range(200):
        form = catalogue.ngettext(singular, plural, count)
        if forms.setdefault(rule(count), form) != form:
            return None
    return [forms[0], forms[1]] if sorted(forms) == [0, 1] else None


def _output(text: str, variables: dict[str, nodes.Expr]) -> nodes.Output:
    """`text` with its variables written in as `{{ }}` writes them (escaped under autoescape, as `Markup %` did);
    the text itself is markup-safe. A text that `%` would read otherwise keeps the run-time `%` formatting."""
    if not variables:
        return nodes.Output([nodes.MarkSafeIfAutoescape(nodes.Const(text))])
    parts: list[nodes.Expr] = []
    position = 0
    for match in _FORMAT.finditer(text):
        name = match.group(1)
        if match.group(0) != "%%" and name not in variables:
            pairs = [nodes.Pair(nodes.Const(key), value) for key, value in variables.items()]
            return nodes.Output([nodes.Mod(nodes.MarkSafeIfAutoescape(nodes.Const(text)), nodes.Dict(pairs))])
        parts.append(nodes.TemplateData(text[position : match.start()] + ("%" if name is None else "")))
        if name is not None:
            parts.append(variables[name])
        position = match.end()
    parts.append(nodes.TemplateData(text[position:]))
    return nodes.Output([part for part in parts if not (isinstance(part, nodes.TemplateData) and not part.data)])


class LocalisedLoader(jinja2.BaseLoader):
    """Reads "fr:base.html" from the file of "base.html": the language is in the name only."""

    def __init__(self, files: jinja2.BaseLoader) -> None:
        self.files = files

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str | None, Callable[[], bool] | None]:
        return self.files.get_source(environment, _split(template)[1])

    def list_templates(self) -> list[str]:
        return self.files.list_templates()


class LocalisedEnvironment(jinja2.Environment):
    """An environment whose templates are fetched in the current language (`i18n.get_locale()`)."""

    def get_template(
        self,
        name: str | jinja2.Template,
        parent: str | None = None,
        globals: MutableMapping[str, Any] | None = None,  # noqa: A002  # Jinja2's own parameter name
    ) -> jinja2.Template:
        if isinstance(name, str) and parent is None and _split(name)[0] is None:
            name = f"{i18n.get_locale()}{_SEPARATOR}{name}"
        return super().get_template(name, parent, globals)

    def make_globals(self, d: MutableMapping[str, Any] | None) -> MutableMapping[str, Any]:
        """A template's globals as one dict, not Jinja2's ChainMap over the environment's: every render copies them
        into its context, and copying a ChainMap is a Python call per name, 30 µs a render with our 35 globals (a page
        renders one template, an email three). As Jinja2 asks, the environment's globals are all set before the first
        template is loaded (`make_environment`, `create_app`)."""
        return {**self.globals, **(d or {})}

    def join_path(self, template: str, parent: str) -> str:
        """What a template extends, includes or imports, in the parent's language."""
        locale = _split(parent)[0]
        return template if locale is None or _split(template)[0] else f"{locale}{_SEPARATOR}{template}"
