"""The current consent state is read in O(purposes) and always equals a replay of the whole ledger."""

from __future__ import annotations

import contextlib
import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Connection, Engine, insert, select, text

from portal.consent import ledger
from portal.consent.register import PurposeRegister, load_register
from portal.db import in_transaction, transaction
from portal.models import ConsentEvent
from tests.consent_factories import add_consent_changes
from tests.factories import make_customer

NOW = datetime(2026, 11, 23, 10, tzinfo=UTC)


@pytest.fixture
def register(settings) -> PurposeRegister:  # type: ignore[no-untyped-def]
    return load_register(settings.purposes_file)


def replayed(connection: Connection, customer_id: int) -> dict[str, ledger.ConsentState]:
    """The state as the ledger defines it: replay every event in order (occurred_at, then id)."""
    rows = connection.execute(
        select(ConsentEvent.purpose, ConsentEvent.granted, ConsentEvent.occurred_at, ConsentEvent.channel)
        .where(ConsentEvent.customer_id == customer_id)
        .order_by(ConsentEvent.occurred_at, ConsentEvent.id)
    )
    states: dict[str, ledger.ConsentState] = {}
    for purpose, granted, occurred_at, channel in rows:
        first = states.get(purpose, ledger.ConsentState()).first_granted_at or (occurred_at if granted else None)
        states[purpose] = ledger.ConsentState(
            granted=bool(granted), changed_at=occurred_at, first_granted_at=first, channel=channel
        )
    return states


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_state_read_equals_a_replay_after_random_writes(
    engine: Engine, register: PurposeRegister, seed: int
) -> None:
    """Clicks, answers from other channels dated earlier, and history written straight into the past (as imports
    and merges do, which can leave two equal answers in a row or several at one moment): the read never differs."""
    rng = random.Random(seed)
    customers = [make_customer(engine) for _ in range(3)]
    codes = [purpose.code for purpose in register.consent_based()]
    clock = NOW - timedelta(days=30)
    for _ in range(120):
        customer = rng.choice(customers)
        purpose = rng.choice(codes)
        kind = rng.random()
        clock += timedelta(minutes=rng.choice([0, 0, 1, 7]))  # 0: several events at the same moment
        if kind < 0.7:
            # An answer older than the latest one is refused (nothing recorded): the state must still match.
            with contextlib.suppress(ledger.ConsentRefused):
                in_transaction(
                    engine,
                    ledger.record_consent,
                    register=register,
                    customer_id=customer.id,
                    purpose=purpose,
                    granted=rng.random() < 0.5,
                    channel=rng.choice(ledger.CHANNELS),
                    actor="system",
                    now=clock,
                    locale="fr",
                    occurred_at=clock - timedelta(minutes=rng.choice([0, 0, 3])),
                )
        else:
            with transaction(engine) as session:
                session.execute(
                    insert(ConsentEvent.__table__),
                    [
                        {
                            "customer_id": customer.id,
                            "purpose": purpose,
                            "granted": rng.random() < 0.5,
                            "occurred_at": clock - timedelta(minutes=rng.randrange(0, 600)),
                            "channel": "import",
                            "actor": "import",
                            "policy_version": register.policy_version,
                        }
                    ],
                )
        with engine.connect() as connection:
            for someone in customers:
                expected = replayed(connection, someone.id)
                assert ledger.current_consents(connection, customer_id=someone.id) == expected
                listed = ledger.current_consents(connection, customer_id=someone.id, purposes=codes)
                assert listed == {code: ledger.ConsentState() for code in codes} | expected


def test_a_withdrawal_first_is_never_given_and_a_later_grant_is_remembered(engine: Engine) -> None:
    customer = make_customer(engine)
    add_consent_changes(engine, customer.id, 1, purposes=("sms_offers",), end=NOW)  # given
    with transaction(engine) as session:
        session.execute(
            insert(ConsentEvent.__table__),
            [
                {"customer_id": customer.id, "purpose": "email_newsletter", "granted": False, "occurred_at": NOW,
                 "channel": "import", "actor": "import", "policy_version": "2026-01"},
            ],
        )  # fmt: skip
    with engine.connect() as connection:
        states = ledger.current_consents(connection, customer_id=customer.id, purposes=["partner_sharing"])
    assert states["email_newsletter"].status == "never" and states["email_newsletter"].changed_at == NOW
    assert states["sms_offers"].status == "granted" and states["sms_offers"].first_granted_at == NOW
    assert states["partner_sharing"] == ledger.ConsentState()


# --- The plans: index seeks only, on both engines ---------------------------------------------------------------


def _plan(connection: Connection, statement, params: dict[str, object]) -> str:  # type: ignore[no-untyped-def]
    # As a run sends it: the LIMIT written in (db.limit_parameter), expanding lists expanded.
    state = statement.compile(dialect=connection.dialect).construct_expanded_state(params)
    values = state.parameters
    if connection.dialect.name == "sqlite":
        rows = connection.exec_driver_sql(
            f"EXPLAIN QUERY PLAN {state.statement}", tuple(values[name] for name in state.positiontup or ())
        )
        return "\n".join(row[3] for row in rows)
    rows = connection.exec_driver_sql(f"EXPLAIN {state.statement}", values)
    return "\n".join(row[0] for row in rows)


@pytest.fixture
def long_ledgers(engine: Engine) -> int:
    """200 customers with 50 answers and one with 10,000, analysed, so PostgreSQL plans as it would in production."""
    purposes = ("email_newsletter", "sms_offers", "partner_sharing", "browsing_analytics")
    for _ in range(200):
        add_consent_changes(engine, make_customer(engine).id, 50, purposes=purposes, end=NOW)
    heavy = make_customer(engine)
    add_consent_changes(engine, heavy.id, 10_000, purposes=purposes, end=NOW)
    with engine.connect() as connection:
        connection.execute(text("ANALYZE"))
        connection.commit()
    return heavy.id


def test_the_state_read_seeks_in_the_ledger_indexes(engine: Engine, long_ledgers: int) -> None:
    with engine.connect() as connection:
        plan = _plan(connection, ledger.CURRENT_STATE[engine.dialect.name], {"customer_id": long_ledgers})
    if engine.dialect.name == "sqlite":
        walked = {"SCAN CONSTANT ROW", "SCAN answered"}  # the recursion's own rows, one per purpose answered
        scans = [line for line in plan.splitlines() if line.strip().startswith("SCAN") and line.strip() not in walked]
        assert not scans, plan  # every access to the ledger is a SEARCH on an index (or the rowid)
        assert "(customer_id=? AND purpose>?)" in plan, plan  # the next purpose answered: one seek
        assert "ix_consent_event_customer_purpose (customer_id=? AND purpose=?)" in plan, plan
        assert "ix_consent_event_first_granted (customer_id=? AND purpose=? AND granted=?)" in plan, plan
        assert "TEMP B-TREE" not in plan, plan
    else:
        assert "Seq Scan on consent_event" not in plan, plan
        assert "ix_consent_event_customer_purpose" in plan and "ix_consent_event_first_granted" in plan, plan
        assert "Sort" not in plan and "Hash" not in plan, plan


def test_postgresql_seeks_the_state_even_in_a_short_ledger(engine: Engine) -> None:
    # With few events, `id IN (the latest ids)` let PostgreSQL hash every customer's events on each read; the LATERAL
    # seek per purpose cannot, as a generic plan (what a prepared page statement runs) or not.
    if engine.dialect.name != "postgresql":
        pytest.skip("LATERAL is PostgreSQL's statement (SQLite has none and seeks already)")
    customer = make_customer(engine)
    add_consent_changes(engine, customer.id, 40, purposes=("email_newsletter", "sms_offers"), end=NOW)
    with engine.connect() as connection:
        connection.execute(text("ANALYZE consent_event"))
        compiled = ledger.CURRENT_STATE["postgresql"].compile(dialect=connection.dialect)
        state = compiled.construct_expanded_state({"customer_id": 0})
        connection.exec_driver_sql(f"PREPARE state_read(int) AS {state.statement.replace('%(customer_id)s', '$1')}")
        connection.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
        plan = "\n".join(row[0] for row in connection.exec_driver_sql(f"EXPLAIN EXECUTE state_read({customer.id})"))
        assert ledger.current_consents(connection, customer_id=customer.id) == replayed(connection, customer.id)
    assert "Seq Scan on consent_event" not in plan and "Hash" not in plan, plan


def test_the_state_read_answers_the_same_for_ten_and_ten_thousand_events(engine: Engine, long_ledgers: int) -> None:
    light = make_customer(engine)
    add_consent_changes(engine, light.id, 10, purposes=("email_newsletter", "sms_offers"), end=NOW)
    with engine.connect() as connection:
        for customer_id in (light.id, long_ledgers):
            assert ledger.current_consents(connection, customer_id=customer_id) == replayed(connection, customer_id)


# --- Timelines from a moment on: what browsing ingestion reads ----------------------------------------------------


@pytest.mark.parametrize("seed", [4, 5])
def test_a_timeline_from_a_moment_judges_later_moments_as_the_whole_timeline(engine: Engine, seed: int) -> None:
    """Reading only the answer standing at `since` and those after it gives the same answer for every moment from
    `since` on, ties at one moment and repeated answers included."""
    rng = random.Random(seed)
    customers = [make_customer(engine).id for _ in range(4)]
    purposes = ["browsing_analytics", "email_newsletter"]
    rows = [
        {
            "customer_id": rng.choice(customers),
            "purpose": rng.choice(purposes),
            "granted": rng.random() < 0.5,
            "occurred_at": NOW - timedelta(minutes=rng.randrange(0, 300, 5)),
            "channel": "web",
            "actor": "customer",
            "policy_version": "2026-01",
        }
        for _ in range(200)
    ]
    with transaction(engine) as session:
        session.execute(insert(ConsentEvent.__table__), rows)
    with engine.connect() as connection:
        whole = ledger.consent_timelines(connection, customer_ids=customers, purposes=purposes)
        for minutes in (400, 300, 150, 37, 5, 0):
            since = NOW - timedelta(minutes=minutes)
            window = ledger.consent_timelines(connection, customer_ids=customers, purposes=purposes, since=since)
            for key in [(c, p) for c in customers for p in purposes]:
                for later in range(0, minutes + 10, 5):
                    moment = since + timedelta(minutes=later)
                    assert window[key].stood_at(moment) == whole[key].stood_at(moment), (key, since, moment)
            assert sum(len(t.times) for t in window.values()) <= sum(len(t.times) for t in whole.values())


def test_a_recent_batch_reads_no_old_answer_but_the_standing_one(engine: Engine) -> None:
    customer = make_customer(engine)
    add_consent_changes(engine, customer.id, 1_001, purposes=("browsing_analytics",), end=NOW)  # ends given
    with engine.connect() as connection:
        window = ledger.consent_timelines(
            connection, customer_ids=[customer.id], purposes=["browsing_analytics"], since=NOW + timedelta(seconds=1)
        )
    timeline = window[(customer.id, "browsing_analytics")]
    assert timeline.times == [NOW] and timeline.answers == [True]
    assert timeline.stood_at(NOW + timedelta(minutes=1))


def test_a_history_page_seeks_in_the_time_index_and_never_sorts(engine: Engine, long_ledgers: int) -> None:
    """Page 200 of the history costs page 1: a seek on ix_consent_event_customer_time, limit + 1 rows, no sort."""
    params = {"customer_id": long_ledgers, "limit": 51, "before_at": NOW - timedelta(days=3), "before_id": 5_000}
    with engine.connect() as connection:
        for statement in (ledger._HISTORY_NEWEST, ledger._HISTORY_OLDER):
            plan = _plan(connection, statement, params)
            assert "ix_consent_event_customer_time" in plan, plan
            assert "TEMP B-TREE" not in plan and "Sort" not in plan, plan
            assert "Seq Scan" not in plan and not any(line.strip().startswith("SCAN") for line in plan.splitlines())


def test_the_overview_counts_granted_purposes_by_the_same_seeks(engine: Engine, long_ledgers: int) -> None:
    """The overview embeds the count of purposes consented to now (ledger.granted_purposes_count): equal to the
    state read's, and, like it, a seek per purpose answered rather than a walk of the ledger."""
    from portal.mydata.service import _OVERVIEW, overview_for

    with engine.connect() as connection:
        expected = sum(
            state.granted for state in ledger.current_consents(connection, customer_id=long_ledgers).values()
        )
        assert overview_for(connection, customer_id=long_ledgers).consents_granted == expected
        plan = _plan(connection, _OVERVIEW, {"customer_id": long_ledgers})
    if engine.dialect.name == "sqlite":
        walked = {"SCAN CONSTANT ROW", "SCAN answered"}
        ledger_scans = [
            line for line in plan.splitlines() if line.strip().startswith("SCAN") and line.strip() not in walked
        ]
        assert not [line for line in ledger_scans if "consent_event" in line or "latest_of" in line], plan
    else:
        assert "Seq Scan on consent_event" not in plan, plan
