"""The whole product on loopback: emulator server, validator worker, broker over HTTP."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from werkzeug.serving import make_server

from broker.devstack.stack import DevStack
from broker.settings import Settings
from broker.web import create_app
from tests.samples import SECRET


@contextmanager
def serving(app: Any, port: int) -> Iterator[str]:
    """Serve a WSGI app on loopback from a background thread; yield its origin."""
    server = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class RequestLog:
    """The size of every request body the broker received."""

    sizes: list[int] = field(default_factory=list)

    def wrap(self, wsgi_app: Any) -> Any:
        def recording(environ: dict[str, Any], start_response: Any) -> Any:
            self.sizes.append(int(environ.get("CONTENT_LENGTH") or 0))
            return wsgi_app(environ, start_response)
        return recording


@dataclass
class TestPages:
    """Pages a test serves from the broker's own origin (e.g. an Uppy page)."""

    pages: dict[str, tuple[bytes, str]] = field(default_factory=dict)

    def wrap(self, wsgi_app: Any) -> Any:
        def serving(environ: dict[str, Any], start_response: Any) -> Any:
            found = self.pages.get(environ.get("PATH_INFO", ""))
            if found is None:
                return wsgi_app(environ, start_response)
            body, mimetype = found
            start_response("200 OK", [("Content-Type", mimetype),
                                      ("Content-Length", str(len(body)))])
            return [body]
        return serving


@dataclass
class Running:
    url: str
    settings: Settings
    stack: DevStack
    requests: RequestLog
    pages: TestPages


@pytest.fixture(scope="module")
def running() -> Iterator[Running]:
    """The stack. moto keeps one state per process, so every stack started in a test
    run shares its tables: tests that list uploads use a user no other test uses."""
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    stack = DevStack(emulator_port=free_port(), broker_origin=origin,
                       overrides={"jwt_secret": SECRET})
    try:  # the emulator's process is stopped however the start or the tests end
        settings = stack.start()
        app = create_app(settings.model_dump(), clients=stack.clients)
        log = RequestLog()
        pages = TestPages()
        app.wsgi_app = pages.wrap(log.wrap(app.wsgi_app))  # type: ignore[method-assign]
        with serving(app, port):
            yield Running(origin, settings, stack, log, pages)
    finally:
        stack.stop()
