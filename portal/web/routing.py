"""A Starlette Router that tries only the routes a path's first two segments allow, in their declared order.

Starlette's Router tries its routes one after the other, a regular expression each, until one matches: with the
portal's hundred routes, a staff action was the 67th (39 µs a request), the website banner's answers the 97th
(56 µs, on every visitor's click) and a static file the 101st (101 µs), more than some of those requests' own work
(issue 17). Routes are grouped here by the literal segments their path starts with, up to two; a request is matched,
by Starlette's own Router, against the groups its path could belong to, and nothing else changes: the same routes
in the same order, the same 405 for a known path with another method, the same trailing-slash redirects, and
`url_for` on every route (the application's router keeps them all).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.routing import BaseRoute, Mount, Route, Router, WebSocketRoute, get_route_path
from starlette.types import Receive, Scope, Send

_DEPTH = 2  # segments looked at: /staff/requests/… and /staff/incidents/… fall into different groups

Key = tuple[str, ...]


def route_key(route: BaseRoute) -> Key:
    """The literal segments a route's path starts with (up to _DEPTH); () when it could match any path."""
    if isinstance(route, (Route, WebSocketRoute, Mount)):
        key: list[str] = []
        for segment in route.path.removeprefix("/").split("/")[:_DEPTH]:
            if "{" in segment:
                break
            key.append(segment)
        return tuple(key)
    return ()  # a Host, or a route of another kind: tried for every path, as Starlette would


class SegmentRouter(Router):
    """`Router` whose http and websocket requests are matched against the routes their path allows (see above)."""

    def __init__(self, routes: Sequence[BaseRoute], **kwargs: Any) -> None:
        super().__init__(routes=list(routes), **kwargs)
        self._grouped: list[BaseRoute] | None = None  # the routes as they were when grouped
        self._groups: dict[Key, Router] = {}

    def _regroup(self) -> None:
        """Group the routes anew: at the first request, and after any route is added (`add_route`, `mount`)."""
        keys = [route_key(route) for route in self.routes]
        shapes = {(), *keys}
        for key in keys:  # every shorter key a request may be looked up by
            shapes.update(key[:n] for n in range(len(key)))
        # For each key: the routes whose own key is a prefix of it (the path may match them), in declared order.
        self._groups = {
            shape: Router(
                routes=[route for route, key in zip(self.routes, keys, strict=True) if shape[: len(key)] == key],
                redirect_slashes=self.redirect_slashes,
                default=self.default,
            )
            for shape in shapes
        }
        self._grouped = list(self.routes)

    def _group(self, scope: Scope) -> Router:
        if self._grouped != self.routes:  # a hundred references, each compared by identity first: about 1 µs
            self._regroup()
        segments = tuple(get_route_path(scope).removeprefix("/").split("/")[:_DEPTH])
        for depth in range(len(segments), 0, -1):
            group = self._groups.get(segments[:depth])
            if group is not None:
                return group
        return self._groups[()]

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await super().app(scope, receive, send)
            return
        scope.setdefault("router", self)  # url_for sees every route, whichever group matched
        await self._group(scope).app(scope, receive, send)
