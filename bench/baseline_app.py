"""The bare baseline: Starlette + Jinja2 rendering one page, no database, no middleware, no i18n.

`bench/overview.py` serves it with the same uvicorn flags as the portal and sets BENCH_BASELINE_BYTES to the byte
size of the portal page, so both send pages of about the same size: the list at the bottom of the page is
lengthened until the rendered page reaches that size. The template is rendered on every request, as the portal
does; only the data is prepared once.

    uvicorn --app-dir bench baseline_app:app   # standalone, with a page of the default size
"""

from __future__ import annotations

import os
from typing import Any

import jinja2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

DEFAULT_BYTES = 5_000

TEMPLATE = """\
<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{{ title }} · {{ shop.name }}</title>
  <link rel="stylesheet" href="/static/css/site.css?v=0123456789ab">
  <link rel="icon" href="/static/img/logo.svg?v=0123456789ab">
</head>
<body>
  <a class="skip-link" href="#main">Skip to main content</a>
  <header class="site-header">
    <div class="site-header__inner">
      <a class="brand" href="/">
        <img src="/static/img/logo.svg?v=0123456789ab" alt="" width="36" height="36">
        <span>{{ shop.name }}<span class="brand__sub">{{ shop.tagline }}</span></span>
      </a>
      <nav class="header-nav" aria-label="Account and language">
        <ul class="language-switcher">
          {% for code, label in languages %}
          <li><a href="/lang/{{ code }}?next={{ path|urlencode }}" lang="{{ code }}">{{ label }}</a></li>
          {% endfor %}
        </ul>
      </nav>
    </div>
  </header>
  <main id="main" tabindex="-1" class="page">
    <h1>{{ title }}, {{ user.first_name }}</h1>
    <p class="lead">Everything we hold about you, in one place. Customer since {{ user.since }}.</p>
    <div class="cards">
      {% for card in cards %}
      <section class="card" aria-labelledby="card-{{ loop.index }}">
        <h2 id="card-{{ loop.index }}">{{ card.title }}</h2>
        <p class="figure">{{ "{:,}".format(card.count) }} {{ card.unit }}</p>
        <p class="hint">{{ card.hint }}</p>
      </section>
      {% endfor %}
    </div>
    <ul class="tags">
      {% for item in items %}
      <li><a href="/items/{{ item.id }}">{{ item.label }}</a> <span class="hint">{{ item.detail }}</span></li>
      {% endfor %}
    </ul>
  </main>
  <footer class="site-footer">
    <p>{{ shop.legal_name }} · {{ shop.address }}</p>
  </footer>
</body>
</html>
"""

environment = jinja2.Environment(
    loader=jinja2.DictLoader({"page.html": TEMPLATE}),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
)

BASE_CONTEXT: dict[str, Any] = {
    "title": "Your data",
    "path": "/",
    "shop": {
        "name": "Maison Aubépine",
        "tagline": "My personal data",
        "legal_name": "Maison Aubépine SAS",
        "address": "12 rue de la République, 69002 Lyon",
    },
    "languages": [("fr", "Français"), ("en", "English")],
    "user": {"first_name": "Camille", "since": "12 March 2019"},
    "cards": [
        {"title": "Purchases", "count": 10_000, "unit": "purchases", "hint": "Last purchase: 31 October 2026"},
        {"title": "Browsing", "count": 100_000, "unit": "pages viewed", "hint": "Last visit: 31 October 2026"},
        {"title": "Profile", "count": 8, "unit": "pieces of information held", "hint": "Name, address, phone"},
    ],
}


def _item(n: int) -> dict[str, Any]:
    return {"id": n, "label": f"Item {n:05d}", "detail": f"recorded on day {n % 365 + 1:03d}"}


def _render(context: dict[str, Any]) -> str:
    return environment.get_template("page.html").render(context)


def build_context(target_bytes: int) -> dict[str, Any]:
    """The page's data, with as many list items as it takes to bring the page to about `target_bytes`."""
    empty = len(_render({**BASE_CONTEXT, "items": []}).encode())
    one = len(_render({**BASE_CONTEXT, "items": [_item(1)]}).encode())
    count = max(0, round((target_bytes - empty) / max(1, one - empty)))
    return {**BASE_CONTEXT, "items": [_item(n) for n in range(1, count + 1)]}


CONTEXT = build_context(int(os.environ.get("BENCH_BASELINE_BYTES", DEFAULT_BYTES)))


async def page(request: Request) -> HTMLResponse:
    return HTMLResponse(_render({**CONTEXT, "path": request.url.path}))


app = Starlette(routes=[Route("/", page)])
