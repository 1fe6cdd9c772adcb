"""Language negotiation: explicit choice (cookie) > Accept-Language > French."""

from __future__ import annotations

import re

import pytest

from tests.conftest import csrf_from
from tests.factories import make_customer
from tests.web.helpers import sign_in_by_code


def lang_of(response) -> str:  # type: ignore[no-untyped-def]
    return response.text.split('<html lang="', 1)[1].split('"', 1)[0]


def test_french_by_default(client) -> None:
    assert lang_of(client.get("/")) == "fr"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("en-GB,en;q=0.9", "en"),
        ("de-DE,en;q=0.5", "en"),
        ("de-DE", "fr"),
        ("en;q=0,fr;q=0.4", "fr"),
        ("garbage;;q=x", "fr"),
    ],
)
def test_accept_language(client, header, expected) -> None:
    assert lang_of(client.get("/", headers={"accept-language": header})) == expected


def test_explicit_choice_wins_and_is_remembered(client) -> None:
    response = client.get("/lang/en?next=/signin", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/signin"
    assert "portal_lang=en" in response.headers["set-cookie"]
    assert lang_of(client.get("/", headers={"accept-language": "fr-FR"})) == "en"
    client.get("/lang/fr")
    assert lang_of(client.get("/", headers={"accept-language": "en"})) == "fr"


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "\\\\evil", "javascript:alert(1)"])
def test_switcher_never_redirects_off_site(client, target) -> None:
    response = client.get("/lang/en", params={"next": target}, follow_redirects=False)
    assert response.headers["location"] == "/"


def test_unsupported_language_is_a_404(client) -> None:
    assert client.get("/lang/de", follow_redirects=False).status_code == 404


def test_every_page_offers_the_switcher(client) -> None:
    html = client.get("/signin").text
    assert 'href="/lang/en?next=/signin"' in html and 'aria-current="true"' in html


def test_switching_language_keeps_the_query_string(client) -> None:
    html = client.get("/signin/link?token=abc-123").text
    assert 'href="/lang/en?next=/signin/link%3Ftoken%3Dabc-123"' in html
    response = client.get("/lang/en?next=/signin/link%3Ftoken%3Dabc-123", follow_redirects=False)
    assert response.headers["location"] == "/signin/link?token=abc-123"


def test_switching_language_after_a_form_error_returns_to_a_page_that_exists(client, smtp, engine) -> None:
    make_customer(engine, email="camille@example.com")
    sign_in_by_code(client, smtp, "camille@example.com")
    profile = client.get("/me/profile")
    refused = client.post("/me/profile/email", data={"email": "not an address", "csrf_token": csrf_from(profile.text)})
    assert refused.status_code == 400
    switch = re.search(r'href="(/lang/en\?next=[^"]+)"', refused.text)
    assert switch, "no switcher on the form's answer"
    assert "next=/me/profile" in switch[1] and "/me/profile/email" not in switch[1].replace("%2F", "/")
    landed = client.get(switch[1].replace("&amp;", "&"))
    assert landed.status_code == 200 and lang_of(landed) == "en"
    assert landed.url.path == "/me/profile"


def test_a_page_reached_by_get_comes_back_to_itself(client) -> None:
    html = client.get("/privacy").text
    assert 'href="/lang/en?next=/privacy"' in html
