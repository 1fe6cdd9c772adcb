"""The kinds of record `portal import` and the retailer API know, by the name the command line uses."""

from __future__ import annotations

from portal.imports.browsing import PageViewsKind
from portal.imports.consents import ConsentsKind
from portal.imports.kinds import Kind

KINDS: dict[str, type[Kind]] = {
    ConsentsKind.name: ConsentsKind,
    PageViewsKind.name: PageViewsKind,
}
