"""Download my data: the page that explains the archive, the streamed download, and the emailed link's landing page."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from zoneinfo import ZoneInfo

import anyio
import anyio.to_thread
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from portal.i18n import get_locale
from portal.identity.destination import remember_destination
from portal.identity.guards import customer_id_of
from portal.mydata.service import overview_for
from portal.portability import service
from portal.portability.archive import ArchiveOrder, ArchiveProgress, archive_chunks, archive_filename
from portal.portability.datasets import DATASETS
from portal.web.render import redirect, render
from portal.web.state import portal_of, read, write

TOKEN_LIMIT = 300


class ArchiveResponse(StreamingResponse):
    """Streams the archive, then reports how it ended — also when the client went away in the middle.

    Starlette stops sending when the client disconnects (it listens for `http.disconnect` beside the stream) or
    when sending fails; either way `__call__` ends here, the generator is closed (its `finally` closes the cursor),
    and `on_end` records whether the archive was delivered whole.
    """

    media_type = "application/zip"

    def __init__(self, content: AsyncIterator[bytes], *, filename: str, on_end: Callable[[], Awaitable[None]]) -> None:
        super().__init__(content, headers={"content-disposition": f'attachment; filename="{filename}"'})
        self.on_end = on_end

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await self.body_iterator.aclose()  # type: ignore[attr-defined]  # an async generator (taking_turns), typed by Starlette as AsyncIterable
                await self.on_end()


async def taking_turns(chunks: Iterator[bytes], *, on_event_loop: bool) -> AsyncIterator[bytes]:
    """Run the archive's blocking generator one slice (a batch of rows) at a time, letting the other requests on
    this worker run between two slices.

    On SQLite the slices run on the event loop, like every SQLite read here (db.run_db): in a worker thread the
    archive's Python held the GIL while the event loop waited for it after each of its own system calls, and one
    download cost the other customers of the worker 35% of their requests. On PostgreSQL each slice goes to a
    worker thread, since its rows come over the network.
    """
    try:
        while True:
            if on_event_loop:
                chunk = next(chunks, None)
            else:
                chunk = await anyio.to_thread.run_sync(next, chunks, None)
            if chunk is None:
                return
            if chunk:
                yield chunk
            await anyio.sleep(0)  # the requests that became ready during the slice go first
    finally:
        with anyio.CancelScope(shield=True):
            if on_event_loop:
                chunks.close()  # type: ignore[attr-defined]  # a generator, annotated as the Iterator it is used as
            else:
                await anyio.to_thread.run_sync(chunks.close)  # type: ignore[attr-defined]  # a generator, as above


def _customer_only(request: Request) -> int:
    """The signed-in customer; a shared store tablet never receives an archive (it would stay on the tablet)."""
    customer_id = customer_id_of(request)
    if request.scope["state"]["session"].kind != "customer":
        raise HTTPException(403)
    return customer_id


def _link_rejected(request: Request, reason: str) -> Response:
    status = {"expired": 410, "not_yours": 403}.get(reason, 400)
    return render(request, "customer/download_link_rejected.html", {"reason": reason}, status_code=status)


async def download_page(request: Request) -> Response:
    # A tablet sees the page too, whose button there emails the link instead (portal/store/views.py).
    customer_id = customer_id_of(request)
    return await _render_page(request, customer_id, token=None, reference=None)


async def _render_page(request: Request, customer_id: int, *, token: str | None, reference: str | None) -> Response:
    overview = await read(request, overview_for, customer_id=customer_id)
    return render(
        request,
        "customer/download.html",
        {"overview": overview, "token": token, "reference": reference, "datasets": DATASETS},
    )


async def download_link(request: Request) -> Response:
    """The emailed link. Looking at it only shows the download page (mail scanners open links); signing in first
    when needed, then coming back here."""
    state = portal_of(request)
    token = request.query_params.get("token", "")[:TOKEN_LIMIT]
    try:
        reference = service.read_link_token(state.settings.secret_key, token, now=state.clock())
    except service.LinkRejected as exc:
        return _link_rejected(request, exc.reason)
    session = request.scope["state"].get("session")
    if session is None:
        response = redirect(request, "/signin")
        remember_destination(request, response, f"/me/download/link?token={token}")
        return response
    customer_id = _customer_only(request)
    try:
        await read(request, service.link_request_of, reference=reference, customer_id=customer_id)
    except service.LinkRejected as exc:
        return _link_rejected(request, exc.reason)
    return await _render_page(request, customer_id, token=token, reference=reference)


async def download(request: Request) -> Response:
    customer_id = _customer_only(request)
    state = portal_of(request)
    form = await request.form()
    token = str(form.get("token") or "")[:TOKEN_LIMIT]
    link_reference = None
    if token:
        try:
            link_reference = service.read_link_token(state.settings.secret_key, token, now=state.clock())
        except service.LinkRejected as exc:
            return _link_rejected(request, exc.reason)
    try:
        start = await write(request, service.start_download, customer_id=customer_id, link_reference=link_reference)
    except service.LinkRejected as exc:
        return _link_rejected(request, exc.reason)

    locale = get_locale()
    generated_at = state.clock()
    order = ArchiveOrder(
        customer_id=customer_id,
        request_reference=start.reference,
        locale=locale,
        generated_at=generated_at,
        timezone=state.settings.timezone,
    )
    progress = ArchiveProgress()
    chunks = archive_chunks(
        state.engine, order, env=state.env, register=state.register, retailer=state.retailer, progress=progress
    )

    async def on_end() -> None:
        await write(request, service.finish_download, start=start, customer_id=customer_id, progress=progress)

    filename = archive_filename(locale, generated_at.astimezone(ZoneInfo(state.settings.timezone)).date())
    on_event_loop = state.engine.dialect.name == "sqlite"
    return ArchiveResponse(taking_turns(chunks, on_event_loop=on_event_loop), filename=filename, on_end=on_end)


routes = [
    Route("/me/download", download_page, methods=["GET"], name="download_page"),
    Route("/me/download", download, methods=["POST"], name="download"),
    Route("/me/download/link", download_link, methods=["GET"], name="download_link"),
]
