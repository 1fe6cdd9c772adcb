"""What the archive tells a person (index.html) and the Art. 15(1) information as data (processing.json).

index.html is read by a person, in a browser, offline: it shows every total, the whole consent history and every
request, but only the newest `REPORT_ROWS` purchases and page views — a million table rows helps nobody and no
browser opens them comfortably. The complete lists are in data/, and the page says so with the counts.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from datetime import date, datetime
from typing import Any

from sqlalchemy import BindParameter, Connection, bindparam, select

from portal.consent import ledger
from portal.consent.register import LocalizedText, PurposeRegister
from portal.db import limit_parameter
from portal.i18n import SUPPORTED_LOCALES, gettext, lazy_gettext, using_locale
from portal.models import PageView, PageViewDay, PageViewTotal, PrivacyRequest, RequestEvent
from portal.purchases import service as purchases
from portal.retailer import Retailer

REPORT_ROWS = 1000
SUPERVISORY_AUTHORITY = {"name": "CNIL", "website": "https://www.cnil.fr"}

# (right, GDPR article, what it lets the customer do): told in processing.json in every language and in index.html.
RIGHTS = (
    ("access", "15", lazy_gettext("Know whether we use your data, see it and get a copy of it.")),
    ("rectification", "16", lazy_gettext("Have inaccurate or incomplete data corrected.")),
    ("erasure", "17", lazy_gettext("Have your data erased, except what the law makes us keep.")),
    ("restriction", "18", lazy_gettext("Have us stop using your data for a while, for example while we check it.")),
    ("portability", "20", lazy_gettext("Receive your data in a structured, machine-readable format.")),
    ("objection", "21", lazy_gettext("Object to direct marketing at any time, and to uses based on our interest.")),
    ("withdraw_consent", "7(3)", lazy_gettext("Withdraw your consent at any time, as easily as you gave it.")),
    ("complaint", "77", lazy_gettext("Lodge a complaint with the CNIL, the French data protection authority.")),
)
# index.html names legal bases and purchase channels with the portal's own words (portal/labels.py, template
# globals): the archive reads like the pages, and each wording has one translation.


@dataclasses.dataclass(frozen=True)
class PageViewLine:
    viewed_at: datetime
    url: str
    title: str | None


@dataclasses.dataclass(frozen=True)
class RequestLine:
    reference: str
    type: str
    status: str
    received_at: datetime
    due_at: datetime
    closed_at: datetime | None
    outcome: str | None
    steps: tuple[tuple[datetime, str, str | None], ...]  # (when, kind, note)


@dataclasses.dataclass(frozen=True)
class Report:
    """Everything index.html shows, read in the archive's snapshot."""

    totals: purchases.PurchaseTotals
    recent_purchases: tuple[purchases.PurchaseSummary, ...]
    page_view_count: int
    views_by_month: tuple[tuple[date, int], ...]  # (first day of the month, views), newest first
    recent_views: tuple[PageViewLine, ...]
    consents: dict[str, ledger.ConsentState]
    consent_history: tuple[ledger.ConsentRecord, ...]
    requests: tuple[RequestLine, ...]
    report_rows: int = REPORT_ROWS


_DAYS = PageViewDay.__table__.c
_VIEWS = PageView.__table__.c
_VIEW_TOTAL = PageViewTotal.__table__.c
_R = PrivacyRequest.__table__.c
_RE = RequestEvent.__table__.c
_CUSTOMER_ID: BindParameter[int] = bindparam("customer_id")

_DAY_COUNTS = select(_DAYS.day, _DAYS.view_count).where(_DAYS.customer_id == _CUSTOMER_ID)
_PAGE_VIEW_TOTAL = select(_VIEW_TOTAL.view_count).where(_VIEW_TOTAL.customer_id == _CUSTOMER_ID)
_NEWEST_VIEWS = (
    select(_VIEWS.viewed_at, _VIEWS.url, _VIEWS.title)
    .where(_VIEWS.customer_id == _CUSTOMER_ID)
    .order_by(_VIEWS.viewed_at.desc(), _VIEWS.id.desc())
    .limit(limit_parameter())
)
_REQUESTS = (
    select(
        _R.id, _R.reference, _R.type, _R.status, _R.received_at, _R.due_at, _R.extended_due_at, _R.closed_at, _R.outcome
    )
    .where(_R.customer_id == _CUSTOMER_ID)
    .order_by(_R.received_at.desc(), _R.id.desc())
)
_STEPS = (
    select(_RE.request_id, _RE.occurred_at, _RE.kind, _RE.note)
    .select_from(RequestEvent.__table__.join(PrivacyRequest.__table__, _R.id == _RE.request_id))
    .where(_R.customer_id == _CUSTOMER_ID, _RE.visible_to_customer.is_(True))
    .order_by(_RE.occurred_at, _RE.id)
)


def build_report(
    connection: Connection,
    *,
    customer_id: int,
    register: PurposeRegister,
    timezone: str,
    report_rows: int = REPORT_ROWS,
) -> Report:
    params = {"customer_id": customer_id}
    months: Counter[date] = Counter()
    for day, count in connection.execute(_DAY_COUNTS, params):
        months[day.replace(day=1)] += int(count)
    steps: dict[int, list[tuple[datetime, str, str | None]]] = {}
    for request_id, occurred_at, kind, note in connection.execute(_STEPS, params):
        steps.setdefault(request_id, []).append((occurred_at, kind, note))
    requests = tuple(
        RequestLine(
            reference=row.reference,
            type=row.type,
            status=row.status,
            received_at=row.received_at,
            due_at=row.extended_due_at or row.due_at,
            closed_at=row.closed_at,
            outcome=row.outcome,
            steps=tuple(steps.get(row.id, ())),
        )
        for row in connection.execute(_REQUESTS, params)
    )
    codes = [purpose.code for purpose in register.consent_based()]
    return Report(
        totals=purchases.purchase_totals(connection, customer_id=customer_id),
        recent_purchases=purchases.purchase_page(
            connection,
            customer_id=customer_id,
            filters=purchases.PurchaseFilters(),
            timezone=timezone,
            page_size=report_rows,
        ).purchases,
        page_view_count=int(connection.execute(_PAGE_VIEW_TOTAL, params).scalar() or 0),
        views_by_month=tuple(sorted(months.items(), reverse=True)),
        recent_views=tuple(
            PageViewLine(*row) for row in connection.execute(_NEWEST_VIEWS, {**params, "limit": report_rows})
        ),
        consents=ledger.current_consents(connection, customer_id=customer_id, purposes=codes),
        consent_history=tuple(ledger.history(connection, customer_id=customer_id)),
        requests=requests,
        report_rows=report_rows,
    )


def _texts(value: LocalizedText) -> dict[str, str]:
    return {locale: value.in_locale(locale) for locale in SUPPORTED_LOCALES}


def _translations(message: str) -> dict[str, str]:
    texts = {}
    for locale in SUPPORTED_LOCALES:
        with using_locale(locale):
            texts[locale] = gettext(message)
    return texts


def processing_document(
    *, register: PurposeRegister, retailer: Retailer, consents: dict[str, ledger.ConsentState], timezone: Any
) -> dict[str, Any]:
    """processing.json: the information Art. 15(1)(a)–(h) asks for, in every language, with this customer's consents."""

    def consent(code: str) -> dict[str, Any] | None:
        if not register.by_code[code].consent_based:
            return None
        state = consents.get(code, ledger.ConsentState())
        changed = state.changed_at.astimezone(timezone).isoformat(timespec="seconds") if state.changed_at else None
        return {"status": state.status, "changed_at": changed}

    return {
        "controller": {
            "name": retailer.name,
            "legal_name": retailer.legal_name,
            "registration": retailer.registration,
            "postal_address": retailer.postal_address,
            "website": retailer.website,
            "contact_email": retailer.support_email,
        },
        "dpo": {
            "name": retailer.dpo_name,
            "email": retailer.dpo_email,
            "postal_address": retailer.dpo_postal_address,
        },
        "policy": {"version": register.policy_version, "date": register.policy_date.isoformat()},
        "purposes": [
            {
                "code": purpose.code,
                "title": _texts(purpose.title),
                "description": _texts(purpose.description),
                "legal_basis": purpose.legal_basis,
                "data_categories": [{"code": t.code, "label": _texts(t.label)} for t in purpose.data_categories],
                "recipients": [{"code": t.code, "label": _texts(t.label)} for t in purpose.recipients],
                "retention": {
                    "period": purpose.retention.amount,
                    "unit": purpose.retention.unit,
                    "starts": purpose.retention.starts,
                    "text": _texts(purpose.retention.text),
                },
                "source": _texts(purpose.source),
                "can_object": purpose.can_object,
                "profiling": purpose.profiling,
                "consent": consent(purpose.code),
            }
            for purpose in register
        ],
        "rights": [
            {"right": right, "article": article, "description": _translations(text)} for right, article, text in RIGHTS
        ],
        "supervisory_authority": dict(SUPERVISORY_AUTHORITY),
    }
