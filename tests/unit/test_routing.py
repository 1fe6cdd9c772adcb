"""The application's router tries only the routes a path allows (portal/web/routing.py), and finds exactly the route
Starlette's own Router finds: for every route of the application, every method, and the paths no route serves."""

from __future__ import annotations

import contextlib
import re

import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.testclient import TestClient

from portal.app import create_app
from portal.settings import Settings
from portal.web.routing import SegmentRouter, route_key

SAMPLES = {
    "int": "7",
    "path": "a/b.txt",
    "str": "R-7K2Q-9XMD",
    "float": "1.5",
    "uuid": "0" * 8 + "-0000-0000-0000-" + "0" * 12,
}


def example_path(route: BaseRoute) -> str:
    """A concrete path the route serves: each parameter replaced by a value of its convertor."""
    path = route.path + ("/css/portal.css" if isinstance(route, Mount) else "")  # type: ignore[attr-defined]
    return re.sub(r"{\w+(?::(\w+))?}", lambda m: SAMPLES[m.group(1) or "str"], path)


def starlette_choice(routes: list[BaseRoute], scope: dict) -> tuple[BaseRoute | None, Match]:  # type: ignore[type-arg]
    """What Starlette's Router picks: the first full match, else the first partial one (a 405)."""
    partial = None
    for route in routes:
        match, _child = route.matches(scope)
        if match is Match.FULL:
            return route, match
        if match is Match.PARTIAL and partial is None:
            partial = route
    return partial, Match.PARTIAL if partial else Match.NONE


def scope_for(path: str, method: str) -> dict:  # type: ignore[type-arg]
    return {"type": "http", "path": path, "method": method, "root_path": ""}


@pytest.fixture
def router(settings: Settings) -> SegmentRouter:
    router = create_app(settings).router
    assert isinstance(router, SegmentRouter)
    return router


def test_every_route_of_the_application_is_found_by_its_group_as_by_starlette(router: SegmentRouter) -> None:
    checked = 0
    for route in router.routes:
        path = example_path(route)
        for method in sorted(getattr(route, "methods", None) or {"GET"}) + ["DELETE", "PATCH"]:
            scope = scope_for(path, method)
            expected = starlette_choice(router.routes, scope)
            assert starlette_choice(router._group(scope).routes, scope) == expected, (path, method)
            for variant in (path + "/", path.rstrip("/") or "/"):  # the trailing-slash redirect looks at these
                scope = scope_for(variant, method)
                assert starlette_choice(router._group(scope).routes, scope) == starlette_choice(router.routes, scope)
            checked += 1
    assert checked > 300


@pytest.mark.parametrize(
    "path",
    ["/", "//", "/nowhere", "/me/nowhere/else", "/staff/requests/R-1/note/more", "/api/v2/x", "/static", "/%2e%2e/x",
     "/me/purchases/not-a-number", "/consent/v1/banner-.js", "/STAFF/requests"],
)  # fmt: skip
def test_paths_no_route_serves_meet_the_same_answer(router: SegmentRouter, path: str) -> None:
    for method in ("GET", "POST"):
        scope = scope_for(path, method)
        assert starlette_choice(router._group(scope).routes, scope) == starlette_choice(router.routes, scope)


def test_a_group_keeps_the_declared_order_of_its_routes() -> None:
    async def first(request):  # type: ignore[no-untyped-def]
        return PlainTextResponse("first")

    async def second(request):  # type: ignore[no-untyped-def]
        return PlainTextResponse("second")

    routes: list[BaseRoute] = [
        Route("/a/{anything}", first, methods=["GET"]),
        Route("/a/b", second, methods=["GET", "POST"]),
        Route("/{everything:path}", second, methods=["PUT"]),
    ]
    app = Starlette()
    app.router = SegmentRouter(routes)
    client = TestClient(app)
    assert client.get("/a/b").text == "first"  # declared first, though the second is more literal
    assert client.post("/a/b").text == "second"
    assert client.put("/a/b").text == "second"  # a route keyed () is tried for every path
    assert client.delete("/a/b").status_code == 405
    assert client.get("/c").status_code == 405  # the catch-all serves PUT only: a partial match, as in Starlette
    assert client.get("/a/b/c").status_code == 405
    assert [route_key(route) for route in routes] == [("a",), ("a", "b"), ()]


def test_not_found_method_not_allowed_and_the_trailing_slash_redirect_are_starlettes(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        assert client.get("/nowhere").status_code == 404
        assert client.get("/staff/requests/R-7K2Q-9XMD/note").status_code == 405
        redirected = client.get("/privacy/", follow_redirects=False)
        assert (redirected.status_code, redirected.headers["location"]) == (307, "http://testserver/privacy")
        assert client.get("/static/css/portal.css").status_code == 200
        assert client.get("/static/css/nowhere.css").status_code == 404
        assert client.app.url_path_for("static", path="/css/portal.css") == "/static/css/portal.css"


def test_the_lifespan_runs_through_the_router() -> None:
    ran = []

    @contextlib.asynccontextmanager
    async def lifespan(app):  # type: ignore[no-untyped-def]
        ran.append("start")
        yield
        ran.append("stop")

    app = Starlette()
    app.router = SegmentRouter([], lifespan=lifespan)
    with TestClient(app) as client:
        assert ran == ["start"]
        assert client.get("/").status_code == 404
    assert ran == ["start", "stop"]


def test_a_route_added_after_the_app_was_built_is_found() -> None:
    async def late(request):  # type: ignore[no-untyped-def]
        return PlainTextResponse("late")

    app = Starlette()
    app.router = SegmentRouter([Route("/a", late, methods=["GET"])])
    client = TestClient(app)
    assert client.get("/a").status_code == 200 and client.get("/b/c").status_code == 404
    app.add_route("/b/c", late, methods=["GET"])
    assert client.get("/b/c").text == "late"
