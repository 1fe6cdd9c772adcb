"""Reading a JSON request body for the retailer API and the website banner: one reader, so both refuse the same way
(415 unless JSON, 413 past the endpoint's limit — read no further than it —, 400 unreadable, 422 invalid)."""

from __future__ import annotations

import json
from typing import Any, TypeVar, overload

from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.requests import Request

from portal.api.errors import INVALID_JSON, ApiProblem, validation_details

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


@overload
async def json_body(request: Request, model: type[M], *, max_bytes: int) -> M: ...
@overload
async def json_body(request: Request, model: TypeAdapter[T], *, max_bytes: int) -> T: ...
async def json_body(request: Request, model: type[BaseModel] | TypeAdapter[Any], *, max_bytes: int) -> object:
    """The body validated by `model`, or ApiProblem; a body announcing or reaching more than `max_bytes` is refused
    before the rest of it is read."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        raise ApiProblem(415)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise ApiProblem(413)
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > max_bytes:
            raise ApiProblem(413)
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ApiProblem(400, code="invalid_json", message=INVALID_JSON) from None
    try:
        if isinstance(model, TypeAdapter):
            return model.validate_python(data)
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiProblem(422, details=validation_details(exc)) from None
