"""Comparing two samples of response times without timing assertions: a Mann–Whitney U test.

An enumeration test asks "can an observer tell these two answers apart by their time?": with many samples of
each, a rank test that finds no difference (p above a very small threshold) says no, whatever the machine's
speed and load, where a fixed "under 50 ms" would be both flaky and beside the point.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable


def mann_whitney_p(a: list[float], b: list[float]) -> float:
    """Two-sided p-value of the Mann–Whitney U test (normal approximation with tie correction)."""
    values = sorted((value, group) for group, sample in ((0, a), (1, b)) for value in sample)
    ranks: list[float] = [0.0] * len(values)
    ties = 0.0
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and values[j + 1][0] == values[i][0]:
            j += 1
        for k in range(i, j + 1):
            ranks[k] = (i + j) / 2 + 1
        count = j - i + 1
        ties += count**3 - count
        i = j + 1
    n1, n2 = len(a), len(b)
    rank_sum = sum(rank for rank, (_, group) in zip(ranks, values, strict=True) if group == 0)
    u = rank_sum - n1 * (n1 + 1) / 2
    n = n1 + n2
    variance = n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1)))
    if variance == 0:
        return 1.0
    z = (u - n1 * n2 / 2) / math.sqrt(variance)
    return math.erfc(abs(z) / math.sqrt(2))


def interleaved_timings(
    first: Callable[[], object], second: Callable[[], object], samples: int
) -> tuple[list[float], list[float]]:
    """Times of `samples` calls of each, alternated so that load changes hit both alike."""
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(samples):
        for index, call in enumerate((first, second)):
            started = time.perf_counter()
            call()
            times[index].append(time.perf_counter() - started)
    return times
