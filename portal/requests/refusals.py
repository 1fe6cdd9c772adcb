"""What the customer sees when a request they file is not filed: the open one, their list, or a pause.

Shared by the request form and the profile's correction form (both file through requests.service's limits).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from portal.requests import service
from portal.web.render import redirect, render

REFUSALS = (service.AlreadyRequested, service.TooManyOpen, service.TooManyRequests)


def refusal_response(request: Request, refused: Exception) -> Response:
    if isinstance(refused, service.AlreadyRequested):
        return redirect(request, f"/me/requests/{refused.reference}?already=1")
    if isinstance(refused, service.TooManyOpen):
        return redirect(request, "/me/requests?too_many_open=1")
    assert isinstance(refused, service.TooManyRequests)
    seconds = int(refused.retry_after.total_seconds()) + 1
    return render(
        request,
        "customer/too_many.html",
        {"minutes": max(1, (seconds + 59) // 60)},
        status_code=429,
        headers={"retry-after": str(seconds)},
    )
