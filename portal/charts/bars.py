"""Bar and column charts as geometry: each bar a rectangle in SVG units, each label a position and a text.

The template (`templates/_charts.html`) draws them in an `<svg>` with a `<title>` and a `<desc>`, colours come from
classes in the portal's CSS (no inline style: the CSP stays `style-src 'self'`), and every chart sits next to the
table of its figures. Texts arrive formatted (Babel, the reader's language): this module only measures.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

from portal.charts.scales import LinearScale
from portal.i18n import gettext

# Column charts: the plot is at least this wide and each category gets at least this much room; a longer period
# makes a wider chart, which scrolls in its own box on a phone rather than squeezing its labels.
COLUMNS_WIDTH = 720.0
MIN_BAND = 26.0
COLUMNS_HEIGHT = 220.0
LEFT, RIGHT, TOP, BOTTOM = 52.0, 12.0, 12.0, 40.0
LABEL_ROOM = 52.0  # what a category label ("sept. 26") needs under the axis
# Horizontal bars (a few long labels, read on a phone): a label above each bar, its value after it.
BARS_WIDTH = 400.0
BAR_ROW = 44.0
BAR_THICKNESS = 16.0
VALUE_ROOM = 120.0


@dataclasses.dataclass(frozen=True)
class Series:
    """One kind of bar: `key` names its CSS modifier (`chart-bar--<key>`), `label` is shown in the legend."""

    key: str
    label: str
    values: Sequence[float]


@dataclasses.dataclass(frozen=True)
class Rect:
    x: float
    y: float
    width: float
    height: float
    series: str
    title: str  # what the bar says, read by screen readers and shown on hover


@dataclasses.dataclass(frozen=True)
class Text:
    x: float
    y: float
    text: str
    anchor: str = "middle"  # start | middle | end


@dataclasses.dataclass(frozen=True)
class Chart:
    id: str  # unique on the page: the ids of the title and description derive from it
    title: str
    description: str
    width: float
    height: float
    bars: tuple[Rect, ...]
    labels: tuple[Text, ...] = ()  # categories, values
    ticks: tuple[Text, ...] = ()  # the value axis
    gridlines: tuple[float, ...] = ()  # y of each horizontal gridline
    baseline: float | None = None  # y of zero on a column chart
    plot: tuple[float, float] = (0.0, 0.0)  # x where the plot starts and ends
    legend: tuple[tuple[str, str], ...] = ()  # (series key, label), when there is more than one series


def column_chart(
    *,
    id: str,
    title: str,
    description: str,
    categories: Sequence[str],
    series: Sequence[Series],
    format_value: Callable[[float], str],
    stacked: bool = False,
    whole: bool = True,
    maximum: float | None = None,
    short_labels: Sequence[str] | None = None,
) -> Chart:
    """Vertical bars per category: side by side (one per series), or `stacked` (negative values below zero, so
    given and withdrawn can face each other across the axis). `maximum` fixes the top (100 for a percentage).
    `categories` name the bars (their titles); `short_labels`, when given, are written under the axis instead."""
    count = len(categories)
    band = max(MIN_BAND, (COLUMNS_WIDTH - LEFT - RIGHT) / max(count, 1))
    width = LEFT + band * count + RIGHT
    bottom = COLUMNS_HEIGHT - BOTTOM
    if stacked:
        highs = [sum(max(s.values[i], 0) for s in series) for i in range(count)]
        lows = [sum(min(s.values[i], 0) for s in series) for i in range(count)]
    else:
        highs = [max((s.values[i] for s in series), default=0) for i in range(count)]
        lows = [min((s.values[i] for s in series), default=0) for i in range(count)]
    scale = LinearScale.covering(
        min(lows, default=0),
        maximum if maximum is not None else max(highs, default=0),
        start=bottom,
        end=TOP,
        whole=whole,
    )
    zero = scale(0)
    bars: list[Rect] = []
    for i, category in enumerate(categories):
        left = LEFT + i * band + band * 0.15
        inner = band * 0.7
        up = down = zero
        for n, one in enumerate(series):
            value = one.values[i]
            if not value:
                continue
            length = scale.length(value)
            if stacked:
                x, thickness = left, inner
                if value > 0:
                    up -= length
                    y = up
                else:
                    y = down
                    down += length
            else:
                thickness = inner / len(series)
                x = left + n * thickness
                y = zero - length if value > 0 else zero
            label = (
                gettext("%(name)s: %(value)s", name=category, value=format_value(abs(value)))
                if len(series) == 1
                else gettext(
                    "%(name)s, %(series)s: %(value)s", name=category, series=one.label, value=format_value(abs(value))
                )
            )
            bars.append(Rect(_r(x), _r(y), _r(thickness), _r(length), one.key, label))
    every = max(1, math.ceil(LABEL_ROOM / band))
    labels = tuple(
        Text(_r(LEFT + (i + 0.5) * band), bottom + 16, label)
        for i, label in enumerate(short_labels or categories)
        if i % every == 0
    )
    # Below zero are the bars drawn downwards (withdrawals): their axis counts up from zero too.
    ticks = tuple(Text(LEFT - 6, _r(scale(value) + 4), format_value(abs(value)), "end") for value in scale.ticks())
    return Chart(
        id=id,
        title=title,
        description=description,
        width=_r(width),
        height=COLUMNS_HEIGHT,
        bars=tuple(bars),
        labels=labels,
        ticks=ticks,
        gridlines=tuple(_r(scale(value)) for value in scale.ticks()),
        baseline=_r(zero),
        plot=(LEFT, _r(width - RIGHT)),
        legend=tuple((s.key, s.label) for s in series) if len(series) > 1 else (),
    )


def bar_list(
    *,
    id: str,
    title: str,
    description: str,
    items: Sequence[tuple[str, float, str]],
    series: str = "primary",
) -> Chart:
    """One horizontal bar per (label, value, value as text), the label above its bar and the value after it:
    long names (a store and its city) stay readable on a 360 px phone."""
    room = BARS_WIDTH - VALUE_ROOM
    largest = max((value for _label, value, _text in items), default=0)
    bars, labels = [], []
    for n, (label, value, text) in enumerate(items):
        top = n * BAR_ROW
        length = value / largest * room if value > 0 else 0.0
        bars.append(
            Rect(
                0,
                _r(top + 20),
                _r(length),
                BAR_THICKNESS,
                series,
                gettext("%(name)s: %(value)s", name=label, value=text),
            )
        )
        labels.append(Text(0, _r(top + 14), label, "start"))
        labels.append(Text(_r(length + 6), _r(top + 33), text, "start"))
    return Chart(
        id=id,
        title=title,
        description=description,
        width=BARS_WIDTH,
        height=_r(max(len(items), 1) * BAR_ROW),
        bars=tuple(bars),
        labels=tuple(labels),
        plot=(0.0, room),
    )


def _r(value: float) -> float:
    """Two decimals are finer than any screen: shorter markup."""
    return round(value, 2)
