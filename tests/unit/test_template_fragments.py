"""`{% static_fragment %}` (portal/web/template_fragments.py): rendered once per key and language, and unable to
read what its key does not name."""

from __future__ import annotations

import jinja2
import pytest

from portal import i18n
from portal.web import template_fragments
from portal.web.template_fragments import StaticFragments
from portal.web.template_locales import CompiledTranslations, LocalisedEnvironment, LocalisedLoader


class Renders:
    """A global that counts how often a fragment's body really ran."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, value: object) -> str:
        self.count += 1
        return f"[{value}]"


def _environment(templates: dict[str, str]) -> tuple[jinja2.Environment, Renders]:
    env = LocalisedEnvironment(
        loader=LocalisedLoader(jinja2.DictLoader(templates)),
        autoescape=True,
        extensions=[CompiledTranslations, StaticFragments],
    )
    env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=lambda message: i18n.translations(i18n.get_locale()).gettext(message),
        ngettext=lambda s, p, n: i18n.translations(i18n.get_locale()).ngettext(s, p, n),
        newstyle=False,
    )
    renders = Renders()
    env.globals["renders"] = renders
    return env, renders


PAGE = (
    "{% for item in items %}<p>{{ item.mine }}</p>"
    "{% static_fragment item.code %}<b>{{ renders(item.code) }} {% trans %}Legal basis{% endtrans %}</b>"
    "{% for part in item.parts %}<i>{{ part }}</i>{% endfor %}{% endstatic_fragment %}{% endfor %}"
)


def test_a_fragment_is_rendered_once_per_key_and_language() -> None:
    env, renders = _environment({"page.html": PAGE})
    items = [{"code": "a", "parts": ["<x>"], "mine": "one"}, {"code": "b", "parts": [], "mine": "two"}]
    with i18n.using_locale("en"):
        first = env.get_template("page.html").render(items=items)
        # The same keys with other values outside the fragment: those change, the fragments are the cached ones.
        again = env.get_template("page.html").render(items=[{**item, "mine": "other"} for item in items])
    assert renders.count == 2
    assert first == "<p>one</p><b>[a] Legal basis</b><i>&lt;x&gt;</i><p>two</p><b>[b] Legal basis</b>"
    assert again == first.replace("one", "other").replace("two", "other")
    with i18n.using_locale("fr"):
        french = env.get_template("page.html").render(items=items)
    assert renders.count == 4  # French is compiled apart, and its fragments are its own
    assert "<b>[a] Base légale</b>" in french


@pytest.mark.parametrize(
    "body",
    [
        "{{ consents }}",  # a page variable beside the key
        "{{ item.code }}{{ customer.email }}",
        "{% if other %}x{% endif %}",
        "{% for part in parts %}{{ part }}{% endfor %}",  # a loop over a page variable
        "{% trans who=customer.name %}Hello {{ who }}{% endtrans %}",
    ],
)
def test_a_fragment_that_reads_beyond_its_key_does_not_compile(body: str) -> None:
    env, _renders = _environment({"page.html": "{% static_fragment item.code %}" + body + "{% endstatic_fragment %}"})
    with pytest.raises(jinja2.TemplateSyntaxError, match="static_fragment reads"):
        env.get_template("en:page.html")


def test_past_the_bound_fragments_are_rendered_and_not_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(template_fragments, "MAX_FRAGMENTS", 3)
    env, renders = _environment({"page.html": PAGE})
    items = [{"code": str(n), "parts": [], "mine": ""} for n in range(5)]
    with i18n.using_locale("en"):
        for _ in range(2):
            env.get_template("page.html").render(items=items)
    assert renders.count == 5 + 2  # three kept, two rendered each time
