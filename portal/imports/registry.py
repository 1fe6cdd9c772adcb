"""The kinds of record `portal import` knows, by the name given on the command line."""

from __future__ import annotations

from portal.imports.kinds import Kind
from portal.imports.purchases import Purchases

KINDS: dict[str, type[Kind]] = {
    Purchases.name: Purchases,
}
