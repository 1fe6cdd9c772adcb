"""The demo dataset: its volumes, its summary tables in step with the rows, consent before browsing, determinism."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, func, select, text
from sqlmodel import Session

from portal.db import make_engine, migrate
from portal.demo.dataset import DEMO_CUSTOMERS, DemoSummary, ensure_demo_data, generate
from portal.models import Customer, PageView, PageViewDay, PageViewTotal, Purchase, PurchaseTotal, Store
from portal.models.customer import PROFILE_FIELDS

PARIS = ZoneInfo("Europe/Paris")


def _fresh_engine(path: Path) -> Engine:
    url = f"sqlite:///{path}"
    migrate(url)
    return make_engine(url)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, DemoSummary]]:
    """One full-size generation shared by the tests of this module (they only read)."""
    engine = _fresh_engine(tmp_path_factory.mktemp("demo") / "demo.sqlite3")
    summary = generate(engine)
    yield engine, summary
    engine.dispose()


def _customer_id(engine: Engine, email: str) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(Customer.id).where(Customer.email_key == email)).scalar_one())


def _scalar(engine: Engine, sql: str, **params: object) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text(sql), params).scalar_one())


def test_volumes(demo: tuple[Engine, DemoSummary]) -> None:
    engine, summary = demo
    heavy = _customer_id(engine, DEMO_CUSTOMERS[0])
    assert summary.customers >= 300
    with engine.connect() as connection:
        kinds = Counter(connection.execute(select(Store.kind)).scalars())
    assert kinds == {"store": 12, "web": 1}
    assert summary.stores == 13
    assert _scalar(engine, "SELECT COUNT(*) FROM purchase WHERE customer_id = :c", c=heavy) == 10_000
    assert _scalar(engine, "SELECT COUNT(*) FROM purchase WHERE customer_id <> :c", c=heavy) >= 30_000
    assert _scalar(engine, "SELECT COUNT(*) FROM page_view WHERE customer_id = :c", c=heavy) == 100_000
    assert summary.purchases == _scalar(engine, "SELECT COUNT(*) FROM purchase")
    assert summary.page_views == _scalar(engine, "SELECT COUNT(*) FROM page_view")
    assert summary.generated and summary.seconds > 0
    assert f"{summary.customers:,} customers" in summary.describe()


def test_demo_customers(demo: tuple[Engine, DemoSummary]) -> None:
    engine, _ = demo
    with engine.connect() as connection:
        rows = connection.execute(
            select(Customer.id, Customer.email, Customer.preferred_language, Customer.country).order_by(Customer.id)
        ).all()
    assert [(row.email, row.preferred_language) for row in rows[:3]] == [
        (DEMO_CUSTOMERS[0], "fr"),
        (DEMO_CUSTOMERS[1], "fr"),
        (DEMO_CUSTOMERS[2], "en"),
    ]
    emails = [row.email for row in rows]
    assert len(set(emails)) == len(emails)
    assert all(email == email.lower() for email in emails)
    assert {email.split("@")[1] for email in emails} <= {"example.com", "example.org", "example.net"}  # RFC 2606
    assert {row.country for row in rows} >= {"FR", "GB"}
    with Session(engine) as session:
        heavy = session.get(Customer, rows[0].id)
        assert heavy is not None
        assert heavy.held_profile_fields() == list(PROFILE_FIELDS)  # she shows every profile field


def test_purchase_totals_equal_their_lines(demo: tuple[Engine, DemoSummary]) -> None:
    engine, _ = demo
    mismatched = _scalar(
        engine,
        "SELECT COUNT(*) FROM purchase p WHERE p.total_cents <> "
        "(SELECT COALESCE(SUM(l.quantity * l.unit_price_cents), -1) FROM purchase_line l WHERE l.purchase_id = p.id)",
    )
    assert mismatched == 0


def test_purchase_total_table_matches_the_purchases(demo: tuple[Engine, DemoSummary]) -> None:
    engine, _ = demo
    expected: dict[tuple[int, int, int], list] = {}
    per_customer: Counter[int] = Counter()
    with engine.connect() as connection:
        purchases = connection.execute(
            select(
                Purchase.customer_id, Purchase.store_id, Purchase.purchased_at, Purchase.total_cents, Purchase.channel
            )
        ).all()
        totals = connection.execute(select(PurchaseTotal)).all()
    for customer_id, store_id, purchased_at, total, channel in purchases:
        local = purchased_at.astimezone(PARIS)
        if channel == "in_store":  # shops open Monday to Saturday, 9:30 to 19:30
            assert local.weekday() != 6 and "09:30" <= f"{local:%H:%M}" < "19:30", local
        per_customer[customer_id] += 1
        key = (customer_id, store_id, local.year)
        entry = expected.setdefault(key, [0, 0, purchased_at, purchased_at])
        entry[0] += 1
        entry[1] += total
        entry[2] = min(entry[2], purchased_at)
        entry[3] = max(entry[3], purchased_at)
    actual = {
        (row.customer_id, row.store_id, row.year): [
            row.purchase_count,
            row.amount_cents,
            row.first_purchase_at,
            row.last_purchase_at,
        ]
        for row in totals
    }
    assert actual == expected
    summed: Counter[int] = Counter()
    for (customer_id, _store, _year), (count, *_rest) in actual.items():
        summed[customer_id] += count
    assert summed == per_customer


def test_page_view_days_match_the_page_views(demo: tuple[Engine, DemoSummary]) -> None:
    engine, _ = demo
    with engine.connect() as connection:
        views = connection.execute(select(PageView.customer_id, PageView.viewed_at)).all()
        days = connection.execute(select(PageViewDay.customer_id, PageViewDay.day, PageViewDay.view_count)).all()
    expected = Counter((customer_id, viewed_at.astimezone(PARIS).date()) for customer_id, viewed_at in views)
    assert {(customer_id, day): count for customer_id, day, count in days} == expected
    per_customer: defaultdict[int, int] = defaultdict(int)
    for customer_id, _day, count in days:
        per_customer[customer_id] += count
    assert per_customer == Counter(customer_id for customer_id, _ in views)
    with engine.connect() as connection:
        totals = connection.execute(
            select(PageViewTotal.customer_id, PageViewTotal.view_count, PageViewTotal.last_viewed_at)
        ).all()
    latest: dict[int, object] = {}
    for customer_id, viewed_at in views:
        latest[customer_id] = max(latest.get(customer_id, viewed_at), viewed_at)  # type: ignore[type-var]
    assert {c: (n, last) for c, n, last in totals} == {c: (per_customer[c], latest[c]) for c in per_customer}


def test_page_views_only_while_browsing_is_consented(demo: tuple[Engine, DemoSummary]) -> None:
    engine, _ = demo
    # The latest browsing_analytics event at or before each page view must be a grant.
    unconsented = _scalar(
        engine,
        "SELECT COUNT(*) FROM page_view v WHERE COALESCE(("
        "  SELECT e.granted FROM consent_event e"
        "  WHERE e.customer_id = v.customer_id AND e.purpose = 'browsing_analytics' AND e.occurred_at <= v.viewed_at"
        "  ORDER BY e.occurred_at DESC, e.id DESC LIMIT 1"
        "), :no) = :no",
        no=False,
    )
    assert unconsented == 0
    # Nobody who withdrew (and has not granted again) keeps browsing data.
    withdrawn_with_views = _scalar(
        engine,
        "SELECT COUNT(DISTINCT v.customer_id) FROM page_view v WHERE ("
        "  SELECT e.granted FROM consent_event e"
        "  WHERE e.customer_id = v.customer_id AND e.purpose = 'browsing_analytics'"
        "  ORDER BY e.occurred_at DESC, e.id DESC LIMIT 1"
        ") = :no",
        no=False,
    )
    assert withdrawn_with_views == 0
    english = _customer_id(engine, DEMO_CUSTOMERS[2])
    assert _scalar(engine, "SELECT COUNT(*) FROM page_view WHERE customer_id = :c", c=english) == 0
    consenting = _scalar(
        engine, "SELECT COUNT(DISTINCT customer_id) FROM consent_event WHERE purpose = 'browsing_analytics'"
    )
    assert 0.35 <= consenting / _scalar(engine, "SELECT COUNT(*) FROM customer") <= 0.55


def test_existing_data_is_kept(demo: tuple[Engine, DemoSummary]) -> None:
    engine, summary = demo
    again = ensure_demo_data(engine)
    assert not again.generated
    assert (again.customers, again.purchases, again.page_views) == (
        summary.customers,
        summary.purchases,
        summary.page_views,
    )
    assert "already present" in again.describe()


def _fingerprint(engine: Engine) -> tuple[list[str], int, int, datetime]:
    with engine.connect() as connection:
        emails = list(connection.execute(select(Customer.email).order_by(Customer.id)).scalars())
        purchases, amount = connection.execute(select(func.count(), func.sum(Purchase.total_cents))).one()
        last_view = connection.execute(select(func.max(PageView.viewed_at))).scalar_one()
    return emails, purchases, amount, last_view


def test_same_seed_same_data_and_reset_regenerates(demo: tuple[Engine, DemoSummary], tmp_path: Path) -> None:
    engine, _ = demo
    other = _fresh_engine(tmp_path / "again.sqlite3")
    try:
        generate(other)
        assert _fingerprint(other) == _fingerprint(engine)
        with other.begin() as connection:
            connection.execute(text("UPDATE customer SET first_name = 'Changed'"))
        summary = ensure_demo_data(other, reset=True)
        assert summary.generated
        assert _fingerprint(other) == _fingerprint(engine)
        assert _scalar(other, "SELECT COUNT(*) FROM customer WHERE first_name = 'Changed'") == 0
        assert _scalar(other, "SELECT COUNT(*) FROM alembic_version") == 1
    finally:
        other.dispose()


def test_demo_staff_accounts_wait_for_their_first_sign_in(demo: tuple[Engine, DemoSummary]) -> None:
    from portal.demo.dataset import DEMO_STAFF
    from portal.models import StaffUser
    from portal.staff.passwords import check_password

    engine, _ = demo
    with Session(engine) as session:
        accounts = {s.email: s for s in session.scalars(select(StaffUser))}
        assert {email for email, *_ in DEMO_STAFF} <= set(accounts)
        for email, _name, role, store_code, password in DEMO_STAFF:
            account = accounts[email]
            assert account.role == role and account.active
            assert account.totp_secret is None and account.totp_confirmed_at is None  # the first sign-in enrols
            assert check_password(account.password_hash, password)[0]
            assert not account.password_must_change  # the documented passwords stay usable (README.md)
            store = session.get(Store, account.store_id) if account.store_id else None
            assert (store.code if store else None) == store_code
