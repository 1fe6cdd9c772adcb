"""Consents imported from the shops' records, as the customer sees them: their own date, channel and version."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from portal.consent import ledger
from portal.db import in_transaction
from portal.imports.consents import ConsentsKind
from tests.factories import make_customer
from tests.import_helpers import CONFIG, context, load_mapping, mapped_rows, run
from tests.web.api.test_api import auth, make_key
from tests.web.helpers import sign_in_by_code

EN = {"accept-language": "en"}
MAPPING = load_mapping(CONFIG / "consents.toml")
HEADER = "N° client;E-mail;Carte fidélité;Finalité;Réponse;Date de la réponse;Version politique"


def history_rows(html: str) -> list[list[str]]:
    history = html[html.index('id="history-heading"') :]
    rows = re.findall(r"<tr>\s*<td>(.*?)</tr>", history, re.S)
    return [
        [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"(?:^|<td>)(.*?)</td>", row, re.S)]
        for row in rows
    ]


def test_the_customer_sees_imported_answers_as_they_happened(client, smtp, engine, settings, clock, tmp_path) -> None:
    leo = make_customer(engine, email="leo.bernard@example.fr", retailer_ref="C0002", preferred_language="en")
    register = client.app.state.portal.register
    clicked = datetime(2026, 6, 1, 9, tzinfo=UTC)
    in_transaction(
        engine,
        ledger.record_consent,
        register=register,
        customer_id=leo.id,
        purpose="email_newsletter",
        granted=True,
        channel="web",
        actor="customer",
        now=clicked,
        locale="en",
    )
    path = tmp_path / "crm.csv"
    path.write_text(
        f"{HEADER}\nC0002;;;email_newsletter;oui;05/10/2021 11:03;\nC0002;;;email_newsletter;non;01/02/2023 18:00;\n",
        encoding="utf-8",
    )
    outcome = run(engine, ConsentsKind(context(settings, clock.now, MAPPING)), list(mapped_rows(path, MAPPING)))
    assert outcome.tally.outcomes == {"created": 2}

    sign_in_by_code(client, smtp, "leo.bernard@example.fr")
    page = client.get("/me/consents", headers=EN).text
    assert history_rows(page) == [
        ["1 Jun 2026, 11:00:00", "Email newsletter", "consent given", "on this website", "2026-01"],
        ["1 Feb 2023, 18:00:00", "Email newsletter", "consent withdrawn", "in a store", "2021-09"],
        ["5 Oct 2021, 11:03:00", "Email newsletter", "consent given", "in a store", "2021-09"],
    ]
    # The history does not overrule the click: the page, the API and the ledger agree the consent stands.
    assert 'data-state="granted"' in page[page.index('id="purpose-email_newsletter"') :][:2000]
    body = client.get("/api/v1/customers/C0002/consents", headers=auth(make_key(engine, clock))).json()
    newsletter = next(c for c in body["consents"] if c["purpose"] == "email_newsletter")
    assert newsletter["granted"] and newsletter["channel"] == "web"
    assert newsletter["changed_at"].startswith("2026-06-01T09:00")
