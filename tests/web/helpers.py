"""Steps of the sign-in flow as a browser without JavaScript performs them."""

from __future__ import annotations

from starlette.testclient import TestClient

from tests.conftest import SMTPServer, code_in, csrf_from, link_in, local_path


def ask_for_link(client: TestClient, email: str, **headers: str):  # type: ignore[no-untyped-def]
    page = client.get("/signin", headers=headers)
    return client.post("/signin", data={"email": email, "csrf_token": csrf_from(page.text)}, headers=headers)


def sign_in_by_link(client: TestClient, smtp: SMTPServer, email: str, count: int = 1):  # type: ignore[no-untyped-def]
    ask_for_link(client, email)
    message = smtp.wait_for(email, count=count)
    continue_page = client.get(local_path(link_in(message)))
    assert continue_page.status_code == 200, continue_page.text
    return client.post(
        "/signin/link",
        data={"token": link_in(message).split("token=")[1], "csrf_token": csrf_from(continue_page.text)},
        follow_redirects=False,
    )


def sign_in_by_code(client: TestClient, smtp: SMTPServer, email: str, count: int = 1):  # type: ignore[no-untyped-def]
    sent = ask_for_link(client, email)
    message = smtp.wait_for(email, count=count)
    return client.post(
        "/signin/code", data={"code": code_in(message), "csrf_token": csrf_from(sent.text)}, follow_redirects=False
    )
