"""The day strip: one row per month, one slot per day, a bar as tall as that day's count.

Made for the browsing history: a day when consent did not stand is drawn as an empty dashed slot, distinct from a
consented day without any page (a flat mark on the baseline) and from a day with pages (a bar). Shape, not colour,
tells the three apart.

Thirteen months are some 400 days: each kind of day is one SVG path (a sub-path per day) rather than 400 elements,
which keeps the page small and its rendering cheap (bench/pages.py measures the browsing page with the strip).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import NamedTuple

LABEL_WIDTH = 64.0
SLOT = 10.0  # a day's slot; its bar is SLOT - GAP wide
GAP = 2.0
ROW = 28.0
BAR_MAX = 20.0  # the tallest bar (the busiest day of the strip)
FLAT = 1.5  # a consented day without any page
WIDTH = LABEL_WIDTH + 31 * SLOT + 4
STATES = ("off", "none", "some")


class Month(NamedTuple):
    """One row: its label, then per day of the month (index 0 is the 1st) the value and whether consent stood."""

    label: str
    values: Sequence[int]
    consented: Sequence[bool]


@dataclasses.dataclass(frozen=True)
class MonthRow:
    y: float  # the baseline
    label: str


@dataclasses.dataclass(frozen=True)
class DayStrip:
    id: str
    title: str
    description: str
    width: float
    height: float
    rows: tuple[MonthRow, ...]
    # Per state (off: no consent, none: consented without a page, some: a bar), the path of its slots: one
    # "M x y h w v h h -w z" rectangle per day, x at the day of the month.
    paths: dict[str, str]


def day_strip(*, id: str, title: str, description: str, months: Sequence[Month]) -> DayStrip:
    """`months` oldest first, one row each; a day's slot sits at its day of the month."""
    busiest = max((max(m.values, default=0) for m in months), default=0)
    scale = BAR_MAX / busiest if busiest else 0.0
    # Whole units but for the bars' heights (two decimals): short markup, and no number formatting per day.
    width = int(SLOT - GAP)
    step, left = int(SLOT), int(LABEL_WIDTH)
    some: list[str] = []
    none: list[str] = []
    off: list[str] = []
    rows = []
    for n, (label, values, consented) in enumerate(months):
        baseline = int((n + 1) * ROW - 4)
        flat = f"{baseline - FLAT}h{width}v{FLAT}h-{width}z"
        empty = f"{baseline - int(BAR_MAX)}h{width}v{int(BAR_MAX)}h-{width}z"
        for index, (value, stood) in enumerate(zip(values, consented, strict=True)):
            x = left + index * step
            if value:
                height = max(value * scale, FLAT)
                some.append(f"M{x} {baseline - height:.2f}h{width}v{height:.2f}h-{width}z")
            elif stood:
                none.append(f"M{x} {flat}")
            else:
                off.append(f"M{x} {empty}")
        rows.append(MonthRow(baseline, label))
    return DayStrip(
        id=id,
        title=title,
        description=description,
        width=WIDTH,
        height=len(months) * ROW,
        rows=tuple(rows),
        paths={"off": "".join(off), "none": "".join(none), "some": "".join(some)},
    )
