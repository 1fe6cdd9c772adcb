"""The DPO's dashboard: the report's figures as column charts (requests per month by type, share answered on time,
days to answer, extensions, open requests by due week, consents given and withdrawn per purpose).

Drawn from the `Report` the page already builds: no query of its own. Texts are in the reader's language, numbers,
months and percentages formatted by Babel.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from portal.backoffice.reports import Report
from portal.charts.bars import Chart, Series, column_chart
from portal.i18n import format_date, format_number, format_percent, gettext
from portal.models.requests import REQUEST_TYPES


@dataclasses.dataclass(frozen=True)
class Dashboard:
    received: Chart
    on_time: Chart
    answer_days: Chart
    extensions: Chart
    due_weeks: Chart
    consents: tuple[tuple[str, Chart], ...]  # (purpose code, its chart)


def _days(value: float) -> str:
    return format_number(round(value, 1))


def dashboard(report: Report, *, type_labels: Mapping[str, str], purpose_titles: Mapping[str, str]) -> Dashboard:
    months = report.per_month
    names = [format_date(m.month, "MMMM y") for m in months]
    short = [format_date(m.month, "MMM yy") for m in months]
    first, last = names[0], names[-1]
    received_total = sum(m.received for m in months)
    busiest = max(months, key=lambda m: m.received)
    types = [t for t in REQUEST_TYPES if any(m.received_by_type.get(t) for m in months)]
    received = column_chart(
        id="chart-received",
        title=gettext("Requests received per month, by type"),
        description=gettext(
            "%(total)s requests received from %(first)s to %(last)s; the busiest month was %(month)s with %(count)s.",
            total=format_number(received_total),
            first=first,
            last=last,
            month=format_date(busiest.month, "MMMM y"),
            count=format_number(busiest.received),
        ),
        categories=names,
        short_labels=short,
        series=[Series(t, type_labels.get(t, t), [m.received_by_type.get(t, 0) for m in months]) for t in types]
        or [Series("primary", gettext("Requests received"), [0 for _m in months])],
        format_value=format_number,
        stacked=True,
    )
    overall = report.overall
    on_time = column_chart(
        id="chart-on-time",
        title=gettext("Share answered on time, per month received"),
        description=gettext(
            "Of the requests answered, the share answered by their due date (extensions included); over the "
            "period: %(share)s of %(answered)s answered.",
            share=format_percent(100 * (overall.answered - overall.late) / overall.answered)
            if overall.answered
            else "—",
            answered=format_number(overall.answered),
        ),
        categories=names,
        short_labels=short,
        series=[Series("ontime", gettext("Answered on time"), [m.on_time_percent or 0 for m in months])],
        format_value=format_percent,
        maximum=100,
        whole=False,
    )
    answer_days = column_chart(
        id="chart-answer-days",
        title=gettext("Days to answer, per month received"),
        description=gettext(
            "Median and 90th percentile of the days from receipt to answer; over the period: median %(median)s, "
            "90th percentile %(p90)s days.",
            median=_days(overall.median_days) if overall.median_days is not None else "—",
            p90=_days(overall.p90_days) if overall.p90_days is not None else "—",
        ),
        categories=names,
        short_labels=short,
        series=[
            Series("median", gettext("Median"), [m.durations.median_days or 0 for m in months]),
            Series("p90", gettext("90th percentile"), [m.durations.p90_days or 0 for m in months]),
        ],
        format_value=_days,
        whole=False,
    )
    extended_total = sum(m.extended for m in months)
    extensions = column_chart(
        id="chart-extensions",
        title=gettext("Deadlines extended, per month received"),
        description=gettext(
            "%(count)s of the %(total)s requests received in the period had their deadline extended.",
            count=format_number(extended_total),
            total=format_number(received_total),
        ),
        categories=names,
        short_labels=short,
        series=[Series("extended", gettext("Deadline extended"), [m.extended for m in months])],
        format_value=format_number,
    )
    weeks = report.open_by_due_week
    week_names = [
        gettext("Overdue") if w.monday is None else gettext("Week of %(day)s", day=format_date(w.monday, "d MMM"))
        for w in weeks
    ]
    week_short = [gettext("Overdue") if w.monday is None else format_date(w.monday, "d MMM") for w in weeks]
    due_weeks = column_chart(
        id="chart-due-weeks",
        title=gettext("Open requests by the week they are due"),
        description=gettext(
            "%(open)s open requests: %(overdue)s overdue, the others by the week of their due date, from this week.",
            open=format_number(report.open_total),
            overdue=format_number(report.overdue),
        ),
        categories=week_names,
        short_labels=week_short,
        # Two series on one column each: the overdue column is red and stands first, apart from the weeks ahead.
        series=[
            Series("overdue", gettext("Overdue"), [w.count if w.monday is None else 0 for w in weeks]),
            Series("due", gettext("Due that week"), [0 if w.monday is None else w.count for w in weeks]),
        ],
        format_value=format_number,
        stacked=True,
    )
    consents = []
    for purpose, cells in report.consent_per_month.items():
        title = purpose_titles.get(purpose, purpose)
        consents.append(
            (
                purpose,
                column_chart(
                    id=f"chart-consent-{purpose}",
                    title=gettext("Consent to “%(purpose)s”, given and withdrawn per month", purpose=title),
                    description=gettext(
                        "%(given)s given and %(withdrawn)s withdrawn from %(first)s to %(last)s: given above the "
                        "line, withdrawn below it.",
                        given=format_number(sum(c.given for c in cells)),
                        withdrawn=format_number(sum(c.withdrawn for c in cells)),
                        first=first,
                        last=last,
                    ),
                    categories=names,
                    short_labels=short,
                    series=[
                        Series("given", gettext("Given"), [c.given for c in cells]),
                        Series("withdrawn", gettext("Withdrawn"), [-c.withdrawn for c in cells]),
                    ],
                    format_value=format_number,
                    stacked=True,
                ),
            )
        )
    return Dashboard(received, on_time, answer_days, extensions, due_weeks, tuple(consents))
