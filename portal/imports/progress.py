"""How far a long import is: a tqdm bar on a terminal, a plain line every few seconds in a log or a pipe."""

from __future__ import annotations

import time
from typing import Protocol, TextIO

from tqdm import tqdm

from portal.i18n import format_number, gettext

PLAIN_INTERVAL = 5.0  # seconds between two lines in a log: often enough to see it move, rarely enough to read


class Progress(Protocol):
    def start(self, phase: str) -> None: ...

    def update(self, rows: int, fraction: float | None) -> None:
        """`rows` done so far in this phase; `fraction` of the work done, when known (time left comes from it)."""

    def finish(self) -> None: ...


class NoProgress:
    def start(self, phase: str) -> None:
        pass

    def update(self, rows: int, fraction: float | None) -> None:
        pass

    def finish(self) -> None:
        pass


def _expected_total(rows: int, fraction: float | None) -> int | None:
    if not fraction or fraction <= 0 or rows <= 0:
        return None
    return max(rows, round(rows / min(fraction, 1.0)))


class BarProgress:
    """tqdm's bar: rows, rows/s and time left (the total of the first pass is estimated from the bytes read)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._bar: tqdm | None = None
        self._done = 0

    def start(self, phase: str) -> None:
        self._bar = tqdm(desc=phase, unit=" rows", file=self._stream, dynamic_ncols=True, smoothing=0.1)
        self._done = 0

    def update(self, rows: int, fraction: float | None) -> None:
        if self._bar is None:
            return
        total = _expected_total(rows, fraction)
        if total is not None and total != self._bar.total:
            self._bar.total = total
        self._bar.update(rows - self._done)
        self._done = rows

    def finish(self) -> None:
        if self._bar is not None:
            if self._bar.total is not None:
                self._bar.total = self._done
            self._bar.refresh()
            self._bar.close()
            self._bar = None


class PlainProgress:
    """One line every `interval` seconds, and one at the end of each phase, without any terminal control codes."""

    def __init__(self, stream: TextIO, interval: float = PLAIN_INTERVAL) -> None:
        self._stream = stream
        self._interval = interval
        self._phase = ""
        self._started = self._last = 0.0
        self._rows = 0

    def start(self, phase: str) -> None:
        self._phase = phase
        self._started = self._last = time.monotonic()
        self._rows = 0

    def update(self, rows: int, fraction: float | None) -> None:
        self._rows = rows
        now = time.monotonic()
        if now - self._last < self._interval:
            return
        self._last = now
        rate = rows / max(now - self._started, 1e-9)
        total = _expected_total(rows, fraction)
        values = {"phase": self._phase, "rows": format_number(rows), "rate": format_number(round(rate))}
        if total is not None and rate > 0:
            left = format_number(round((total - rows) / rate))
            line = gettext("%(phase)s: %(rows)s rows, %(rate)s rows/s, about %(left)s s left", left=left, **values)
        else:
            line = gettext("%(phase)s: %(rows)s rows, %(rate)s rows/s", **values)
        print(line, file=self._stream, flush=True)

    def finish(self) -> None:
        elapsed = max(time.monotonic() - self._started, 1e-9)
        line = gettext(
            "%(phase)s: %(rows)s rows in %(seconds)s s (%(rate)s rows/s)",
            phase=self._phase,
            rows=format_number(self._rows),
            seconds=format_number(round(elapsed, 1)),
            rate=format_number(round(self._rows / elapsed)),
        )
        print(line, file=self._stream, flush=True)


def progress_for(stream: TextIO) -> Progress:
    """The bar on a terminal, plain lines otherwise (a log file keeps no carriage returns)."""
    return BarProgress(stream) if stream.isatty() else PlainProgress(stream)
