"""`python -m tests.browser.live_portal FD`: the portal under uvicorn, as `portal serve` runs it, on the listening
socket the browser tests bound and passed down as file descriptor FD.

The test process binds port 0 and keeps the socket until this process has inherited it, so it knows the port before
the server starts and no other process can take the port in between (`portal serve --port` would have to be given
a port that was free a moment earlier, and bind it again).
"""

from __future__ import annotations

import logging
import socket
import sys
from collections.abc import Sequence

import uvicorn

from portal.app import create_app
from portal.cli import uvicorn_options
from portal.settings import load_settings


def main(argv: Sequence[str]) -> int:
    (fd,) = argv
    listening = socket.socket(fileno=int(fd))
    settings = load_settings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = uvicorn.Config(create_app(settings), **uvicorn_options(settings))  # as `portal serve` runs it
    uvicorn.Server(config).run(sockets=[listening])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
