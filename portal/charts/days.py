"""The day strip: one row per month, one slot per day, a bar as tall as that day's count.

Made for the browsing history: a day when consent did not stand is drawn as an empty dashed slot, distinct from a
consented day without any page (a flat mark on the baseline) and from a day with pages (a bar). Shape, not colour,
tells the three apart.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import date

LABEL_WIDTH = 64.0
SLOT = 10.0  # a day's slot; its bar is SLOT - GAP wide
GAP = 2.0
ROW = 28.0
BAR_MAX = 20.0  # the tallest bar (the busiest day of the strip)
FLAT = 1.5  # a consented day without any page
WIDTH = LABEL_WIDTH + 31 * SLOT + 4


@dataclasses.dataclass(frozen=True)
class Day:
    day: date
    consented: bool
    count: int


@dataclasses.dataclass(frozen=True)
class Slot:
    x: float
    y: float
    height: float
    state: str  # off (no consent) | none (consented, nothing) | some (a bar)


@dataclasses.dataclass(frozen=True)
class MonthRow:
    y: float  # the baseline
    label: str
    slots: tuple[Slot, ...]


@dataclasses.dataclass(frozen=True)
class DayStrip:
    id: str
    title: str
    description: str
    width: float
    height: float
    rows: tuple[MonthRow, ...]
    bar_width: float = SLOT - GAP
    bar_max: float = BAR_MAX


def day_strip(*, id: str, title: str, description: str, months: Sequence[tuple[str, Sequence[Day]]]) -> DayStrip:
    """`months`: (label, its days in order) oldest first; a day's slot sits at its day of the month."""
    busiest = max((d.count for _label, days in months for d in days), default=0)
    rows = []
    for n, (label, days) in enumerate(months):
        baseline = (n + 1) * ROW - 4
        slots = []
        for d in days:
            x = LABEL_WIDTH + (d.day.day - 1) * SLOT
            if not d.consented and not d.count:
                slots.append(Slot(x, baseline - BAR_MAX, BAR_MAX, "off"))
            elif not d.count:
                slots.append(Slot(x, baseline - FLAT, FLAT, "none"))
            else:
                height = round(max(d.count / busiest * BAR_MAX, FLAT), 2)
                slots.append(Slot(x, round(baseline - height, 2), height, "some"))
        rows.append(MonthRow(baseline, label, tuple(slots)))
    return DayStrip(
        id=id, title=title, description=description, width=WIDTH, height=len(months) * ROW, rows=tuple(rows)
    )
