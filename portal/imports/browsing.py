"""Importing the web shop's analytics export: page views, kept only where browsing consent stood at their time.

The rules are the retailer API's (api/service.py ingest_browsing_events), so a view sent live and the same view in
a file meet the same fate: dropped and counted, never stored, when the customer is unknown (or erased), restricted,
or had not consented to browsing analytics at that moment (ePrivacy Art. 5(3)). A view already held (same customer,
moment and address) is "unchanged", so re-importing an export adds nothing. One rule is the import's own: a view
older than the browsing purpose's retention period is dropped (past_retention), as the portal may no longer hold it.
Views are written through browsing.records, which keeps the per-day and per-customer counts the pages read.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import select
from sqlmodel import Session

from portal.audit import record_audit
from portal.browsing.records import record_page_views
from portal.clock import CLOCK_SKEW
from portal.consent import ledger
from portal.db import as_connection
from portal.i18n import gettext
from portal.imports.kinds import FieldSpec, ImportContext, RowError, RowInvalid, Tally
from portal.imports.lookup import (
    CUSTOMER_FIELD_SPECS,
    CUSTOMER_FIELDS,
    CustomerIndex,
    CustomerRef,
    customer_ref_of,
    is_erased,
)
from portal.imports.values import as_text, read_datetime
from portal.models import PageView

URL = re.compile(r"^https?://[^\x00-\x20\x7f]+$")  # the API's BrowsingEvent.url pattern
MAX_URL, MAX_TITLE = 2000, 300  # page_view.url, page_view.title


@dataclasses.dataclass
class PageViewRow:
    """One page view; `check` says whose it is: a live customer (`customer_id`), an erased one, or nobody known."""

    line: int
    who: CustomerRef
    viewed_at: datetime
    url: str
    title: str | None
    customer_id: int | None = None
    restricted: bool = False
    erased: bool = False


class PageViewsKind:
    name: ClassVar[str] = "page-views"
    fields: ClassVar[tuple[FieldSpec, ...]] = (
        *CUSTOMER_FIELD_SPECS,
        FieldSpec("viewed_at", required=True, help="when the page was viewed"),
        FieldSpec("url", required=True, help="the address of the page (http or https)"),
        FieldSpec("title", help="the title of the page"),
    )

    def __init__(self, context: ImportContext) -> None:
        self.context = context
        # A full analytics export reaches further back than the register lets the portal keep page views: those
        # would be held against the retention the customer was told, so they are dropped (past_retention).
        retention = context.register.by_code[ledger.BROWSING_PURPOSE].retention
        self.kept_since = retention.earliest_kept(context.now)

    def parse(self, fields: Mapping[str, Any], line: int) -> PageViewRow:
        errors: list[RowError] = []
        values: dict[str, str | None] = {}
        for spec in self.fields:
            try:
                values[spec.name] = as_text(fields.get(spec.name)) or as_text(self.context.constants.get(spec.name))
            except ValueError as problem:
                errors.append(RowError(spec.name, str(problem)))
                values[spec.name] = None
            if spec.required and values[spec.name] is None and not any(e.field == spec.name for e in errors):
                errors.append(RowError(spec.name, gettext("This value is required.")))
        who = customer_ref_of(values)
        if who is None and not any(e.field in CUSTOMER_FIELDS for e in errors):
            errors.append(
                RowError(
                    "customer_id", gettext("The row names no customer: give customer_id, email or loyalty_number.")
                )
            )
        viewed_at = None
        if values["viewed_at"] is not None:
            try:
                viewed_at = read_datetime(values["viewed_at"], self.context.formats)
            except ValueError as problem:
                errors.append(RowError("viewed_at", str(problem)))
            if viewed_at is not None and viewed_at > self.context.now + CLOCK_SKEW:
                errors.append(RowError("viewed_at", gettext("This date is in the future.")))
        url = values["url"]
        if url is not None and (len(url) > MAX_URL or not URL.match(url)):
            errors.append(
                RowError(
                    "url",
                    gettext(
                        "“%(value)s” is not a web address (http:// or https://, at most %(max)s characters).",
                        value=url[:80],
                        max=MAX_URL,
                    ),
                )
            )
        title = values["title"]
        if title is not None and len(title) > MAX_TITLE:
            errors.append(RowError("title", gettext("At most %(max)s characters.", max=MAX_TITLE)))
        if errors:
            raise RowInvalid(errors)
        assert who and viewed_at and url  # every problem raised above
        return PageViewRow(line=line, who=who, viewed_at=viewed_at, url=url, title=title)

    def group_key(self, record: PageViewRow) -> str | None:
        return None

    def check(self, session: Session, batch: Sequence[PageViewRow]) -> dict[int, list[RowError]]:
        """Says whose each view is. An unknown customer is not a row error: as the API does, the view is dropped and
        counted (an analytics export names visitors the portal never heard of, and that is no mistake of the file)."""
        index = CustomerIndex(session, (row.who for row in batch))
        erased: dict[CustomerRef, bool] = {}
        for row in batch:
            found = index.find(row.who)
            if found is not None:
                row.customer_id, row.restricted, row.erased = found.id, found.restricted, False
                continue
            row.customer_id = None
            if row.who not in erased:
                erased[row.who] = is_erased(session, self.context.settings, row.who)
            row.erased = erased[row.who]
        return {}

    def write(self, session: Session, batch: Sequence[PageViewRow], tally: Tally) -> None:
        dropped = {"erased": 0, "unknown_customer": 0, "restricted": 0, "past_retention": 0, "no_consent": 0}
        candidates: list[PageViewRow] = []
        for row in batch:
            if row.customer_id is None:
                dropped["erased" if row.erased else "unknown_customer"] += 1
            elif row.restricted:
                dropped["restricted"] += 1
            elif row.viewed_at < self.kept_since:
                dropped["past_retention"] += 1
            else:
                candidates.append(row)
        timelines = ledger.consent_timelines(
            session,
            customer_ids={row.customer_id for row in candidates if row.customer_id is not None},
            purposes=[ledger.BROWSING_PURPOSE],
        )
        held = _held_views(session, candidates)
        keep: list[tuple[int, datetime, str, str | None]] = []
        unchanged = 0
        for row in candidates:
            assert row.customer_id is not None
            key = (row.customer_id, row.viewed_at, row.url)
            if not timelines[(row.customer_id, ledger.BROWSING_PURPOSE)].stood_at(row.viewed_at):
                dropped["no_consent"] += 1
            elif key in held:
                unchanged += 1
            else:
                held.add(key)  # the same view twice in the file is kept once
                keep.append((row.customer_id, row.viewed_at, row.url, row.title))
        record_page_views(session, keep, timezone=self.context.timezone)
        for outcome, count in (("created", len(keep)), ("unchanged", unchanged)):
            if count:
                tally.count(outcome, count)
        for reason, count in dropped.items():
            if count:
                tally.count("dropped", count, reason=reason)
        # One audit event per batch, with counts only, as for the API: which pages someone viewed is not for the
        # audit trail.
        record_audit(
            session,
            actor=self.context.actor,
            action="browsing.ingested",
            detail={"kept": len(keep), "unchanged": unchanged, **dropped, "source": self.context.source},
            now=self.context.now,
        )


def _held_views(session: Session, rows: Sequence[PageViewRow]) -> set[tuple[int, datetime, str]]:
    """The views of `rows`' customers already held in the batch's span of time: one indexed range read."""
    ids = sorted({row.customer_id for row in rows if row.customer_id is not None})
    if not ids:
        return set()
    statement = select(PageView.customer_id, PageView.viewed_at, PageView.url).where(
        PageView.customer_id.in_(ids),
        PageView.viewed_at >= min(row.viewed_at for row in rows),
        PageView.viewed_at <= max(row.viewed_at for row in rows),
    )
    return {(c, at, url) for c, at, url in as_connection(session).execute(statement)}
