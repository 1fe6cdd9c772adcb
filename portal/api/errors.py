"""JSON errors for the API: a stable code for programs, a message in the caller's language for people."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pydantic import ValidationError
from starlette.responses import JSONResponse

from portal.i18n import gettext, lazy_gettext

# Status → (code, message) for errors raised by the framework (unknown path, wrong method, crash).
STATUS_MESSAGES = {
    400: ("bad_request", lazy_gettext("The request is malformed.")),
    401: ("unauthenticated", lazy_gettext("An API key is required: send it as 'Authorization: Bearer <key>'.")),
    403: ("forbidden", lazy_gettext("This API key is not allowed to do that.")),
    404: ("not_found", lazy_gettext("There is nothing at this address.")),
    405: ("method_not_allowed", lazy_gettext("This method is not allowed at this address.")),
    413: ("payload_too_large", lazy_gettext("The request body is too large.")),
    415: ("unsupported_media_type", lazy_gettext("Send the request body as JSON (Content-Type: application/json).")),
    422: ("invalid_request", lazy_gettext("Some values are not valid; see the details.")),
    500: ("server_error", lazy_gettext("Something went wrong on our side. Please try again later.")),
}

# Pydantic error types → what to tell the sender, per field.
FIELD_MESSAGES = {
    "missing": lazy_gettext("This field is required."),
    "extra_forbidden": lazy_gettext("This field is not expected."),
    "string_type": lazy_gettext("Expected a string."),
    "string_too_short": lazy_gettext("This value is too short."),
    "string_too_long": lazy_gettext("This value is too long."),
    "string_pattern_mismatch": lazy_gettext("This value is not in the expected format."),
    "bool_type": lazy_gettext("Expected true or false."),
    "bool_parsing": lazy_gettext("Expected true or false."),
    "datetime_type": lazy_gettext("Expected a date and time in ISO 8601 with a time-zone offset."),
    "datetime_parsing": lazy_gettext("Expected a date and time in ISO 8601 with a time-zone offset."),
    "datetime_from_date_parsing": lazy_gettext("Expected a date and time in ISO 8601 with a time-zone offset."),
    "timezone_aware": lazy_gettext("Give the time-zone offset, e.g. 2026-11-23T10:15:00+01:00."),
    "literal_error": lazy_gettext("Expected one of: %(expected)s."),
    "too_short": lazy_gettext("Give at least %(min_length)s item(s)."),
    "too_long": lazy_gettext("Give at most %(max_length)s items."),
    "list_type": lazy_gettext("Expected a list."),
    "model_type": lazy_gettext("Expected a JSON object."),
    "model_attributes_type": lazy_gettext("Expected a JSON object."),
    "dict_type": lazy_gettext("Expected a JSON object."),
    "union_tag_invalid": lazy_gettext("Expected a JSON object."),
    "identify_customer": lazy_gettext("Identify the customer with exactly one of email or customer_id."),
    "in_future": lazy_gettext("This moment is in the future."),
    "unknown_purpose": lazy_gettext("There is no consent-based purpose with this code; see GET /api/v1/purposes."),
    "unknown_version": lazy_gettext("No wording of this purpose is known for this policy version."),
    "older_than_latest": lazy_gettext("A more recent answer is already recorded for this purpose."),
    "missing_scope": lazy_gettext("This API key lacks the scope this call needs."),
}
FALLBACK_FIELD_MESSAGE = lazy_gettext("This value is not valid.")
INVALID_JSON = lazy_gettext("The request body is not valid JSON.")
CUSTOMER_NOT_FOUND = lazy_gettext("No customer matches.")
CUSTOMER_CONFLICT = lazy_gettext("These values name another customer record: a person must decide; see the details.")
CUSTOMER_ERASED = lazy_gettext("This customer's data was erased at their request: it cannot be created again.")
CUSTOMER_RESTRICTED = lazy_gettext("This customer's processing is restricted: their record cannot be changed.")
CONTROL_CHARACTERS = lazy_gettext(
    "The request contains control characters (such as a NUL byte), which no field accepts; remove them and send it "
    "again."
)


class ApiProblem(Exception):
    """Raised by API views and turned into a JSON error response."""

    def __init__(
        self,
        status_code: int,
        *,
        code: str | None = None,
        message: str | None = None,
        details: Iterable[tuple[str, str]] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        default_code, default_message = STATUS_MESSAGES.get(status_code, STATUS_MESSAGES[400])
        super().__init__(code or default_code)
        self.status_code = status_code
        self.code = code or default_code
        self.message = message or default_message
        self.details = list(details)  # (field, message type from FIELD_MESSAGES)
        self.headers = dict(headers or {})


def field_message(kind: str, context: Mapping[str, object] | None = None) -> str:
    """The message for one field, worded from the error's type; a template whose values are missing falls back."""
    template = FIELD_MESSAGES.get(kind, FALLBACK_FIELD_MESSAGE)
    if "%(" not in template:
        return gettext(template)
    try:
        return gettext(template, **context) if context else gettext(FALLBACK_FIELD_MESSAGE)
    except (KeyError, TypeError, ValueError):
        return gettext(FALLBACK_FIELD_MESSAGE)


def validation_details(exc: ValidationError) -> list[tuple[str, str]]:
    details = []
    for error in exc.errors(include_url=False):
        location = ".".join(str(part) for part in error["loc"] if part not in ("BrowsingEvent", "BrowsingBatch"))
        kind = error["type"]
        details.append((location or "body", field_message(kind, error.get("ctx"))))
    return details


def problem_response(problem: ApiProblem) -> JSONResponse:
    body = {
        "error": {
            "code": problem.code,
            "message": gettext(problem.message),
            "details": [{"field": field, "message": message} for field, message in problem.details],
        }
    }
    return JSONResponse(body, status_code=problem.status_code, headers=problem.headers)


def status_response(status_code: int, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return problem_response(ApiProblem(status_code if status_code in STATUS_MESSAGES else 400, headers=headers))
