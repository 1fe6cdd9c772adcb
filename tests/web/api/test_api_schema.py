"""Schemathesis drives the API from its own OpenAPI document: no 5xx, and every response matches the document."""

from __future__ import annotations

from datetime import timedelta

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import positive_data_acceptance

from portal.consent import ledger
from portal.db import transaction
from tests.factories import make_customer, make_store
from tests.web.api.test_api import ALL_SCOPES, make_key


@pytest.fixture
def api_key(engine, clock) -> str:  # type: ignore[no-untyped-def]
    return make_key(engine, clock, scopes=ALL_SCOPES)


@pytest.fixture
def api_schema(app, engine, clock, api_key):  # type: ignore[no-untyped-def]
    # Known customers, so that generated calls reach the consent and ingestion code, not only the 404 path.
    for ref in ("C1", "0", "A"):
        customer = make_customer(engine, retailer_ref=ref)
        with transaction(engine) as session:
            ledger.record_consent(
                session, register=app.state.portal.register, customer_id=customer.id, purpose="browsing_analytics",
                granted=True, channel="web", actor="customer", now=clock() - timedelta(days=400), locale="fr",
            )  # fmt: skip
    # Known stores, so that generated purchases reach the customer and duplicate checks too.
    for code in ("0", "A", "WEB"):
        make_store(engine, code=code, kind="web" if code == "WEB" else "store")
    return schemathesis.openapi.from_asgi("/api/openapi.json", app)


def test_the_api_keeps_to_its_openapi_document(api_schema, api_key) -> None:  # type: ignore[no-untyped-def]
    # Every check runs but "schema-valid data must be accepted": some rules cannot be said in a schema and are
    # refused by design (a time in the future, a policy version never shown, an answer older than the latest).
    # Driven by hand rather than through schemathesis' pytest plugin, whose subtests break on pytest 9.
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) == 9
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
        def call(case) -> None:  # type: ignore[no-untyped-def]
            case.call_and_validate(
                headers={"Authorization": f"Bearer {api_key}"}, excluded_checks=[positive_data_acceptance]
            )

        call()
