"""The customer's side of requests through HTTP: making one of each type in both languages, double submissions,
answering an agent's question, cancelling, another customer's request, bad input."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from portal.db import in_transaction, transaction
from portal.models import OutboxMessage, PrivacyRequest, RequestEvent
from portal.requests import workflow
from tests.conftest import csrf_from, step_collaborators
from tests.factories import add_page_views, add_purchases, make_customer, make_store
from tests.web.helpers import sign_in_by_code, sign_in_by_link

EMAIL = "camille@example.com"
LANGUAGES = ("fr", "en")
REFERENCE = re.compile(r"/me/requests/(R-[0-9A-Z]{4}-[0-9A-Z]{4})")


@pytest.fixture
def customer(engine):
    return make_customer(engine, email=EMAIL, first_name="Camille")


@pytest.fixture
def signed_in(client, smtp, customer):
    assert sign_in_by_code(client, smtp, EMAIL).status_code == 303
    return client


def lang(language: str) -> dict[str, str]:
    return {"accept-language": language}


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def form_fields(html: str) -> dict[str, str]:
    key = re.search(r'name="submission_key" value="([^"]+)"', html)
    assert key, "no submission key in the form"
    return {"csrf_token": csrf_from(html), "submission_key": key[1]}


def file_from_page(client, type: str, language: str = "en", **fields: str):  # type: ignore[no-untyped-def]
    page = client.get(f"/me/requests/new/{type}", headers=lang(language))
    assert page.status_code == 200
    data = {**form_fields(page.text), **fields}
    return client.post(f"/me/requests/new/{type}", data=data, headers=lang(language), follow_redirects=False)


def reference_of(response) -> str:  # type: ignore[no-untyped-def]
    assert response.status_code == 303, response.text
    return REFERENCE.search(response.headers["location"])[1]  # type: ignore[index]


def requests_in(engine) -> list[PrivacyRequest]:
    with transaction(engine) as session:
        return list(session.scalars(select(PrivacyRequest).order_by(PrivacyRequest.id)))


def outbox_count(engine, topic: str) -> int:
    with transaction(engine) as session:
        return session.scalar(select(func.count()).select_from(OutboxMessage).where(OutboxMessage.topic == topic))  # type: ignore[return-value]


def agent(app, step: str, reference: str, **kwargs):  # type: ignore[no-untyped-def]
    """What an agent does in the back office, through the same state machine."""
    state = app.state.portal
    action = getattr(workflow, step)
    kwargs.update(step_collaborators(action, composer=state.composer, timezone=state.settings.timezone))
    return in_transaction(state.engine, action, reference=reference, actor="staff:1", now=state.clock(), **kwargs)


# --- Making a request ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_make_a_request_page_offers_every_right(signed_in, language: str) -> None:
    listing = signed_in.get("/me/requests", headers=lang(language))
    assert 'href="/me/requests/new"' in listing.text
    page = signed_in.get("/me/requests/new", headers=lang(language))
    assert page.status_code == 200 and f'<html lang="{language}">' in page.text
    for href in ("/me/requests/new/erasure", "/me/requests/new/objection", "/me/requests/new/restriction"):
        assert f'href="{href}"' in page.text
    assert 'href="/me/requests/new/other"' in page.text and 'href="/me/profile"' in page.text


def test_rectification_starts_from_the_profile_page(signed_in) -> None:
    response = signed_in.get("/me/requests/new/rectification", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/me/profile"


def test_the_erasure_page_says_what_goes_what_stays_and_for_how_long(signed_in, engine, customer) -> None:
    add_purchases(engine, customer, make_store(engine), 3)
    add_page_views(engine, customer, 5)
    english = text_of(signed_in.get("/me/requests/new/erasure", headers=lang("en")).text)
    assert "What we will delete" in english and "What we keep, why, and for how long" in english
    assert "(5 pages)" in english and "Your purchases (3) stay in our accounts, but anonymised" in english
    # The retention comes from the purpose register, not from the template.
    assert "10 years from the close of the financial year (article L123-22 of the French Commercial Code)" in english
    assert "I understand that my data will be erased" in english and "cannot be undone" in english
    assert 'href="/me/download"' in signed_in.get("/me/requests/new/erasure").text  # "keep a copy first"
    french = text_of(signed_in.get("/me/requests/new/erasure", headers=lang("fr")).text)
    assert "10 ans à compter de la clôture de l'exercice comptable" in french.replace("&#39;", "'")


def test_the_objection_page_lists_the_uses_that_stop(signed_in) -> None:
    page = text_of(signed_in.get("/me/requests/new/objection", headers=lang("en")).text)
    assert "Email newsletter" in page and 'href="/me/consents"' in signed_in.get("/me/requests/new/objection").text


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize(
    ("type", "fields"),
    [
        ("erasure", {"confirm": "yes"}),
        ("objection", {"confirm": "yes", "message": "No more catalogues by post, please."}),
        ("restriction", {"confirm": "yes", "ground": "accuracy", "message": "My birth date is wrong."}),
        ("other", {"message": "Do you sell my data to anyone?"}),
    ],
)
def test_each_type_is_filed_and_acknowledged_in_the_page_language(
    signed_in, smtp, engine, language: str, type: str, fields: dict[str, str]
) -> None:
    response = file_from_page(signed_in, type, language, **fields)
    reference = reference_of(response)
    assert response.headers["location"].endswith("?filed=1")
    (filed,) = requests_in(engine)
    assert (filed.reference, filed.type, filed.channel, filed.status) == (reference, type, "web", "received")
    assert filed.details.get("message") == fields.get("message")  # type: ignore[union-attr]
    if type != "other":
        assert filed.details["confirmed"] is True  # type: ignore[index]
    detail = signed_in.get(response.headers["location"], headers=lang(language))
    assert detail.status_code == 200 and f'<html lang="{language}">' in detail.text
    assert reference in detail.text and 'role="status"' in detail.text
    if "message" in fields:
        assert fields["message"] in detail.text
    # The acknowledgement: reference and due date, in the language of the page the customer used.
    ack = smtp.wait_for(EMAIL, count=2)
    assert reference in ack.subject and f'<html lang="{language}">' in ack.html
    assert {"fr": "23 décembre 2026", "en": "23 December 2026"}[language] in ack.text  # received 23 November


def test_submitting_twice_files_one_request(signed_in, engine) -> None:
    page = signed_in.get("/me/requests/new/erasure")
    data = {**form_fields(page.text), "confirm": "yes"}
    first = signed_in.post("/me/requests/new/erasure", data=data, follow_redirects=False)
    again = signed_in.post("/me/requests/new/erasure", data=data, follow_redirects=False)  # double click, reload
    assert reference_of(first) == reference_of(again)
    assert len(requests_in(engine)) == 1 and outbox_count(engine, "request-received") == 1


def test_a_second_erasure_while_one_is_open_leads_to_the_first(signed_in, engine) -> None:
    first = reference_of(file_from_page(signed_in, "erasure", confirm="yes"))
    second = file_from_page(signed_in, "erasure", confirm="yes")  # another tab: another submission key
    assert second.headers["location"] == f"/me/requests/{first}?already=1"
    assert "already have a request of this kind" in signed_in.get(second.headers["location"], headers=lang("en")).text
    assert len(requests_in(engine)) == 1
    # Questions are not limited: each is its own.
    file_from_page(signed_in, "other", message="One")
    file_from_page(signed_in, "other", message="Two")
    assert len(requests_in(engine)) == 3


@pytest.mark.parametrize(
    ("type", "fields", "message"),
    [
        ("erasure", {}, "Tick the box to confirm"),
        ("objection", {"confirm": "maybe"}, "Tick the box to confirm"),
        ("restriction", {"confirm": "yes", "ground": "because"}, "Choose one of the reasons"),
        ("other", {"message": "   "}, "Write your question."),
        ("erasure", {"confirm": "yes", "message": "x" * 2001}, "under 2,000 characters"),
    ],
)
def test_bad_input_shows_the_form_again_with_a_message(signed_in, engine, type, fields, message) -> None:
    page = signed_in.get(f"/me/requests/new/{type}", headers=lang("en"))
    data = {**form_fields(page.text), **fields}
    response = signed_in.post(f"/me/requests/new/{type}", data=data, headers=lang("en"))
    assert response.status_code == 400
    assert message in response.text and 'role="alert"' in response.text and 'aria-invalid="true"' in response.text
    assert data["submission_key"] in response.text  # the retry keeps the key: still one request in the end
    assert requests_in(engine) == []
    fixed = {**data, "confirm": "yes", "message": "Better now.", "ground": ""}
    assert reference_of(signed_in.post(f"/me/requests/new/{type}", data=fixed, follow_redirects=False))


def test_unknown_types_and_signed_out_visitors(client, signed_in) -> None:
    assert signed_in.get("/me/requests/new/access-all-areas").status_code == 404
    page = signed_in.get("/me/requests/new/other")
    assert signed_in.post("/me/requests/new/nothing", data=form_fields(page.text)).status_code == 404
    signed_in.cookies.clear()
    response = signed_in.get("/me/requests/new", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/signin"


def test_a_link_from_an_email_leads_to_the_request_once_signed_in(client, signed_in, smtp) -> None:
    reference = reference_of(file_from_page(signed_in, "other", message="Which stores keep my receipts?"))
    signed_in.cookies.clear()
    # The acknowledgement's link, opened signed out: sign in first, then the request, not the overview.
    asked = client.get(f"/me/requests/{reference}?filed=1", follow_redirects=False)
    assert asked.status_code == 303 and asked.headers["location"] == "/signin"
    landed = sign_in_by_link(client, smtp, EMAIL, count=3)
    assert landed.status_code == 303 and landed.headers["location"] == f"/me/requests/{reference}?filed=1"
    assert reference in client.get(landed.headers["location"]).text
    # Used once: the next sign-in goes to the overview again.
    client.cookies.clear()
    assert sign_in_by_code(client, smtp, EMAIL, count=4).headers["location"] == "/me"


def test_only_a_page_opened_signed_out_is_remembered(client, customer, smtp) -> None:
    token = csrf_from(client.get("/signin").text)
    posted = client.post("/me/requests/new/other", data={"message": "x", "csrf_token": token}, follow_redirects=False)
    assert posted.status_code == 303 and posted.headers["location"] == "/signin"
    assert sign_in_by_code(client, smtp, EMAIL).headers["location"] == "/me"  # not back to a form's POST


# --- Following a request ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_customer_answers_the_agents_question(app, signed_in, smtp, engine, language: str) -> None:
    reference = reference_of(file_from_page(signed_in, "erasure", language, confirm="yes"))
    agent(app, "start", reference)
    agent(app, "add_note", reference, note="Internal: second account found.")
    agent(app, "ask_customer", reference, message="Is camille.d@example.org also yours?")
    question = smtp.wait_for(EMAIL, count=3)
    assert reference in question.subject and "Is camille.d@example.org also yours?" in question.text
    assert f"/me/requests/{reference}" in question.text

    page = signed_in.get(f"/me/requests/{reference}", headers=lang(language))
    assert "Is camille.d@example.org also yours?" in page.text and f"/me/requests/{reference}/reply" in page.text
    assert "Internal: second account found." not in page.text  # notes stay inside
    empty = signed_in.post(
        f"/me/requests/{reference}/reply",
        data={"message": " ", "csrf_token": csrf_from(page.text)},
        headers=lang(language),
    )
    assert empty.status_code == 400 and 'aria-invalid="true"' in empty.text

    sent = signed_in.post(
        f"/me/requests/{reference}/reply",
        data={"message": "Yes, both are mine.", "csrf_token": csrf_from(page.text)},
        follow_redirects=False,
    )
    assert sent.status_code == 303 and sent.headers["location"] == f"/me/requests/{reference}?answered=1"
    after = signed_in.get(sent.headers["location"], headers=lang(language))
    assert "Yes, both are mine." in after.text and f"/me/requests/{reference}/reply" not in after.text
    (request,) = requests_in(engine)
    assert request.status == "in_progress"
    again = signed_in.post(
        f"/me/requests/{reference}/reply", data={"message": "Again", "csrf_token": csrf_from(page.text)}
    )
    assert again.status_code == 409 and 'role="alert"' in again.text


def test_the_customer_cancels_a_request_not_yet_started(app, signed_in, smtp, engine) -> None:
    reference = reference_of(file_from_page(signed_in, "objection", confirm="yes"))
    detail = signed_in.get(f"/me/requests/{reference}", headers=lang("en"))
    assert f'href="/me/requests/{reference}/cancel"' in detail.text
    confirm = signed_in.get(f"/me/requests/{reference}/cancel", headers=lang("en"))
    assert confirm.status_code == 200 and "Cancel your request?" in confirm.text
    token = csrf_from(confirm.text)
    done = signed_in.post(
        f"/me/requests/{reference}/cancel", data={"csrf_token": token}, headers=lang("en"), follow_redirects=False
    )
    assert done.headers["location"] == f"/me/requests/{reference}?cancelled=1"
    twice = signed_in.post(f"/me/requests/{reference}/cancel", data={"csrf_token": token}, follow_redirects=False)
    assert twice.headers["location"] == f"/me/requests/{reference}?cancelled=1"  # a double click is harmless
    (request,) = requests_in(engine)
    assert request.status == "cancelled" and request.closed_at is not None
    cancelled = smtp.wait_for(EMAIL, count=3)
    # She prefers French but cancelled from an English page: the confirmation speaks the page's language.
    assert reference in cancelled.subject and "cancelled" in cancelled.subject
    with transaction(engine) as session:
        kinds = session.scalars(select(RequestEvent.kind).where(RequestEvent.request_id == request.id)).all()
    assert kinds == ["received", "cancelled"]


def test_a_started_request_can_no_longer_be_cancelled(app, signed_in, engine) -> None:
    reference = reference_of(file_from_page(signed_in, "restriction", confirm="yes"))
    agent(app, "start", reference)
    detail = signed_in.get(f"/me/requests/{reference}", headers=lang("en"))
    assert f"/me/requests/{reference}/cancel" not in detail.text
    assert signed_in.get(f"/me/requests/{reference}/cancel", follow_redirects=False).status_code == 303
    refused = signed_in.post(
        f"/me/requests/{reference}/cancel", data={"csrf_token": csrf_from(detail.text)}, headers=lang("en")
    )
    assert refused.status_code == 409 and "already started working on it" in refused.text
    assert requests_in(engine)[0].status == "in_progress"


def test_another_customers_request_is_not_found(app, client, smtp, engine, customer) -> None:
    make_customer(engine, email="sam@example.com")
    assert sign_in_by_code(client, smtp, EMAIL).status_code == 303
    reference = reference_of(file_from_page(client, "erasure", confirm="yes"))
    agent(app, "ask_customer", reference, message="Which store?")
    client.cookies.clear()
    assert sign_in_by_code(client, smtp, "sam@example.com").status_code == 303
    page = client.get("/me/requests")
    token = csrf_from(page.text)
    assert reference not in page.text
    assert client.get(f"/me/requests/{reference}").status_code == 404
    assert client.get(f"/me/requests/{reference}/cancel").status_code == 404
    assert client.post(f"/me/requests/{reference}/cancel", data={"csrf_token": token}).status_code == 404
    reply = client.post(f"/me/requests/{reference}/reply", data={"message": "Hi", "csrf_token": token})
    assert reply.status_code == 404
    assert requests_in(engine)[0].status == "awaiting_customer"
    assert client.get("/me/requests/not-a-reference").status_code == 404


def test_the_timeline_shows_what_the_customer_may_see(app, signed_in, engine) -> None:
    reference = reference_of(file_from_page(signed_in, "other", message="Where does my data come from?"))
    agent(app, "assign", reference, staff_id=None)
    agent(app, "extend", reference, months=1, reason="We are asking our stores.")
    agent(app, "complete", reference, outcome="From your loyalty card, created in our Lyon store.")
    page = text_of(signed_in.get(f"/me/requests/{reference}", headers=lang("en")).text)
    assert "Request received" in page and "Deadline extended" in page and "We are asking our stores." in page
    assert "Request completed" in page and "From your loyalty card, created in our Lyon store." in page
    assert "Assigned" not in page and "(extended)" in page


def test_the_portal_s_own_outcome_reads_in_the_reader_s_language_and_a_person_s_words_as_written(
    app, signed_in, smtp, engine
) -> None:
    from portal.requests import restriction

    reference = reference_of(file_from_page(signed_in, "restriction", confirm="yes"))
    state = app.state.portal
    in_transaction(
        engine, restriction.apply_restriction, reference=reference, actor="staff:1", now=state.clock(),
        composer=state.composer,
    )  # fmt: skip
    (request,) = requests_in(engine)
    assert request.status == "completed" and request.outcome == "system:restricted"  # a code, not a sentence
    english = text_of(signed_in.get(f"/me/requests/{reference}", headers=lang("en")).text)
    french = text_of(signed_in.get(f"/me/requests/{reference}", headers=lang("fr")).text)
    assert "The use of your data is restricted" in english and "system:" not in english
    assert "est limitée" in french and "The use of your data" not in french
    # The email went out in her language (French, she acted from no page), with the outcome in French too.
    email = smtp.wait_for(EMAIL, count=3)
    assert "est limitée" in email.text and "system:" not in email.text


def test_a_staff_member_s_message_is_shown_as_written_and_labelled(app, signed_in) -> None:
    reference = reference_of(file_from_page(signed_in, "other", message="Where are my receipts?"))
    agent(app, "start", reference)
    agent(app, "message_customer", reference, message="Nous regardons cela.")
    page = text_of(signed_in.get(f"/me/requests/{reference}", headers=lang("en")).text)
    assert "Our team's words: Nous regardons cela." in page and "Your words: Where are my receipts?" not in page


# --- Limits: a customer's filings each email them and land in a queue -----------------------------------------


def test_the_same_question_again_answers_with_the_open_one(signed_in, engine) -> None:
    first = reference_of(file_from_page(signed_in, "other", message="Where is my loyalty data?"))
    again = file_from_page(signed_in, "other", message="  where is my LOYALTY data?  ")  # a new form, same words
    assert again.status_code == 303 and again.headers["location"] == f"/me/requests/{first}?already=1"
    with transaction(engine) as session:
        assert session.scalar(select(func.count()).select_from(PrivacyRequest)) == 1


def test_at_most_three_open_questions_then_the_list_explains(signed_in, engine) -> None:
    for n in range(3):
        reference_of(file_from_page(signed_in, "other", message=f"Question {n}"))
    fourth = file_from_page(signed_in, "other", message="Question 4")
    assert fourth.headers["location"] == "/me/requests?too_many_open=1"
    page = signed_in.get(fourth.headers["location"], headers=lang("fr"))
    assert "Vous avez déjà 3 demandes de ce type en cours" in page.text
    with transaction(engine) as session:
        assert session.scalar(select(func.count()).select_from(PrivacyRequest)) == 3


def test_ten_requests_a_day_then_a_pause_in_the_customers_language(signed_in, engine) -> None:
    """A loop that files, cancels and files again is stopped at ten a day, each of which sent an email."""
    for n in range(10):
        reference = reference_of(file_from_page(signed_in, "other", message=f"Question {n}"))
        with transaction(engine) as session:
            session.execute(
                PrivacyRequest.__table__.update()
                .where(PrivacyRequest.__table__.c.reference == reference)
                .values(status="cancelled")
            )
    eleventh = file_from_page(signed_in, "other", language="fr", message="Question 11")
    assert eleventh.status_code == 429 and int(eleventh.headers["retry-after"]) > 0
    assert "Trop de tentatives" in eleventh.text
    with transaction(engine) as session:
        assert session.scalar(select(func.count()).select_from(PrivacyRequest)) == 10
