"""The public privacy policy: generated from the register, reachable without signing in, in both languages."""

from __future__ import annotations

import html
import re

import pytest


@pytest.mark.parametrize("language", ["fr", "en"])
def test_policy_is_public_and_complete(client, app, language) -> None:
    page = client.get("/privacy", headers={"accept-language": language})
    assert page.status_code == 200 and f'<html lang="{language}">' in page.text
    text = html.unescape(re.sub(r"\s+", " ", page.text))
    register = app.state.portal.register
    for purpose in register.purposes:
        assert purpose.text("title", language) in text, purpose.code
        assert purpose.text("description", language).split(".")[0] in text, purpose.code
    assert register.policy_version in text
    assert "https://www.cnil.fr" in text and app.state.portal.retailer.dpo_email in text
    assert "Maison Aubépine SAS" in text and 'href="/signin"' in text
    assert "consent-status" not in text  # nothing personal on the public page


def test_every_page_links_to_the_policy(client) -> None:
    for path in ("/", "/signin", "/no-such-page"):
        assert 'href="/privacy"' in client.get(path).text, path
