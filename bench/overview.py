"""Benchmark: the signed-in overview page (/me) of the demo's heavy customer against a bare Starlette + Jinja2 page.

    .venv/bin/python bench/overview.py            # full run: 8 alternating rounds of 5 s, then latency (~2.5 min)
    .venv/bin/python bench/overview.py --quick    # smoke check: 2 rounds of 2 s (figures not reliable)

A thin wrapper: the overview alone with the reference settings of bench/README.md, i.e. `pages.py --pages overview
--rounds 8 --duration 5 --warmup 5 --latency-duration 5`. bench/pages.py measures every page; see bench/README.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # `pages` sits next to this script

from pages import Defaults, main  # noqa: E402

if __name__ == "__main__":
    sys.exit(
        main(
            defaults=Defaults(rounds=8, duration=5.0, warmup=5.0, latency_duration=5.0),
            only=("overview",),
            description=__doc__,
        )
    )
