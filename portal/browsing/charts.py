"""The browsing history's day strip: pages viewed per day, the days without consent drawn as empty slots."""

from __future__ import annotations

from portal.browsing.calendar import BrowsingCalendar
from portal.charts.days import DayStrip, day_strip
from portal.i18n import format_date, format_number, gettext


def views_strip(calendar: BrowsingCalendar) -> DayStrip:
    days = calendar.days
    first, last = days[0].day, days[-1].day
    return day_strip(
        id="chart-browsing-days",
        title=gettext("Pages viewed per day"),
        description=gettext(
            "From %(first)s to %(last)s: %(views)s pages viewed on %(busy)s days; consent stood on %(consented)s "
            "days; on the %(off)s days without consent nothing was recorded.",
            first=format_date(first),
            last=format_date(last),
            views=format_number(sum(d.value for d in days)),
            busy=format_number(sum(1 for d in days if d.value)),
            consented=format_number(sum(d.consented for d in days)),
            off=format_number(sum(1 for d in days if not d.consented)),
        ),
        months=[(format_date(month.month, "MMM y"), month.days) for month in calendar.months],
    )
