"""The OpenAPI 3.1 document of the retailer API, built from the same Pydantic models that validate requests."""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from portal.api import schemas

REF = "#/components/schemas/{model}"
NO_CONTROLS = "^[^\\x00-\\x1f\\x7f]*$"  # no field accepts control characters (portal/web/input_guard.py)
ERROR_STATUSES = {
    "400": "The body is not valid JSON, or the path, query or body holds control characters (such as NUL).",
    "401": "No API key, or an unknown or revoked one.",
    "403": "The API key lacks the scope this call needs.",
    "404": "No customer matches.",
    "409": "A more recent answer is already recorded for this purpose.",
    "410": "The customer's data was erased at their request: they are not created again.",
    "413": "The body is larger than 1 MB.",
    "415": "The body is not sent as application/json.",
    "422": "A value is not valid; `details` names each field.",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": REF.format(model=name)}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


CUSTOMER_ID = {
    "name": "customer_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": NO_CONTROLS},
    "description": "The retailer's customer id.",
}


def _put_customer(write: tuple[str, ...]) -> dict[str, Any]:
    operation = _operation(
        "Create or update a customer by the retailer's customer id (same rules as `portal import customers`)",
        "customers:write",
        ("CustomerWriteResult", "Updated, merged with another record of the same person, or unchanged."),
        ("409", "410", *write),
        body=_ref("CustomerWrite"),
        operationId="putCustomer",
        parameters=[CUSTOMER_ID],
    )
    operation["responses"]["201"] = _json(_ref("CustomerWriteResult"), "Created.")
    operation["responses"]["409"]["description"] = (
        "The values name another record a person must reconcile with this one (two customer ids, two loyalty"
        " cards…), or the customer's processing is restricted (`error.code` says which); nothing was written."
    )
    return operation


def _errors(*statuses: str) -> dict[str, Any]:
    return {status: _json(_ref("Error"), ERROR_STATUSES[status]) for status in statuses}


def _operation(
    summary: str,
    scope: str | None,
    ok: tuple[str, str],
    errors: tuple[str, ...],
    body: dict | None = None,
    **extra: Any,
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "description": f"Needs an API key with the `{scope}` scope." if scope else "Needs any valid API key.",
        "security": [{"apiKey": []}],
        # Any call may be refused for control characters in its path, query or body (portal/web/input_guard.py).
        "responses": {"200": _json(_ref(ok[0]), ok[1]), **_errors("400", *errors)},
        **extra,
    }
    if body is not None:
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    return operation


def _no_control_characters(node: Any) -> None:
    """Say of every free-text string what the input guard enforces for all of them: no control characters."""
    if isinstance(node, dict):
        if node.get("type") == "string" and not {"enum", "const", "format", "pattern"} & node.keys():
            node["pattern"] = NO_CONTROLS
        for value in node.values():
            _no_control_characters(value)
    elif isinstance(node, list):
        for value in node:
            _no_control_characters(value)


@cache
def openapi_document(base_url: str, consent_purposes: tuple[str, ...]) -> dict[str, Any]:
    """The document for this deployment: the purpose codes are those of its register."""
    models: list[type[BaseModel]] = [
        schemas.ConsentLookup,
        schemas.ConsentChange,
        schemas.CustomerConsents,
        schemas.ConsentChangeResult,
        schemas.VisitorLink,
        schemas.VisitorLinkResult,
        schemas.BrowsingEvent,
        schemas.BrowsingBatch,
        schemas.IngestionResult,
        schemas.PurposeList,
        schemas.CustomerWrite,
        schemas.CustomerWriteResult,
        schemas.StoreChange,
        schemas.StoreResult,
        schemas.Receipt,
        schemas.PurchaseBatch,
        schemas.PurchaseResult,
        schemas.Error,
    ]
    _, definitions = models_json_schema(
        [(model, "validation" if model.model_config.get("extra") == "forbid" else "serialization") for model in models],
        ref_template=REF,
    )
    definitions["$defs"]["ConsentChange"]["properties"]["purpose"]["enum"] = list(consent_purposes)
    _no_control_characters(definitions["$defs"])
    write = ("401", "403", "413", "415", "422", "400")
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Privacy portal — retailer API",
            "version": "1",
            "description": (
                "For the retailer's website, CRM and tills: read a customer's current consents before using their"
                " data, record consents given or withdrawn on another channel, and send browsing events, which are"
                " kept only when the customer consented to browsing analytics at the event's time; create and update"
                " stores. Errors are JSON"
                " (`error.code` for programs, `error.message` in the language asked for with Accept-Language)."
                " Changes are pushed to the retailer's systems as signed webhooks (see README)."
            ),
        },
        "servers": [{"url": base_url}],
        "components": {
            "schemas": definitions["$defs"],
            "securitySchemes": {
                "apiKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A key created with `portal apikey create`, sent as `Authorization: Bearer <key>`.",
                }
            },
        },
        "paths": {
            "/api/v1/purposes": {
                "get": _operation(
                    "The purposes of the register and the current policy version",
                    None,
                    ("PurposeList", "The purposes."),
                    ("401",),
                    operationId="listPurposes",
                )
            },
            "/api/v1/customers/{customer_id}/consents": {
                "get": _operation(
                    "A customer's current consents, by the retailer's customer id",
                    "consents:read",
                    ("CustomerConsents", "Every consent-based purpose; never asked reads as not given."),
                    ("401", "403", "404"),
                    operationId="getCustomerConsents",
                    parameters=[CUSTOMER_ID],
                )
            },
            "/api/v1/customers/{customer_id}": {"put": _put_customer(write)},
            "/api/v1/consents/lookup": {
                "post": _operation(
                    "A customer's current consents, by email address or customer id (kept out of URLs)",
                    "consents:read",
                    ("CustomerConsents", "Every consent-based purpose; never asked reads as not given."),
                    ("404", *write),
                    body=_ref("ConsentLookup"),
                    operationId="lookupConsents",
                )
            },
            "/api/v1/consents": {
                "post": _operation(
                    "Record a consent given or withdrawn on another channel",
                    "consents:write",
                    ("ConsentChangeResult", "Recorded, or already so (changed: false)."),
                    ("404", "409", *write),
                    body=_ref("ConsentChange"),
                    operationId="recordConsent",
                )
            },
            "/api/v1/website-visitors/link": {
                "post": _operation(
                    "Tell which customer a visitor of the website's consent banner is (at sign-in or checkout)",
                    "consents:write",
                    ("VisitorLinkResult", "Linked: the customer's consents, the visitor's banner answers included."),
                    ("404", *write),
                    body=_ref("VisitorLink"),
                    operationId="linkWebsiteVisitor",
                    description=(
                        "Needs an API key with the `consents:write` scope. The visitor's answers to the consent banner"
                        " join the customer's consent history with their own time (the latest answer anywhere"
                        " stands), browsing events of the customer are judged against that history, and the banner"
                        " shows the customer's consents from then on. Calling it again is harmless; a visitor id"
                        " linked to another customer before now follows this one."
                    ),
                )
            },
            "/api/v1/browsing-events": {
                "post": _operation(
                    "Send browsing events, one or a batch of up to 1,000",
                    "browsing:write",
                    ("IngestionResult", "How many events were kept and dropped, and why."),
                    write,
                    body={"anyOf": [_ref("BrowsingBatch"), _ref("BrowsingEvent")]},
                    operationId="ingestBrowsingEvents",
                )
            },
            "/api/v1/purchases": {
                "post": _operation(
                    "Record purchases with their lines, one receipt or a batch of up to 1,000",
                    "purchases:write",
                    ("PurchaseResult", "How many receipts were created, already recorded, and dropped, and why."),
                    write,
                    body={"anyOf": [_ref("PurchaseBatch"), _ref("Receipt")]},
                    operationId="recordPurchases",
                    description=(
                        "Needs an API key with the `purchases:write` scope. Idempotent by receipt number: a receipt"
                        " already recorded with the same content is counted as unchanged, one with other content is"
                        " refused. The store and the customer must be known (an erased or restricted customer's"
                        " purchases, and anonymous sales, are dropped and counted). A batch with one invalid receipt"
                        " is refused whole; `details` names each field, e.g. `purchases.3.lines.1.quantity`."
                    ),
                )
            },
            "/api/v1/stores/{code}": {
                "put": _operation(
                    "Create or update a store or the web shop, by the retailer's store code",
                    "purchases:write",
                    ("StoreResult", "Created, updated, or already so (unchanged)."),
                    write,
                    body=_ref("StoreChange"),
                    operationId="putStore",
                    parameters=[
                        {
                            "name": "code",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string", "pattern": schemas.STORE_CODE_PATTERN},
                            "description": "The retailer's store code, e.g. LYO-01 (16 characters at most).",
                        }
                    ],
                )
            },
        },
    }
