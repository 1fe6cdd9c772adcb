"""The charts' geometry: round scales, bars as long as their values, stacks and withdrawals below the line, the
day strip's three kinds of day."""

from __future__ import annotations

import re

import pytest

from portal.charts.bars import Series, bar_list, column_chart
from portal.charts.days import BAR_MAX, FLAT, Month, day_strip
from portal.charts.scales import LinearScale, nice_step
from portal.i18n import using_locale


@pytest.mark.parametrize(
    ("span", "intervals", "step"),
    [(10, 4, 2.5), (7, 4, 2), (100, 4, 25), (0.9, 4, 0.25), (3, 4, 1), (1234, 4, 500)],
)
def test_steps_are_round_numbers(span: float, intervals: int, step: float) -> None:
    assert nice_step(span, intervals) == step


def test_counts_never_step_by_less_than_one() -> None:
    assert nice_step(2, 4, whole=True) == 1


def test_a_scale_covers_zero_and_ends_on_a_step() -> None:
    scale = LinearScale.covering(-3, 7, start=200, end=0)
    assert (scale.low, scale.high, scale.step) == (-5, 7.5, 2.5)
    assert scale.ticks() == [-5, -2.5, 0, 2.5, 5, 7.5]
    assert scale(-5) == 200 and scale(7.5) == 0 and scale(0) == pytest.approx(120)
    assert scale.length(-3) == pytest.approx(48)


def test_columns_side_by_side_and_stacked() -> None:
    series = [Series("a", "A", [1, 4]), Series("b", "B", [2, 0])]
    side = column_chart(id="c", title="t", description="d", categories=["x", "y"], series=series, format_value=str)
    assert [(b.series, b.height) for b in side.bars] == [
        ("a", pytest.approx(side.bars[2].height / 4)),
        ("b", pytest.approx(side.bars[2].height / 2)),
        ("a", side.bars[2].height),
    ]
    stacked = column_chart(
        id="c", title="t", description="d", categories=["x", "y"], series=series, format_value=str, stacked=True
    )
    first, second = stacked.bars[0], stacked.bars[1]
    assert first.x == second.x and second.y + second.height == pytest.approx(first.y)  # b sits on a
    assert stacked.legend == (("a", "A"), ("b", "B"))


def test_negative_values_hang_below_the_baseline() -> None:
    with using_locale("en"):
        chart = column_chart(
            id="c",
            title="t",
            description="d",
            categories=["x"],
            series=[Series("given", "Given", [4]), Series("withdrawn", "Withdrawn", [-2])],
            format_value=str,
            stacked=True,
        )
    given, withdrawn = chart.bars
    assert given.y + given.height == pytest.approx(chart.baseline) == withdrawn.y
    assert withdrawn.height == pytest.approx(given.height / 2)
    assert withdrawn.title == "x, Withdrawn: 2"


def test_a_long_period_widens_the_chart_and_thins_its_labels() -> None:
    months = [f"m{n}" for n in range(36)]
    chart = column_chart(
        id="c", title="t", description="d", categories=months, series=[Series("a", "A", [1] * 36)], format_value=str
    )
    assert chart.width > 720 and len(chart.bars) == 36
    assert 0 < len(chart.labels) < 36


def test_bar_lists_are_proportional_and_zero_draws_nothing() -> None:
    chart = bar_list(id="b", title="t", description="d", items=[("A", 300, "3"), ("B", 100, "1"), ("C", 0, "0")])
    widths = [b.width for b in chart.bars]
    assert widths[0] == pytest.approx(3 * widths[1], abs=0.02) and widths[2] == 0


def test_the_day_strip_tells_no_consent_from_no_page() -> None:
    month = Month("Feb", values=[0, 0, 0, 5, 10], consented=[False, False, True, True, True])
    strip = day_strip(id="s", title="t", description="d", months=[month])
    assert [row.label for row in strip.rows] == ["Feb"]
    off, none, some = (_boxes(strip.paths[state]) for state in ("off", "none", "some"))
    assert [x for x, *_ in off] == [64, 74] and [x for x, *_ in none] == [84] and [x for x, *_ in some] == [94, 104]
    assert [h for *_, h in off] == [BAR_MAX, BAR_MAX]  # an empty slot as tall as the tallest bar
    assert [h for *_, h in some] == [BAR_MAX / 2, BAR_MAX] and none[0][3] == FLAT
    assert all(y + h == strip.rows[0].y for _x, y, _w, h in off + none + some)  # on the month's baseline


def _boxes(path: str) -> list[tuple[float, float, float, float]]:
    return [tuple(map(float, m)) for m in re.findall(r"M([\d.]+) ([\d.]+)h([\d.]+)v([\d.]+)h-[\d.]+z", path)]  # type: ignore[misc]
