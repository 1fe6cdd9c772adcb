"""The browsing history's day strip: pages viewed per day, the days without consent drawn as empty slots."""

from __future__ import annotations

from portal.browsing.calendar import BrowsingCalendar
from portal.charts.days import DayStrip, Month, day_strip
from portal.i18n import format_date, format_number, gettext


def views_strip(calendar: BrowsingCalendar) -> DayStrip:
    months = calendar.months
    return day_strip(
        id="chart-browsing-days",
        title=gettext("Pages viewed per day"),
        description=gettext(
            "From %(first)s to %(last)s: %(views)s pages viewed on %(busy)s days; consent stood on %(consented)s "
            "days; on the %(off)s days without consent nothing was recorded.",
            first=format_date(months[0].month),
            last=format_date(months[-1].last_day),
            views=format_number(sum(m.view_count for m in months)),
            busy=format_number(sum(1 for m in months for v in m.views if v)),
            consented=format_number(sum(m.consented_days for m in months)),
            off=format_number(sum(m.days_without_consent for m in months)),
        ),
        months=[Month(format_date(m.month, "MMM y"), m.views, m.consented) for m in months],
    )
