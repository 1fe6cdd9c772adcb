"""The back office: the request queue, one request and its actions, reports and audit, for each role and language."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest
from sqlalchemy import Engine, func, select
from starlette.testclient import TestClient

from portal.db import transaction
from portal.models import (
    AuditEvent,
    ConsentEvent,
    Customer,
    PrivacyRequest,
    ProfileChange,
    RequestEvent,
    StaffUser,
)
from tests.conftest import Clock, SMTPServer, csrf_from
from tests.factories import make_customer, make_store
from tests.staff_helpers import make_staff, sign_in_staff
from tests.unit.backoffice.test_queue import file

Account = tuple[StaffUser, str, str]


@pytest.fixture
def agent(engine: Engine) -> Account:
    return make_staff(engine, role="agent", name="Alice Agent")


def signed_in(client: TestClient, clock: Clock, account: Account) -> TestClient:
    staff, password, secret = account
    sign_in_staff(client, staff.email, password, secret, clock)
    return client


def request_row(engine: Engine, reference: str) -> PrivacyRequest:
    with transaction(engine) as session:
        return session.scalars(select(PrivacyRequest).where(PrivacyRequest.reference == reference)).one()


def post_action(client: TestClient, reference: str, action: str, **data: str):  # type: ignore[no-untyped-def]
    page = client.get(f"/staff/requests/{reference}")
    version = re.search(r'name="version" value="(\d+)"', page.text)
    values = {"csrf_token": csrf_from(page.text), "version": version.group(1) if version else "", **data}
    return client.post(f"/staff/requests/{reference}/{action}", data=values, follow_redirects=False)


# --- Roles ---------------------------------------------------------------------------------------------------------


def test_signed_out_staff_pages_send_to_sign_in(client: TestClient) -> None:
    for path in ("/staff/requests", "/staff/requests/R-AAAA-BBBB", "/staff/reports", "/staff/audit"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith("/staff/sign-in"), path


def test_a_store_account_cannot_open_the_queue_and_an_agent_not_the_dpo_pages(
    client: TestClient, engine: Engine, clock: Clock
) -> None:
    store = make_store(engine)
    signed_in(client, clock, make_staff(engine, role="store", store_id=store.id))
    assert client.get("/staff/requests").status_code == 403
    reference = file(engine, received_at=clock() - timedelta(days=1))
    assert client.get(f"/staff/requests/{reference}").status_code == 403
    client.cookies.clear()
    signed_in(client, clock, make_staff(engine, role="agent"))
    assert client.get("/staff/requests").status_code == 200
    for path in ("/staff/reports", "/staff/reports.csv", "/staff/audit", "/staff/audit.csv"):
        assert client.get(path).status_code == 403, path


# --- The queue -----------------------------------------------------------------------------------------------------


def test_queue_lists_open_requests_by_due_date_with_days_left_in_words(
    client: TestClient, engine: Engine, clock: Clock, agent
) -> None:
    now = clock()
    customer = make_customer(engine, email="camille.durand@example.com")
    overdue = file(engine, received_at=now - timedelta(days=40), customer_id=customer.id, type="erasure")
    soon = file(engine, received_at=now - timedelta(days=27))
    later = file(engine, received_at=now - timedelta(days=1))
    file(engine, received_at=now - timedelta(days=3), status="completed", closed_at=now)
    signed_in(client, clock, agent)
    page = client.get("/staff/requests", headers={"accept-language": "en"})
    assert page.status_code == 200
    text = page.text
    assert text.index(overdue) < text.index(soon) < text.index(later)
    assert "c•••••@example.com" in text and "camille.durand@example.com" not in text
    assert re.search(r"⚠</span> Overdue by \d+ days", text)
    assert re.search(r"◷</span> \d days? left", text)
    assert "Erasure" in text
    french = client.get("/staff/requests", headers={"accept-language": "fr"})
    assert french.status_code == 200 and '<html lang="fr">' in french.text and overdue in french.text


def test_filters_stay_in_the_url_and_htmx_gets_the_results_only(
    client: TestClient, engine: Engine, clock: Clock, agent
) -> None:
    now = clock()
    erasure = file(engine, received_at=now - timedelta(days=2), type="erasure")
    access = file(engine, received_at=now - timedelta(days=2), type="access")
    signed_in(client, clock, agent)
    page = client.get("/staff/requests?type=erasure")
    assert erasure in page.text and access not in page.text
    assert '<option value="erasure" selected>' in page.text
    fragment = client.get("/staff/requests?type=erasure", headers={"hx-request": "true"})
    assert erasure in fragment.text and "<html" not in fragment.text and "<form" in fragment.text  # row forms only
    assert fragment.headers["vary"] == "HX-Request"


def test_search_by_reference_email_or_the_start_of_them(
    client: TestClient, engine: Engine, clock: Clock, agent: Account
) -> None:
    customer = make_customer(engine, email="lea.martin@example.com", last_name="Martin")
    theirs = file(engine, received_at=clock() - timedelta(days=2), customer_id=customer.id)
    other = file(engine, received_at=clock() - timedelta(days=2))
    signed_in(client, clock, agent)
    by_email = client.get("/staff/requests", params={"q": "LEA.MARTIN@example.com"})
    assert theirs in by_email.text and other not in by_email.text
    by_reference = client.get("/staff/requests", params={"q": other.lower()})
    assert other in by_reference.text and theirs not in by_reference.text
    by_part = client.get("/staff/requests", params={"q": "martin"})
    assert by_part.status_code == 200 and theirs in by_part.text and other not in by_part.text


def test_a_search_too_short_is_explained_and_the_list_still_shown(
    client: TestClient, engine: Engine, clock: Clock, agent: Account
) -> None:
    reference = file(engine, received_at=clock() - timedelta(days=2))
    signed_in(client, clock, agent)
    response = client.get("/staff/requests", params={"q": "em"}, headers={"accept-language": "en"})
    assert response.status_code == 400 and reference in response.text
    assert "Type at least 3 characters of a reference, an email address or a name." in response.text
    french = client.get("/staff/requests", params={"q": "em"}, headers={"accept-language": "fr"})
    assert "Saisissez au moins 3 caractères" in french.text


@pytest.mark.parametrize(
    "query", ["status=sleeping", "type=%3Cscript%3E", "store=abc", "assignee=everyone", "due=soonish", "q=ca"]
)
def test_bad_filter_values_answer_400_with_a_message(
    client: TestClient, engine: Engine, clock: Clock, agent: Account, query: str
) -> None:
    reference = file(engine, received_at=clock() - timedelta(days=2))
    signed_in(client, clock, agent)
    response = client.get(f"/staff/requests?{query}", headers={"accept-language": "en"})
    assert response.status_code == 400
    assert "were not understood and were left out" in response.text
    assert reference in response.text  # the other filters still apply; the bad one is ignored
    assert "<script>" not in response.text


def test_malformed_page_cursor_shows_the_first_page(
    client: TestClient, engine: Engine, clock: Clock, agent: Account
) -> None:
    reference = file(engine, received_at=clock() - timedelta(days=2))
    signed_in(client, clock, agent)
    response = client.get("/staff/requests?after=not-a-cursor")
    assert response.status_code == 200 and reference in response.text


def test_queue_pages_with_next_links(client: TestClient, engine: Engine, clock: Clock, agent: Account) -> None:
    made = [file(engine, received_at=clock() - timedelta(days=1, hours=i)) for i in range(30)]
    signed_in(client, clock, agent)
    first = client.get("/staff/requests?type=access")
    next_link = re.search(r'href="(/staff/requests\?[^"]*after=[^"]+)"', first.text)
    assert next_link, first.text
    second = client.get(next_link.group(1).replace("&amp;", "&"))
    shown = {r for r in made if r in first.text} | {r for r in made if r in second.text}
    assert shown == set(made)
    assert "type=access" in next_link.group(1)


def test_assign_and_start_from_the_queue_with_htmx_and_without(
    client: TestClient, engine: Engine, clock: Clock, agent
) -> None:
    reference = file(engine, received_at=clock() - timedelta(days=2))
    signed_in(client, clock, agent)
    page = client.get("/staff/requests")
    token = csrf_from(page.text)
    row = client.post(
        f"/staff/requests/{reference}/assign",
        data={"csrf_token": token, "version": "1", "assignee": "me", "from": "queue", "back": "/staff/requests"},
        headers={"hx-request": "true"},
    )
    assert row.status_code == 200 and row.text.lstrip().startswith("<tr") and "Alice Agent" in row.text
    assert request_row(engine, reference).assignee_id == agent[0].id
    # Without JavaScript: a redirect back to the queue as it was filtered.
    response = client.post(
        f"/staff/requests/{reference}/start",
        data={"csrf_token": token, "version": "2", "from": "queue", "back": "/staff/requests?assignee=me"},
        follow_redirects=False,
    )
    assert response.status_code == 303 and response.headers["location"] == "/staff/requests?assignee=me"
    assert request_row(engine, reference).status == "in_progress"
    # The timeline names the assignee, not their reference.
    timeline = client.get(f"/staff/requests/{reference}").text.split('class="timeline', 1)[1]
    assert "Alice Agent" in timeline and f"staff:{agent[0].id}" not in timeline


def test_a_stale_version_is_refused_with_409_and_a_clear_message(
    client: TestClient, engine: Engine, clock: Clock, agent
) -> None:
    reference = file(engine, received_at=clock() - timedelta(days=2))
    signed_in(client, clock, agent)
    page = client.get(f"/staff/requests/{reference}", headers={"accept-language": "en"})
    token = csrf_from(page.text)
    # Another agent starts it meanwhile (version 1 → 2).
    assert (
        client.post(f"/staff/requests/{reference}/start", data={"csrf_token": token, "version": "1"}).status_code == 200
    )
    stale = client.post(
        f"/staff/requests/{reference}/note",
        data={"csrf_token": token, "version": "1", "note": "Called the customer"},
        headers={"accept-language": "en"},
    )
    assert stale.status_code == 409
    assert "Someone else changed this request meanwhile" in stale.text
    with transaction(engine) as session:
        kinds = session.scalars(select(RequestEvent.kind).join(PrivacyRequest)).all()
    assert "note" not in kinds
    # In the queue, htmx gets the row back, redrawn with the message (htmx does not swap a 409).
    row = client.post(
        f"/staff/requests/{reference}/assign",
        data={"csrf_token": token, "version": "1", "assignee": "me", "from": "queue"},
        headers={"hx-request": "true", "accept-language": "en"},
    )
    assert row.status_code == 200 and "Someone else changed this request meanwhile" in row.text


# --- One request ---------------------------------------------------------------------------------------------------


def test_opening_a_request_is_audited_and_shows_the_customer_and_internal_notes(
    client: TestClient, engine: Engine, clock: Clock, agent
) -> None:
    customer = make_customer(engine, email="jo@example.com", first_name="Joséphine")
    reference = file(engine, received_at=clock() - timedelta(days=2), customer_id=customer.id)
    signed_in(client, clock, agent)
    assert post_action(client, reference, "note", note="Called back, no answer").status_code == 303
    page = client.get(f"/staff/requests/{reference}", headers={"accept-language": "en"})
    assert "Joséphine" in page.text and "jo@example.com" in page.text
    assert "Called back, no answer" in page.text and "internal, not shown to the customer" in page.text
    with transaction(engine) as session:
        views = session.scalars(select(AuditEvent).where(AuditEvent.action == "customer.viewed")).all()
    assert views and views[-1].actor == f"staff:{agent[0].id}" and views[-1].target == f"request:{reference}"
    assert "jo@example.com" not in str(views[-1].detail)


def test_unknown_reference_is_404(client: TestClient, engine: Engine, clock: Clock, agent: Account) -> None:
    signed_in(client, clock, agent)
    assert client.get("/staff/requests/R-ZZZZ-ZZZZ").status_code == 404
    assert client.get("/staff/requests/nonsense").status_code == 404


def test_message_question_extend_complete_with_emails(
    client: TestClient, engine: Engine, clock: Clock, agent: Account, smtp: SMTPServer
) -> None:
    customer = make_customer(engine, email="sam@example.com", preferred_language="en")
    reference = file(engine, received_at=clock() - timedelta(days=2), customer_id=customer.id)
    signed_in(client, clock, agent)
    assert post_action(client, reference, "message", message="We are looking into it.").status_code == 303
    assert post_action(client, reference, "question", message="Which store?").status_code == 303
    assert request_row(engine, reference).status == "awaiting_customer"
    assert post_action(client, reference, "start").status_code == 303
    response = post_action(client, reference, "extend", months="2", reason="Many records to check.")
    assert response.status_code == 303 and response.headers["location"].endswith("done=extended")
    assert request_row(engine, reference).extended_due_at is not None
    again = post_action(client, reference, "extend", months="1", reason="Again")
    assert again.status_code == 409  # once only
    assert post_action(client, reference, "complete", outcome="").status_code == 400  # the outcome is required
    done = post_action(client, reference, "complete", outcome="Here is everything we hold.")
    assert done.status_code == 303
    page = client.get(done.headers["location"], headers={"accept-language": "en"})
    assert "The request is completed" in page.text
    assert request_row(engine, reference).status == "completed"
    smtp.wait_for("sam@example.com", count=4)


def test_bad_extension_months_is_400(client: TestClient, engine: Engine, clock: Clock, agent: Account) -> None:
    reference = file(engine, received_at=clock() - timedelta(days=2))
    signed_in(client, clock, agent)
    assert post_action(client, reference, "extend", months="7", reason="Because").status_code == 400
    assert post_action(client, reference, "extend", months="x", reason="Because").status_code == 400


def test_reject_with_reason(client: TestClient, engine: Engine, clock: Clock, agent: Account, smtp: SMTPServer) -> None:
    customer = make_customer(engine, email="rej@example.com", preferred_language="fr")
    reference = file(engine, received_at=clock() - timedelta(days=2), customer_id=customer.id, type="other")
    signed_in(client, clock, agent)
    assert post_action(client, reference, "reject", reason="").status_code == 400
    assert post_action(client, reference, "reject", reason="Demande manifestement excessive.").status_code == 303
    assert request_row(engine, reference).status == "rejected"
    assert "CNIL" in smtp.wait_for("rej@example.com").text
    # Closed: nothing more can be done but a note.
    assert post_action(client, reference, "complete", outcome="x").status_code == 409


def test_apply_a_rectification(client: TestClient, engine: Engine, clock: Clock, agent: Account) -> None:
    customer = make_customer(engine, email="rect@example.com", last_name="Durant")
    reference = file(
        engine,
        received_at=clock() - timedelta(days=2),
        customer_id=customer.id,
        type="rectification",
        details={"field": "last_name", "proposed_value": "Durand", "comment": ""},
    )
    signed_in(client, clock, agent)
    page = client.get(f"/staff/requests/{reference}")
    assert 'name="last_name" type="text"\n             value="Durand"' in page.text
    bad = post_action(client, reference, "rectify", last_name="D4rand!", outcome="Corrected.")
    assert bad.status_code == 400
    response = post_action(client, reference, "rectify", last_name="Durand", outcome="Your name is corrected.")
    assert response.status_code == 303
    with transaction(engine) as session:
        assert session.get(Customer, customer.id).last_name == "Durand"
        change = session.scalars(select(ProfileChange).where(ProfileChange.customer_id == customer.id)).one()
        assert change.channel == "support" and change.actor == f"staff:{agent[0].id}"
    assert request_row(engine, reference).status == "completed"


def test_erasure_preview_then_execute(
    client: TestClient, engine: Engine, clock: Clock, agent: Account, smtp: SMTPServer
) -> None:
    customer = make_customer(engine, email="gone@example.com")
    reference = file(engine, received_at=clock() - timedelta(days=2), customer_id=customer.id, type="erasure")
    signed_in(client, clock, agent)
    preview = client.get(f"/staff/requests/{reference}/erasure", headers={"accept-language": "en"})
    assert preview.status_code == 200 and "What the erasure will do" in preview.text
    assert "Deleted" in preview.text and "Kept" in preview.text
    unconfirmed = post_action(client, reference, "erase")
    assert unconfirmed.status_code == 400
    response = post_action(client, reference, "erase", confirm="yes")
    assert response.status_code == 303
    with transaction(engine) as session:
        gone = session.get(Customer, customer.id)
        assert gone.erased_at is not None and gone.email is None
    assert request_row(engine, reference).status == "completed"
    smtp.wait_for("gone@example.com")
    page = client.get(f"/staff/requests/{reference}", headers={"accept-language": "en"})
    assert "nothing is held about this person any more" in page.text


def test_restriction_and_objection(client: TestClient, engine: Engine, clock: Clock, agent: Account) -> None:
    customer = make_customer(engine, email="limits@example.com")
    with transaction(engine) as session:
        session.add(
            ConsentEvent(
                customer_id=customer.id,
                purpose="email_newsletter",
                granted=True,
                occurred_at=clock() - timedelta(days=30),
                channel="web",
                actor="customer",
                policy_version="2026-01",
            )
        )
    restriction = file(engine, received_at=clock() - timedelta(days=2), customer_id=customer.id, type="restriction")
    objection = file(engine, received_at=clock() - timedelta(days=2), customer_id=customer.id, type="objection")
    signed_in(client, clock, agent)
    assert post_action(client, restriction, "restrict").status_code == 303
    with transaction(engine) as session:
        assert session.get(Customer, customer.id).restricted_at is not None
    assert request_row(engine, restriction).status == "completed"
    assert post_action(client, objection, "objection").status_code == 303
    assert request_row(engine, objection).status == "completed"
    with transaction(engine) as session:
        latest = session.scalars(
            select(ConsentEvent.granted).where(ConsentEvent.customer_id == customer.id).order_by(ConsentEvent.id.desc())
        ).first()
    assert latest is False


def test_send_a_download_link_for_an_access_request(
    client: TestClient, engine: Engine, clock: Clock, agent: Account, smtp: SMTPServer
) -> None:
    customer = make_customer(engine, email="copy@example.com", preferred_language="en")
    reference = file(engine, received_at=clock() - timedelta(days=2), customer_id=customer.id, type="portability")
    signed_in(client, clock, agent)
    response = post_action(client, reference, "download-link")
    assert response.status_code == 303 and response.headers["location"].endswith("done=link_sent")
    assert "/me/download/link?token=" in smtp.wait_for("copy@example.com").text
    assert request_row(engine, reference).version == 2
    erasure = file(engine, received_at=clock() - timedelta(days=2), customer_id=customer.id, type="erasure")
    assert post_action(client, erasure, "download-link").status_code == 409


def test_restriction_action_refused_on_an_access_request(
    client: TestClient, engine: Engine, clock: Clock, agent
) -> None:
    customer = make_customer(engine)
    reference = file(engine, received_at=clock() - timedelta(days=2), customer_id=customer.id, type="access")
    signed_in(client, clock, agent)
    assert post_action(client, reference, "restrict").status_code == 409
    assert post_action(client, reference, "objection").status_code == 409


def test_csrf_is_required_for_actions(client: TestClient, engine: Engine, clock: Clock, agent: Account) -> None:
    reference = file(engine, received_at=clock() - timedelta(days=2))
    signed_in(client, clock, agent)
    response = client.post(f"/staff/requests/{reference}/start", data={"version": "1"})
    assert response.status_code == 403
    assert request_row(engine, reference).status == "received"


# --- DPO -----------------------------------------------------------------------------------------------------------


def test_dpo_reports_and_csv_in_both_languages(client: TestClient, engine: Engine, clock: Clock) -> None:
    now = clock()
    file(engine, received_at=now - timedelta(days=40), type="erasure")
    file(engine, received_at=now - timedelta(days=20), status="completed", closed_at=now - timedelta(days=10))
    signed_in(client, clock, make_staff(engine, role="dpo"))
    english = client.get("/staff/reports", headers={"accept-language": "en"})
    assert english.status_code == 200 and "Time to answer" in english.text and "1 overdue" in english.text
    french = client.get("/staff/reports", headers={"accept-language": "fr"})
    assert french.status_code == 200 and '<html lang="fr">' in french.text
    bad = client.get("/staff/reports?from=2026-13", headers={"accept-language": "en"})
    assert bad.status_code == 400 and "YYYY-MM" in bad.text
    assert client.get("/staff/reports.csv?to=nope").status_code == 400
    exported = client.get("/staff/reports.csv?from=2026-01&to=2026-11")
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(exported.text)))
    assert ["overdue", "", "", "1", "", "", "", ""] in rows
    assert any(r[0] == "month" and r[1] == "2026-11" for r in rows)


def test_dpo_audit_trail_filters_and_csv(client: TestClient, engine: Engine, clock: Clock, agent: Account) -> None:
    reference = file(engine, received_at=clock() - timedelta(days=2))
    signed_in(client, clock, agent)
    client.get(f"/staff/requests/{reference}")
    client.cookies.clear()
    signed_in(client, clock, make_staff(engine, role="dpo"))
    page = client.get("/staff/audit", params={"target": reference.lower()}, headers={"accept-language": "en"})
    assert page.status_code == 200
    assert "request.received" in page.text and f"staff:{agent[0].id}" in page.text
    only_agent = client.get("/staff/audit", params={"actor": f"staff:{agent[0].id}"})
    assert "request.received" not in only_agent.text
    bad = client.get("/staff/audit", params={"start": "yesterday"}, headers={"accept-language": "en"})
    assert bad.status_code == 400 and "YYYY-MM-DD" in bad.text
    exported = client.get("/staff/audit.csv", params={"target": reference})
    rows = list(csv.reader(io.StringIO(exported.text)))
    assert rows[0][:4] == ["id", "occurred_at", "actor", "action"] and {r[3] for r in rows[1:]} >= {"request.received"}
    with transaction(engine) as session:
        assert session.scalar(select(func.count()).where(AuditEvent.action == "audit.exported")) == 1


def test_the_audit_trail_names_people_and_events_and_filters_by_name(
    client: TestClient, engine: Engine, clock: Clock, agent: Account
) -> None:
    customer = make_customer(engine)
    reference = file(engine, received_at=clock() - timedelta(days=2), customer_id=customer.id)
    signed_in(client, clock, agent)
    client.get(f"/staff/requests/{reference}")  # audited: customer.viewed by Alice Agent
    client.cookies.clear()
    signed_in(client, clock, make_staff(engine, role="dpo", name="Dominique Dpo"))
    english = client.get("/staff/audit", params={"target": reference}, headers={"accept-language": "en"}).text
    assert "Alice Agent" in english and "Request received" in english
    french = client.get("/staff/audit", params={"target": reference}, headers={"accept-language": "fr"}).text
    assert "Alice Agent" in french and "Demande reçue" in french
    for typed in ("alice", "ALICE AG", "Agent"):  # part of the name, any case
        by_name = client.get("/staff/audit", params={"actor": typed}, headers={"accept-language": "en"})
        assert by_name.status_code == 200, typed
        rows = re.findall(r"<tr>.*?</tr>", by_name.text.split("<tbody>", 1)[1], flags=re.S)
        assert rows and all("Alice Agent" in row for row in rows), typed
    nobody = client.get("/staff/audit", params={"actor": "Zoé"}, headers={"accept-language": "en"})
    assert nobody.status_code == 200 and "No event matches these filters." in nobody.text
    assert client.get("/staff/audit", params={"actor": "a%_<b>"}).status_code == 400


def test_the_dpo_downloads_a_customers_consent_proof_and_an_agent_cannot(
    client: TestClient, engine: Engine, clock: Clock, agent: Account
) -> None:
    from portal.consent import ledger
    from portal.consent.register import load_register
    from portal.settings import PROJECT_ROOT

    customer = make_customer(engine)
    register = load_register(PROJECT_ROOT / "portal" / "config" / "purposes.toml")
    with transaction(engine) as session:
        ledger.record_consent(
            session, register=register, customer_id=customer.id, purpose="sms_offers", granted=True,
            channel="store", actor="staff:1", now=clock() - timedelta(days=2), locale="fr",
        )  # fmt: skip
    reference = file(engine, received_at=clock() - timedelta(days=1), customer_id=customer.id)

    signed_in(client, clock, agent)
    assert client.get(f"/staff/requests/{reference}/consent-proof.csv").status_code == 403
    client.cookies.clear()

    signed_in(client, clock, make_staff(engine, role="dpo", name="Dana DPO"))
    assert "consent-proof.csv" in client.get(f"/staff/requests/{reference}").text
    response = client.get(f"/staff/requests/{reference}/consent-proof.csv")
    assert response.status_code == 200
    assert response.headers["content-disposition"].startswith("attachment")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [(r["purpose"], r["granted"], r["channel"]) for r in rows] == [("sms_offers", "granted", "store")]
    assert rows[0]["wording"] == register.by_code["sms_offers"].consent_wording("fr")
    with transaction(engine) as session:
        actions = session.scalars(select(AuditEvent.action)).all()
    assert "consent_proof.exported" in actions


def test_in_french_the_status_received_is_not_the_date_label(
    client: TestClient, engine: Engine, clock: Clock, agent: Account
) -> None:
    reference = file(engine, received_at=clock() - timedelta(days=2))
    signed_in(client, clock, agent)
    queue_page = client.get("/staff/requests", headers={"accept-language": "fr"}).text
    assert re.search(r'<option value="received"[^>]*>\s*Reçue\s*</option>', queue_page)  # the status filter
    assert "Reçue" in re.sub(r"<select.*?</select>", "", queue_page, flags=re.S)  # the row's status
    detail = client.get(f"/staff/requests/{reference}", headers={"accept-language": "fr"}).text
    assert "Reçu le" in detail  # the date label keeps its own wording
    assert "Reçue" in detail  # the status, and the timeline's first step


def test_with_dpo_approval_an_erasure_needs_a_second_person(
    engine: Engine, settings, clock: Clock, agent: Account, smtp: SMTPServer
) -> None:
    """PORTAL_ERASURE_APPROVAL=dpo: the agent proposes, a DPO other than the proposer approves (or declines); the
    customer sees nothing of the internal wait."""
    import dataclasses

    from portal.app import create_app

    app = create_app(dataclasses.replace(settings, erasure_approval="dpo"), clock=clock)
    customer = make_customer(engine, email="gone@example.com")
    reference = file(engine, received_at=clock() - timedelta(days=2), customer_id=customer.id, type="erasure")
    dpo_one, dpo_two = make_staff(engine, role="dpo", name="Dora DPO"), make_staff(engine, role="dpo", name="Dan DPO")
    en = {"accept-language": "en"}
    with TestClient(app, base_url="http://testserver") as client:
        signed_in(client, clock, agent)
        client.get(f"/staff/requests/{reference}/erasure")
        assert post_action(client, reference, "erase", confirm="yes").headers["location"].endswith("erasure_proposed")
        page = client.get(f"/staff/requests/{reference}/erasure", headers=en)
        assert "Alice Agent proposed this erasure" in page.text and "Approve and erase" not in page.text
        refused = post_action(client, reference, "erase", confirm="yes")  # the agent cannot push it through
        assert refused.status_code == 409
        client.post("/staff/sign-out", data={"csrf_token": csrf_from(client.get("/staff").text)})

        signed_in(client, clock, dpo_one)
        declined = post_action(client, reference, "decline-erasure", note="Identity not checked yet")
        assert declined.status_code == 303
        assert post_action(client, reference, "erase", confirm="yes").status_code == 303  # Dora proposes again
        own = post_action(client, reference, "erase", confirm="yes")
        assert own.status_code == 409 and "autre DPO doit" in own.text
        client.post("/staff/sign-out", data={"csrf_token": csrf_from(client.get("/staff").text)})
        with transaction(engine) as session:
            assert session.get(Customer, customer.id).erased_at is None

        signed_in(client, clock, dpo_two)
        page = client.get(f"/staff/requests/{reference}/erasure", headers=en)
        assert "Dora DPO proposed this erasure" in page.text and "Approve and erase" in page.text
        assert post_action(client, reference, "erase", confirm="yes").headers["location"].endswith("done=erased")
    with transaction(engine) as session:
        assert session.get(Customer, customer.id).erased_at is not None
        steps = session.scalars(
            select(RequestEvent.kind).join(PrivacyRequest).where(PrivacyRequest.reference == reference)
        ).all()
        hidden = session.scalars(
            select(RequestEvent.kind)
            .join(PrivacyRequest)
            .where(PrivacyRequest.reference == reference, RequestEvent.visible_to_customer.is_(False))
        ).all()
    assert steps.count("erasure_proposed") == 2 and "erasure_declined" in steps and steps[-1] == "completed"
    assert set(hidden) >= {"erasure_proposed", "erasure_declined"}
