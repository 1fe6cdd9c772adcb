"""The spending charts above the purchases' totals tables, drawn from the totals the page already reads."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from portal.charts.bars import Chart, bar_list
from portal.i18n import format_money, format_number, gettext, ngettext
from portal.purchases.service import PurchaseTotals, StoreRef


@dataclasses.dataclass(frozen=True)
class SpendingCharts:
    by_year: Chart
    by_store: Chart


def spending_charts(totals: PurchaseTotals, *, store_label: Callable[[StoreRef], str]) -> SpendingCharts | None:
    """Spending per year (oldest first, as time reads) and per store (in the tables' order); None without purchases."""
    if not totals.by_store:
        return None
    money = totals.currency
    years = sorted(totals.by_year, key=lambda total: total.year)
    top_year = max(years, key=lambda total: total.amount_cents)
    top_store = max(totals.by_store, key=lambda total: total.amount_cents)
    by_year = bar_list(
        id="chart-spending-years",
        title=gettext("Your spending per year"),
        description=ngettext(
            "%(count)s year, %(total)s in all; the most was %(amount)s in %(year)s.",
            "%(count)s years, %(total)s in all; the most was %(amount)s in %(year)s.",
            len(years),
            count=format_number(len(years)),
            total=format_money(totals.amount_cents, money),
            amount=format_money(top_year.amount_cents, money),
            year=top_year.year,
        ),
        items=[(str(t.year), t.amount_cents, format_money(t.amount_cents, money)) for t in years],
    )
    by_store = bar_list(
        id="chart-spending-stores",
        title=gettext("Your spending per store"),
        description=ngettext(
            "%(count)s place where you bought (a store or the web shop); the most was %(amount)s at %(store)s.",
            "%(count)s places where you bought (stores and the web shop); the most was %(amount)s at %(store)s.",
            len(totals.by_store),
            count=format_number(len(totals.by_store)),
            amount=format_money(top_store.amount_cents, money),
            store=store_label(top_store.store),
        ),
        items=[(store_label(t.store), t.amount_cents, format_money(t.amount_cents, money)) for t in totals.by_store],
        series="secondary",
    )
    return SpendingCharts(by_year=by_year, by_store=by_store)
