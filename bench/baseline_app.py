"""The bare baseline: Starlette + Jinja2 rendering one page, no database, no middleware, no i18n.

`bench/pages.py` serves it with the same uvicorn flags as the portal and asks for a page of the byte size of the
portal page it is compared with: `GET /?bytes=N`. The list at the bottom of the page is lengthened until the
rendered page reaches about N bytes. The template is rendered on every request, as the portal does; only the data
is prepared, once per size (the first request of a size builds it). Without `bytes`, the size is
BENCH_BASELINE_BYTES (default 5,000).

`GET /table50` is the one fixed bare page every portal page is also compared with (../shared/BENCHMARKS.md): the
same header and footer around a 50-row table of five columns, about 19 KB. Measured only against a bare page of its
own size, a heavy page looks fine while being the slowest page; against this one, it cannot.

    uvicorn --app-dir bench baseline_app:app   # standalone: GET / or GET /?bytes=40000 or GET /table50
"""

from __future__ import annotations

import functools
import os
from typing import Any

import jinja2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

DEFAULT_BYTES = 5_000
MIN_BYTES, MAX_BYTES = 1_000, 5_000_000  # sizes a caller may ask for

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


@functools.cache
def build_context(target_bytes: int) -> dict[str, Any]:
    """The page's data, with as many list items as it takes to bring the page to about `target_bytes`."""
    empty = len(_render({**BASE_CONTEXT, "items": []}).encode())
    count, per_item = 0, float(len(_render({**BASE_CONTEXT, "items": [_item(1)]}).encode()) - empty)
    for _ in range(3):  # items grow with their number (longer ids): correct the estimate from the real size
        count = max(0, round((target_bytes - empty) / max(1.0, per_item)))
        if not count:
            break
        size = len(_render({**BASE_CONTEXT, "items": [_item(n) for n in range(1, count + 1)]}).encode())
        per_item = (size - empty) / count
    return {**BASE_CONTEXT, "items": [_item(n) for n in range(1, count + 1)]}


DEFAULT_SIZE = int(os.environ.get("BENCH_BASELINE_BYTES", DEFAULT_BYTES))
build_context(DEFAULT_SIZE)


async def page(request: Request) -> HTMLResponse:
    raw = request.query_params.get("bytes")
    size = int(raw) if raw and raw.isdigit() else DEFAULT_SIZE
    if not MIN_BYTES <= size <= MAX_BYTES:
        return HTMLResponse(f"bytes must be between {MIN_BYTES} and {MAX_BYTES}", status_code=400)
    return HTMLResponse(_render({**build_context(size), "path": request.url.path}))


TABLE_ROWS = 50
TABLE = TEMPLATE.replace(
    """    <ul class="tags">
      {% for item in items %}
      <li><a href="/items/{{ item.id }}">{{ item.label }}</a> <span class="hint">{{ item.detail }}</span></li>
      {% endfor %}
    </ul>""",
    """    <div class="table-scroll">
    <table class="table">
      <caption>Your last {{ rows|length }} purchases</caption>
      <thead>
        <tr><th scope="col">Date</th><th scope="col">Store</th><th scope="col">Receipt</th>
        <th scope="col">Channel</th><th scope="col" class="num">Amount</th></tr>
      </thead>
      <tbody>
        {% for row in rows %}
        <tr>
          <td><time datetime="{{ row.iso }}">{{ row.date }}</time></td>
          <td>{{ row.store }}</td>
          <td><a href="/me/purchases/{{ row.id }}">{{ row.receipt }}</a></td>
          <td><span class="badge badge--{{ row.channel }}">{{ row.channel_label }}</span></td>
          <td class="num">{{ row.amount }}</td>
        </tr>
        {% endfor %}
      </tbody>
    </table>
    </div>""",
)
environment.loader.mapping["table50.html"] = TABLE  # type: ignore[union-attr]
_CHANNELS = (("in_store", "In store"), ("web", "Web shop"), ("click_and_collect", "Click and collect"))
TABLE_CONTEXT: dict[str, Any] = {
    **BASE_CONTEXT,
    "rows": [
        {
            "id": 40_000 + n,
            "iso": f"2026-{n % 12 + 1:02d}-{n % 28 + 1:02d}T10:{n % 60:02d}:00+00:00",
            "date": f"{n % 28 + 1} {('January', 'March', 'June', 'October')[n % 4]} 2026",
            "store": f"Maison Aubépine {('Lyon Part-Dieu', 'Paris Opéra', 'Bordeaux', 'Lille')[n % 4]}",
            "receipt": f"R-2026-{n:06d}",
            "channel": _CHANNELS[n % 3][0],
            "channel_label": _CHANNELS[n % 3][1],
            "amount": f"€{(n * 137) % 400 + 12}.{n % 100:02d}",
        }
        for n in range(1, TABLE_ROWS + 1)
    ],
}


async def table50(request: Request) -> HTMLResponse:
    return HTMLResponse(environment.get_template("table50.html").render({**TABLE_CONTEXT, "path": request.url.path}))


app = Starlette(routes=[Route("/", page), Route("/table50", table50)])
