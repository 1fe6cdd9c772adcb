"""The browsing history's day strip: pages viewed per day, the days without consent drawn as empty slots."""

from __future__ import annotations

from portal.browsing.calendar import BrowsingCalendar
from portal.charts.days import DayStrip, Month, day_strip
from portal.i18n import format_date, format_number, gettext, ngettext


def views_strip(calendar: BrowsingCalendar) -> DayStrip:
    months = calendar.months
    return day_strip(
        id="chart-browsing-days",
        title=gettext("Pages viewed per day"),
        # Counts after a colon: the sentence reads right for one day as for many, in both languages.
        description=ngettext(
            "From %(first)s to %(last)s: %(views)s page viewed. Days with pages: %(busy)s; days with consent: "
            "%(consented)s; days without consent, when nothing was recorded: %(off)s.",
            "From %(first)s to %(last)s: %(views)s pages viewed. Days with pages: %(busy)s; days with consent: "
            "%(consented)s; days without consent, when nothing was recorded: %(off)s.",
            sum(m.view_count for m in months),
            first=format_date(months[0].month),
            last=format_date(months[-1].last_day),
            views=format_number(sum(m.view_count for m in months)),
            busy=format_number(sum(1 for m in months for v in m.views if v)),
            consented=format_number(sum(m.consented_days for m in months)),
            off=format_number(sum(m.days_without_consent for m in months)),
        ),
        months=[Month(format_date(m.month, "MMM y"), m.views, m.consented) for m in months],
    )
