"""The kinds of records `portal import` and the retailer API know, by name."""

from __future__ import annotations

from portal.imports.customers import CustomersKind

KINDS: dict[str, type] = {"customers": CustomersKind}
