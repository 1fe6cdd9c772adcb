"""`{% static_fragment key %}…{% endstatic_fragment %}`: a part of a page rendered once per process, language and key.

/me/processing and the privacy policy explain ten purposes in several hundred words of the retailer's own text, the
same for every customer: rendering it was half of those pages' time. What does change per customer (their consent,
when their data goes) stays outside the fragments, and the tag makes sure of it when the template is compiled:

- a fragment's body may read only the names its key is made of, the names it binds itself (a loop's variable) and the
  environment's globals (labels, `_`, the retailer). A fragment that reads `consents` or `customer` fails to compile,
  so a customer's data cannot be cached and shown to the next one;
- what a key names must not change while the process runs: the purpose register is loaded once at start-up, and its
  purposes are named by their code.

Templates are compiled once per language (template_locales), and a fragment is known by its template's name, which
holds the language, and its line: the cache never serves one language's text in another. It lives in the environment,
one per application, and holds at most MAX_FRAGMENTS entries; past that, fragments are rendered and not kept.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.ext import Extension
from jinja2.parser import Parser

MAX_FRAGMENTS = 1_000  # a register of 30 purposes, 3 fragments each, in 2 languages, is 180

# Names a for loop or a macro binds without a Name node of its own.
_IMPLICIT = {"loop", "caller", "varargs", "kwargs"}


class StaticFragments(Extension):
    tags = {"static_fragment"}

    def __init__(self, environment: jinja2.Environment) -> None:
        super().__init__(environment)
        self._cache: dict[tuple[str, Hashable], str] = {}

    def parse(self, parser: Parser) -> nodes.Node:
        token = next(parser.stream)
        key = parser.parse_expression()
        body = parser.parse_statements(("name:endstatic_fragment",), drop_needle=True)
        self._check_reads(parser, token.lineno, key, body)
        fragment = nodes.Const(f"{parser.name}:{token.lineno}")
        call = self.call_method("_render", [fragment, key])
        return nodes.CallBlock(call, [], [], body).set_lineno(token.lineno)

    def _check_reads(self, parser: Parser, lineno: int, key: nodes.Expr, body: list[nodes.Node]) -> None:
        """Fail the template when the body reads a name that is not its key's, its own or a global."""
        allowed = {name.name for name in key.find_all(nodes.Name)} | set(self.environment.globals) | _IMPLICIT
        for node in body:
            bound = {name.name for name in node.find_all(nodes.Name) if name.ctx in ("store", "param")}
            for name in node.find_all(nodes.Name):
                if name.ctx == "load" and name.name not in allowed | bound:
                    parser.fail(
                        f"static_fragment reads {name.name!r}, which its key does not name: what a fragment shows "
                        "must depend only on its key and the language",
                        name.lineno or lineno,
                    )

    def _render(self, fragment: str, key: Hashable, caller: Callable[[], str]) -> Any:
        cache_key = (fragment, key)
        cached = self._cache.get(cache_key)
        if cached is None:
            cached = caller()
            if len(self._cache) < MAX_FRAGMENTS:
                self._cache[cache_key] = cached
        return cached


class UncheckedStaticFragments(StaticFragments):
    """The tag as message extraction reads it (portal.catalogs): Babel parses templates in an environment without
    the portal's globals, where the reads check would refuse every global a fragment uses."""

    def _check_reads(self, parser: Parser, lineno: int, key: nodes.Expr, body: list[nodes.Node]) -> None:
        return None
