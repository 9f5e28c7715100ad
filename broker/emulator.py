"""The embedded emulator (moto's S3, SQS and DynamoDB) served in-process by waitress.

moto's own server (werkzeug's development server) starts a thread for every
connection and closes it after every answer, so each call the broker and the
validator made paid a TCP connect and a thread start that no real store costs:
under load, a third of `broker run`'s CPU. waitress keeps connections alive and
answers from a fixed pool of threads.
"""

from __future__ import annotations

import threading
from typing import Any

THREADS = 16  # answers at once: the broker's and the validator's calls in flight


class EmbeddedEmulator:
    """moto on host:port (0: a free port), in a background thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        from moto.moto_server.werkzeug_app import (  # the emulator is a local-only extra
            DomainDispatcherApplication,
            create_backend_app,
        )
        from waitress.server import create_server

        self._server: Any = create_server(
            DomainDispatcherApplication(create_backend_app), host=host, port=port,
            threads=THREADS, ident="emulator", clear_untrusted_proxy_headers=True,
            channel_timeout=60)
        self._thread = threading.Thread(target=self._server.run, name="emulator",
                                        daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self._server.socket.getsockname()[:2]
        return f"http://{host}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.close()  # stops listening; open connections end with the process
        self._server.task_dispatcher.shutdown()
