"""What the portal accepts of other systems' clocks.

Tills, web shops and servers keep imperfect time: a moment they send (a purchase, a consent answer, a page view) up
to CLOCK_SKEW ahead of the portal's clock is accepted; a later one is refused as dated in the future. The API and
the file imports apply the same allowance, so a row refused in a file is refused when sent live, and back.
"""

from __future__ import annotations

from datetime import timedelta

CLOCK_SKEW_MINUTES = 5
CLOCK_SKEW = timedelta(minutes=CLOCK_SKEW_MINUTES)
