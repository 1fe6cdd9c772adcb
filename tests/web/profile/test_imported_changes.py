"""A change an import makes is the customer's to see: their profile lists it, saying it came from our records."""

from __future__ import annotations

import re

from portal.consent.register import load_register
from portal.db import transaction
from portal.imports.apply import apply_items
from portal.imports.customers import CustomersKind
from portal.imports.kinds import ImportContext
from tests.factories import make_customer
from tests.web.helpers import sign_in_by_code

EMAIL = "camille@example.com"


def test_an_imported_change_shows_in_the_customers_history(client, smtp, engine, settings, clock) -> None:  # type: ignore[no-untyped-def]
    make_customer(engine, email=EMAIL, retailer_ref="CRM-7", city="Lyon", postal_code="69002")
    context = ImportContext(
        settings=settings,
        register=load_register(settings.purposes_file),
        now=clock(),
        source="import",
        actor="import:crm.csv",
    )
    row = {"customer_id": "CRM-7", "address_line1": "1 rue Neuve", "postal_code": "69100", "city": "Villeurbanne"}
    with transaction(engine) as session:
        assert apply_items(session, CustomersKind(context), [row]).outcomes == {"updated": 1}
    assert sign_in_by_code(client, smtp, EMAIL).status_code == 303

    for language, heading, how in (
        ("en", "Latest changes to your details", "imported from our customer records"),
        ("fr", "Dernières modifications de vos informations", "repris de notre fichier clients"),
    ):
        page = client.get("/me/profile", headers={"accept-language": language})
        history = re.search(r'<section class="card" aria-labelledby="history-heading".*?</section>', page.text, re.S)
        assert history, page.text
        text = re.sub(r"\s+", " ", history.group(0))
        assert heading in text and text.count(how) == 3  # street, postcode, town
        assert "Villeurbanne" not in text  # which fields, when and how; the values are on the page above
