"""Control characters (a NUL byte first) are refused at every input boundary with a 400, on both databases.

PostgreSQL refuses a NUL in text with an error, which reached the visitor as a 500 before the input guard.
"""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import text

from portal.db import make_engine
from tests.conftest import csrf_from
from tests.factories import make_customer
from tests.web.api.test_api import auth, make_key
from tests.web.helpers import sign_in_by_link
from tests.web.requests.test_requests_pages import file_from_page

FR = {"accept-language": "fr"}


def test_a_nul_in_a_sign_in_form_is_a_400_in_the_visitors_language(client) -> None:
    for path, field in (("/signin", "email"), ("/staff/sign-in", "email")):
        page = client.get(path, headers=FR)
        response = client.post(
            path,
            headers=FR,
            data={field: "camille\x00@example.org", "password": "x", "csrf_token": csrf_from(page.text)},
        )
        assert response.status_code == 400, path
        assert "caractères de contrôle" in response.text


def test_a_nul_in_the_new_email_of_a_signed_in_customer_is_a_400(client, engine, smtp) -> None:
    make_customer(engine, email="camille@example.org")
    sign_in_by_link(client, smtp, "camille@example.org")
    page = client.get("/me/profile/email")
    response = client.post(
        "/me/profile/email", data={"email": "new\x00@example.org", "csrf_token": csrf_from(page.text)}
    )
    assert response.status_code == 400


def test_a_nul_in_a_query_string_or_a_path_is_a_400(client, engine, clock) -> None:
    assert client.get("/privacy?x=%00").status_code == 400
    assert client.get("/static/%00.css").status_code == 400
    key = make_key(engine, clock)
    response = client.get("/api/v1/customers/C%000002/consents", headers=auth(key))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "control_characters"


def test_a_nul_in_a_json_body_is_a_400_with_the_apis_error(client, engine, clock) -> None:
    make_customer(engine, email="camille@example.org", retailer_ref="C0001")
    key = make_key(engine, clock)
    lookup = client.post("/api/v1/consents/lookup", headers=auth(key), json={"email": "camille\x00@example.org"})
    assert lookup.status_code == 400
    assert lookup.json()["error"]["code"] == "control_characters"
    event = {"customer_id": "C0001", "viewed_at": clock().isoformat(), "url": "https://shop.example/", "title": "a\x00"}
    ingest = client.post("/api/v1/browsing-events", headers=auth(key, **FR), json=event)
    assert ingest.status_code == 400
    assert "caractères de contrôle" in ingest.json()["error"]["message"]


def test_line_breaks_and_tabs_in_a_text_area_still_pass(client, engine, smtp) -> None:
    make_customer(engine, email="camille@example.org")
    sign_in_by_link(client, smtp, "camille@example.org")
    response = file_from_page(client, "other", message="line one\r\nline\ttwo")
    assert response.status_code == 303, response.text


def test_database_errors_keep_bound_values_out_of_messages_and_logs(database_url, caplog) -> None:
    engine = make_engine(database_url)
    try:
        with caplog.at_level(logging.DEBUG), pytest.raises(Exception) as raised, engine.connect() as connection:
            connection.execute(text("select * from no_such_table where x = :value"), {"value": "leo@example.org"})
        assert "leo@example.org" not in str(raised.value)
        assert "leo@example.org" not in caplog.text
    finally:
        engine.dispose()
