"""Templates compiled once per language, their `{% trans %}` texts translated when they are compiled.

A `{% trans %}` left to run time costs a call through Jinja2's context, a catalogue look-up and an escape, ≈3 µs;
a page has 25–140 of them (bench/README.md, issue 17). Compiled per language it is text written into the template.

The language is part of the template's name: `get_template("base.html")` loads "fr:base.html" when the request speaks
French, and what that template extends, includes or imports is loaded in French too (`join_path`). A template is
therefore rendered in the language that was current when it was fetched: fetch it inside `i18n.using_locale`, not
before. Plural forms, `{{ _("…") }}` in expressions and templates made from strings still translate at run time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, MutableMapping
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.ext import InternationalizationExtension
from jinja2.parser import Parser

from portal import i18n

_SEPARATOR = ":"
# The language of the template being parsed, for the extension's `_make_node`, which is not given the parser. Parsing
# is synchronous: a thread parses one template at a time.
_parsing = threading.local()


def _split(name: str) -> tuple[str | None, str]:
    locale, separator, rest = name.partition(_SEPARATOR)
    return (locale, rest) if separator and locale in i18n.SUPPORTED_LOCALES else (None, name)


class CompiledTranslations(InternationalizationExtension):
    """Jinja2's i18n extension, but a `{% trans %}` with no plural is translated as the template is compiled."""

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
        locale = getattr(_parsing, "locale", None)
        if locale is None or plural_expr is not None or context is not None or self.environment.newstyle_gettext:  # type: ignore[attr-defined]
            return super()._make_node(
                singular, plural, context, variables, plural_expr, vars_referenced, num_called_num
            )
        # What Jinja2's old-style gettext call does at run time (ext.py, `_make_node`), with the catalogue read now:
        # "%%" is "%" when no variable is formatted in, the text is markup-safe, and variables are formatted with `%`
        # into it, escaped by Markup.
        if not vars_referenced:
            singular = singular.replace("%%", "%")
        node: nodes.Expr = nodes.MarkSafeIfAutoescape(nodes.Const(i18n.translations(locale).gettext(singular)))
        if variables:
            pairs = [nodes.Pair(nodes.Const(key), value) for key, value in variables.items()]
            node = nodes.Mod(node, nodes.Dict(pairs))
        return nodes.Output([node])


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
