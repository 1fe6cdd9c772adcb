"""How `portal serve` runs uvicorn: X-Forwarded-For believed only from the proxies the settings name."""

from __future__ import annotations

import asyncio

import pytest
import uvicorn

from portal.cli import uvicorn_options
from portal.settings import SettingsError, load_settings


async def _seen_client(settings, peer: str, forwarded_for: str) -> str:  # type: ignore[no-untyped-def]
    seen: list[str] = []

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        seen.append(scope["client"][0])

    config = uvicorn.Config(app, **uvicorn_options(settings))  # type: ignore[arg-type]
    config.load()
    scope = {
        "type": "http",
        "client": (peer, 50000),
        "headers": [(b"x-forwarded-for", forwarded_for.encode())],
        "scheme": "http",
        "path": "/",
    }
    await config.loaded_app(scope, None, None)
    return seen[0]


def test_by_default_no_forwarded_header_is_believed_not_even_from_localhost() -> None:
    settings = load_settings(environ={})
    assert asyncio.run(_seen_client(settings, "127.0.0.1", "203.0.113.9")) == "127.0.0.1"
    assert uvicorn_options(settings)["server_header"] is False


def test_a_named_proxy_is_believed_and_only_it() -> None:
    settings = load_settings(environ={"PORTAL_TRUSTED_PROXIES": "10.0.0.5, 10.1.0.0/16"})
    assert settings.trusted_proxies == ("10.0.0.5", "10.1.0.0/16")
    assert asyncio.run(_seen_client(settings, "10.0.0.5", "203.0.113.9")) == "203.0.113.9"
    assert asyncio.run(_seen_client(settings, "10.1.4.4", "203.0.113.9")) == "203.0.113.9"
    assert asyncio.run(_seen_client(settings, "127.0.0.1", "203.0.113.9")) == "127.0.0.1"


def test_a_proxy_that_is_not_an_address_is_refused_at_start_up() -> None:
    with pytest.raises(SettingsError, match="PORTAL_TRUSTED_PROXIES"):
        load_settings(environ={"PORTAL_TRUSTED_PROXIES": "proxy.local"}).check()


def test_an_ipv6_client_counts_by_its_64_block() -> None:
    from starlette.requests import Request

    from portal.web.render import client_ip

    def ip_of(host: str) -> str:
        return client_ip(Request({"type": "http", "client": (host, 1), "headers": []}))

    assert ip_of("2001:db8:1:2:aaaa::1") == ip_of("2001:db8:1:2:bbbb::9") == "2001:db8:1:2::/64"
    assert ip_of("2001:db8:1:3::1") != ip_of("2001:db8:1:2::1")
    assert ip_of("203.0.113.9") == "203.0.113.9"
