"""From values to lengths: a linear scale whose ends and gridlines fall on round numbers (1, 2, 2.5, 5 × 10ⁿ)."""

from __future__ import annotations

import dataclasses
import math

_NICE = (1.0, 2.0, 2.5, 5.0, 10.0)


def nice_step(span: float, intervals: int, *, whole: bool = False) -> float:
    """The smallest round step that covers `span` in at most `intervals` steps; at least 1 for counts (`whole`)."""
    if span <= 0:
        return 1.0
    raw = span / intervals
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(n * magnitude for n in _NICE if n * magnitude >= raw * (1 - 1e-9))
    return max(step, 1.0) if whole else step


@dataclasses.dataclass(frozen=True)
class LinearScale:
    """Maps [low, high] onto [start, end] (SVG units; `start` may be greater than `end`, as y grows downwards)."""

    low: float
    high: float
    start: float
    end: float
    step: float

    @classmethod
    def covering(
        cls, low: float, high: float, *, start: float, end: float, intervals: int = 4, whole: bool = False
    ) -> LinearScale:
        """A scale from a round number at or below min(low, 0) to one at or above max(high, 0): bars start at 0."""
        low, high = min(low, 0.0), max(high, 0.0)
        step = nice_step(high - low, intervals, whole=whole)
        nice_low = math.floor(low / step - 1e-9) * step if low < 0 else 0.0
        nice_high = math.ceil(high / step - 1e-9) * step if high > 0 else (0.0 if low < 0 else step)
        return cls(low=nice_low, high=nice_high, start=start, end=end, step=step)

    def __call__(self, value: float) -> float:
        return self.start + (value - self.low) / (self.high - self.low) * (self.end - self.start)

    def length(self, value: float) -> float:
        """The length a bar of `value` has, whatever its sign."""
        return abs(value) / (self.high - self.low) * abs(self.end - self.start)

    def ticks(self) -> list[float]:
        count = round((self.high - self.low) / self.step)
        return [self.low + i * self.step for i in range(count + 1)]
