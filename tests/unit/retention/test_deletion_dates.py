"""When each kind of a customer's data goes, as /me/processing tells them."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import Engine

from portal.audit import record_audit
from portal.consent.register import load_register
from portal.db import transaction
from portal.retention.customer import deletion_dates
from portal.settings import Settings
from tests.browsing_factories import add_views_at
from tests.conftest import TIMEZONE
from tests.factories import make_customer, make_store
from tests.purchase_factories import add_purchase


def test_each_kind_of_data_has_its_date(engine: Engine, settings: Settings) -> None:
    customer = make_customer(engine, created_at=datetime(2020, 1, 1, tzinfo=UTC))
    add_views_at(engine, customer, [datetime(2026, 1, 31, 12, tzinfo=UTC), datetime(2026, 5, 1, tzinfo=UTC)])
    add_purchase(engine, customer, make_store(engine), at=datetime(2024, 6, 1, tzinfo=UTC))
    with transaction(engine) as session:
        record_audit(session, actor="x", action="signin.succeeded", target=f"customer:{customer.id}",
                     now=datetime(2025, 3, 10, 9, tzinfo=UTC))  # fmt: skip
        dates = deletion_dates(
            session, customer_id=customer.id, register=load_register(settings.purposes_file), timezone=TIMEZONE
        )

    (views,) = dates["browsing_analytics"]
    assert (views.kind, views.amount, views.unit, views.on) == ("page_views", 13, "months", date(2027, 2, 28))
    (profile,) = dates["email_newsletter"]
    assert (profile.kind, profile.on) == ("profile", date(2028, 3, 10))  # 3 years after the last sign-in
    (purchases,) = dates["accounting"]
    assert (purchases.kind, purchases.on) == ("purchases", date(2035, 1, 1))  # 10 years after the 2024 year closed
    assert "order_management" not in dates
