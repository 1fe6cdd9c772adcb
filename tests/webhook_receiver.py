"""A real HTTP receiver on 127.0.0.1 standing in for the retailer's systems: it records what it is sent and can be
told to fail the next N deliveries (or to answer with any status)."""

from __future__ import annotations

import dataclasses
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclasses.dataclass(frozen=True)
class ReceivedWebhook:
    path: str
    headers: dict[str, str]
    body: bytes


class WebhookReceiver:
    def __init__(self) -> None:
        self.received: list[ReceivedWebhook] = []
        self.fail_next = 0  # answer 500 to this many deliveries, then 204
        self.status = 204  # the answer once failures are used up
        self.on_receive: Callable[[], object] | None = None  # e.g. move the test clock while a delivery is in hand
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/portal"

    def start(self, sock: socket.socket | None = None) -> WebhookReceiver:
        """Listen on a free port, or on `sock` (from `reserve_port`) when the test already gave its port out."""
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                with receiver._lock:
                    receiver.received.append(
                        ReceivedWebhook(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                    )
                    if receiver.fail_next > 0:
                        receiver.fail_next -= 1
                        status = 500
                    else:
                        status = receiver.status
                    if receiver.on_receive:
                        receiver.on_receive()
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("location", f"http://127.0.0.1:{receiver.port}/elsewhere")
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:  # keep the test output quiet
                pass

        if sock is None:
            self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        else:
            self._server = ThreadingHTTPServer(sock.getsockname(), Handler, bind_and_activate=False)
            self._server.socket.close()  # the one the constructor made, unbound: serve the reserved one instead
            self._server.socket = sock
            self._server.server_activate()
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread:
            self._thread.join(timeout=5)
            self._thread = None
