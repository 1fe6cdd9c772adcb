"""The customer's side of a breach: recent notices in full on the overview, every notice in their history."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine
from starlette.testclient import TestClient

from portal.db import transaction
from portal.incidents import notices, selection, service
from portal.incidents.forms import IncidentFacts
from tests.conftest import Clock, SMTPServer, email_composer
from tests.factories import make_customer
from tests.web.helpers import sign_in_by_code

INES = "ines@example.com"
DPO = "staff:1"


def _notify(engine: Engine, address: str, *, told_at: datetime, label: str) -> str:
    """An incident discovered the day before `told_at`, whose notice reached `address` at `told_at`."""
    facts = IncidentFacts(
        discovered_at=told_at - timedelta(days=1),
        nature=f"internal {label}",
        data_categories=("email_address",),
        people_estimate=10,
        consequences="c",
        measures="m",
    )
    notice = {
        lang: {part: f"{part} {label} {lang}" for part in ("nature", "consequences", "measures", "advice")}
        for lang in ("fr", "en")
    }
    with transaction(engine) as session:
        reference = service.record_incident(session, facts=facts, actor=DPO, now=told_at)
        service.save_notice(session, reference=reference, notice=notice, actor=DPO, now=told_at)
        selection.select_from_list(session, reference=reference, text=address, actor=DPO, now=told_at)
        notices.send_notices(session, reference=reference, composer=email_composer(), actor=DPO, now=told_at)
    return reference


def test_recent_notices_show_on_the_overview_and_every_notice_in_the_history(
    client: TestClient, engine: Engine, clock: Clock, smtp: SMTPServer
) -> None:
    make_customer(engine, email=INES, preferred_language="en", first_name="Inès")
    client.get("/lang/en")
    assert sign_in_by_code(client, smtp, INES).status_code == 303
    old = _notify(engine, INES, told_at=clock() - timedelta(days=200), label="old")
    new = _notify(engine, INES, told_at=clock() - timedelta(days=2), label="new")

    overview = client.get("/me")
    assert overview.status_code == 200
    assert "advice new en" in overview.text and "advice old en" not in overview.text  # older than 90 days: history
    assert "2 security incidents concerned your data" in overview.text
    assert overview.text.count('href="/me/notices"') == 2  # from the recent notice and from the card

    history = client.get("/me/notices")
    assert history.status_code == 200 and "<h1>Security notices</h1>" in history.text
    text = history.text
    assert text.index(f"Incident {new}") < text.index(f"Incident {old}")  # newest first
    for label in ("old", "new"):
        assert all(f"{part} {label} en" in text for part in ("nature", "consequences", "measures", "advice"))
        assert f"advice {label} fr" not in text and f"internal {label}" not in text  # not the DPO's own wording
    told = (clock() - timedelta(days=200)).strftime("%-d %B %Y").lstrip("0")
    assert told.split()[1] in text  # the date it was sent, in words

    client.get("/lang/fr")
    french = client.get("/me/notices")
    assert "<h1>Avis de sécurité</h1>" in french.text and "advice old fr" in french.text
    assert "advice old en" not in french.text


def test_a_customer_never_notified_sees_an_empty_history_and_no_card(
    client: TestClient, engine: Engine, smtp: SMTPServer
) -> None:
    make_customer(engine, email=INES, preferred_language="en")
    client.get("/lang/en")
    assert sign_in_by_code(client, smtp, INES).status_code == 303
    assert 'href="/me/notices"' not in client.get("/me").text
    history = client.get("/me/notices")
    assert history.status_code == 200 and 'data-testid="notice-history-empty"' in history.text


def test_the_history_needs_a_signed_in_customer(client: TestClient) -> None:
    answer = client.get("/me/notices", follow_redirects=False)
    assert answer.status_code in (302, 303) and "/signin" in answer.headers["location"]
