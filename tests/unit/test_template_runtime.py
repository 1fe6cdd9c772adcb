"""Templates written and called with less of Jinja2's per-value work (portal/web/template_runtime.py): same bytes."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from enum import IntEnum

import jinja2
import pytest
from markupsafe import Markup, escape

from portal.retailer import load_retailer
from portal.settings import load_settings
from portal.web.template_runtime import OutputCodeGenerator, PortalContext, escape_output
from portal.web.templating import make_environment


class Html:
    def __html__(self) -> str:
        return "<b>safe</b>"


class Tagged(str):
    """A str subclass: markupsafe asks it for __html__ and converts it, so escape_output must not take it as a str."""


class Level(IntEnum):
    LOW = 1

    def __str__(self) -> str:
        return "<low>"


VALUES = [
    "",
    "plain",
    "<script>alert('x') & \"y\"</script>",
    "déjà vu — 10\u202f000\xa0€",
    Markup("<em>kept</em>"),
    Markup("a &amp; b"),
    0,
    -42,
    10**30,
    True,
    None,
    1.5,
    Decimal("12.30"),
    date(2026, 12, 7),
    Html(),
    Tagged("<tagged>"),
    Level.LOW,
    ["<a>", 1],
]


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_escape_output_writes_what_escape_writes(value: object) -> None:
    assert escape_output(value) == str(escape(value))


TEMPLATES = {
    "macros.html": "{% macro cell(v) %}<td>{{ v }}</td>{% endmacro %}",
    "page.html": """{% import "macros.html" as m %}
{% macro row(v) %}<tr>{{ m.cell(v) }}{{ caller(v) if caller else "" }}</tr>{% endmacro %}
{% for v in values %}<p title="{{ v }}">{{ v }}</p>{{ row(v) }}
{% call(x) row(v) %}<i>{{ x }}</i>{% endcall %}{% endfor %}
{% set block %}<b>{{ values[2] }}</b>{% endset %}{{ block }}
{% filter upper %}{{ values[2] }}{% endfilter %}
{% autoescape false %}{{ values[2] }}{% endautoescape %}
{% autoescape true %}{{ values[2] }}{% endautoescape %}
{{ values[2]|e }} {{ values[4]|safe }} {{ values|length }} {{ "<literal>" }} {{ 1 + 2 }}
{% for v in values[:3] %}{% set inner = loop.index %}{{ plain(v, sep="|") }} {{ sees(v) }} {{ env_name() }}
{{ eval_escapes() }} {{ counter(v) }} {{ stopped() is undefined }}{% endfor %}
{% set outer = "block" %}{{ sees("after") }} {{ plain() }}
""",
    "mail.txt": "{{ values[2] }} {{ values[4] }} {{ values[6] }}",
}


@jinja2.pass_context
def sees(context: jinja2.runtime.Context, value: object = None) -> str:
    """What a context-taking function sees: the loop's and the block's variables too."""
    return f"{value}:{context.get('inner')}:{context.get('outer')}"


@jinja2.pass_environment
def env_name(environment: jinja2.Environment) -> str:
    return type(environment).__name__


@jinja2.pass_eval_context
def eval_escapes(eval_ctx: jinja2.nodes.EvalContext) -> str:
    return f"autoescape={eval_ctx.autoescape}"


class Counter:
    @jinja2.pass_context
    def __call__(self, context: jinja2.runtime.Context, value: object) -> str:
        return f"<{value}:{context.get('inner')}>"


def plain(*args: object, **kwargs: object) -> str:
    """A plain function: it must not receive the template's own _loop_vars or _block_vars."""
    return f"{args!r} {sorted(kwargs.items())!r}"


def stopped() -> object:
    raise StopIteration


CALLABLES = {"sees": sees, "env_name": env_name, "eval_escapes": eval_escapes, "counter": Counter(), "plain": plain}
CALLABLES["stopped"] = stopped


def _environment(*, ours: bool) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.DictLoader(TEMPLATES), autoescape=jinja2.select_autoescape(enabled_extensions=("html",))
    )
    if ours:
        env.code_generator_class = OutputCodeGenerator
        env.context_class = PortalContext
    env.globals.update(CALLABLES)
    return env


@pytest.mark.parametrize("name", ["page.html", "mail.txt"])
def test_templates_render_the_same_bytes_as_with_jinja2s_escape(name: str) -> None:
    context = {"values": VALUES}
    expected = _environment(ours=False).get_template(name).render(context)
    assert _environment(ours=True).get_template(name).render(context) == expected
    assert "&lt;script&gt;" in expected or name == "mail.txt"  # the page did escape: the comparison means something
    if name == "page.html":  # and the callables saw what Jinja2 gives them
        for seen in ("&lt;script&gt;alert(&#39;x&#39;) &amp; &#34;y&#34;&lt;/script&gt;:3:None", "after:None:block"):
            assert seen in expected
        assert "Environment" in expected and "autoescape=True" in expected and "&lt;plain:2&gt;" in expected
        assert "_loop_vars" not in expected and "True" in expected


def test_compiled_templates_write_values_through_escape_output() -> None:
    env = _environment(ours=True)
    source = env.compile(env.loader.get_source(env, "page.html")[0], raw=True)  # type: ignore[union-attr]
    assert "escape_output(" in source
    assert "escape(" not in source.replace("escape_output(", "")


def test_the_portal_environment_renders_with_them() -> None:
    settings = load_settings(environ={})
    env = make_environment(settings=settings, retailer=load_retailer(settings.retailer_file))
    assert env.code_generator_class is OutputCodeGenerator
    assert env.context_class is PortalContext
