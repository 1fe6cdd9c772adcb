"""The overview's one statement: the same counts and the same breach notices as reading them apart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from portal.db import transaction
from portal.incidents.notices import notices_for_customer
from portal.models import Incident, IncidentRecipient
from portal.mydata.service import _OVERVIEW_WITH_NOTICES, overview_for, overview_with_notices
from tests.factories import make_customer, make_store
from tests.purchase_factories import add_purchase

NOW = datetime(2026, 11, 23, 10, tzinfo=UTC)


def incident(engine: Engine, reference: str, notice: dict | None) -> int:
    with transaction(engine) as session:
        row = Incident(
            reference=reference,
            discovered_at=NOW - timedelta(days=3),
            recorded_at=NOW - timedelta(days=2),
            recorded_by="staff:1",
            nature="Stolen laptop",
            data_categories="identity",
            people_estimate=3,
            consequences="Phishing",
            measures="Passwords reset",
            notice=notice,
        )
        session.add(row)
        session.flush()
        assert row.id is not None
        return row.id


def concern(engine: Engine, incident_id: int, customer_id: int, notified_at: datetime | None) -> None:
    with transaction(engine) as session:
        session.add(
            IncidentRecipient(
                incident_id=incident_id,
                customer_id=customer_id,
                selected_at=NOW - timedelta(days=1),
                selected_by="list",
                notified_at=notified_at,
            )
        )


def test_the_overview_and_its_notices_read_together_are_what_each_read_gives(engine: Engine) -> None:
    camille = make_customer(engine)
    other = make_customer(engine)
    store = make_store(engine)
    add_purchase(engine, camille, store, at=NOW - timedelta(days=10))
    assert camille.id is not None and other.id is not None
    both = {"fr": {"advice": "Méfiez-vous"}, "en": {"advice": "Beware"}}
    older = incident(engine, "INC-AAAA-0001", both)
    newer = incident(engine, "INC-AAAA-0002", {"fr": {"advice": "Changez de mot de passe"}})
    untold = incident(engine, "INC-AAAA-0003", both)
    concern(engine, older, camille.id, NOW - timedelta(hours=5))
    concern(engine, newer, camille.id, NOW - timedelta(hours=1))
    concern(engine, untold, camille.id, None)  # selected, not told yet: not shown
    concern(engine, older, other.id, NOW - timedelta(hours=2))

    with transaction(engine) as session:
        for language in ("fr", "en"):
            overview, notices = overview_with_notices(session, customer_id=camille.id, language=language, now=NOW)
            assert overview == overview_for(session, customer_id=camille.id)
            assert notices.recent == notices_for_customer(session, customer_id=camille.id, language=language)
            assert notices.total == 2
        overview, notices = overview_with_notices(session, customer_id=camille.id, language="en", now=NOW)
    assert overview.purchase_count == 1
    assert [(n.reference, n.parts["advice"]) for n in notices.recent] == [
        ("INC-AAAA-0002", "Changez de mot de passe"),  # newest first; French when the notice has no English
        ("INC-AAAA-0001", "Beware"),
    ]

    with transaction(engine) as session:
        overview, notices = overview_with_notices(session, customer_id=other.id, language="fr", now=NOW)
        assert overview == overview_for(session, customer_id=other.id) and notices.total == 1
        alone = make_customer(engine)
        assert alone.id is not None
        assert overview_with_notices(session, customer_id=alone.id, language="fr", now=NOW)[1].total == 0
        # Older than 90 days: counted (the overview links to the history) but no longer shown in full.
        overview, notices = overview_with_notices(
            session, customer_id=camille.id, language="fr", now=NOW + timedelta(days=91)
        )
        assert notices.recent == [] and notices.total == 2


def test_the_overview_reads_the_purchase_totals_and_the_requests_once(engine: Engine) -> None:
    # As scalar subqueries, one per figure, PostgreSQL read the customer's totals four times and their requests
    # twice: the statement took 1.5 ms there, 0.6 ms reading each once (bench/README.md, issue 17).
    sql = str(_OVERVIEW_WITH_NOTICES.compile(dialect=engine.dialect))
    assert sql.count("FROM purchase_total") == 1
    assert sql.count("FROM privacy_request") == 1
