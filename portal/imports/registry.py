"""The kinds of record `portal import` knows, by the name the command takes. A new kind is one line here."""

from __future__ import annotations

from portal.imports.browsing import PageViewsKind
from portal.imports.consents import ConsentsKind
from portal.imports.customers import CustomersKind
from portal.imports.kinds import Kind
from portal.imports.stores import StoresKind

# The names every kind will have, so that the command can say "not available yet" rather than "unknown".
KIND_NAMES = ("customers", "stores", "purchases", "consents", "page-views")

KINDS: dict[str, type[Kind]] = {
    CustomersKind.name: CustomersKind,
    StoresKind.name: StoresKind,
    ConsentsKind.name: ConsentsKind,
    PageViewsKind.name: PageViewsKind,
}
