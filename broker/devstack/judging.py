"""The validator's side of the development stack: the queue worker (or the push
receiver and its sweeper) and the webhook deliverer, on threads of this process."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from broker.compose import Parts
from broker.provision import provision_push
from broker.runtimes.push_receiver import PushReceiver, serve_push
from broker.runtimes.sqs_worker import run_worker
from broker.validator.sweep import run_sweeper

log = logging.getLogger(__name__)

QUEUE_NAME = "uploads-events"  # the event queue, or the push topic


@dataclass
class Judging:
    """What judges uploads for the stack, until `stop()`."""

    parts: Parts
    host: str = "127.0.0.1"
    push_port: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _push_server: Any = None

    def start(self) -> None:
        settings = self.parts.settings
        validator = self.parts.validator
        self.parts.start_deliverer(self._stop)
        self.parts.start_rejudger(self._stop)
        if settings.events == "http":
            assert settings.event_token is not None
            token = settings.event_token.get_secret_value()
            self._push_server = serve_push(PushReceiver(validator, token), self.host,
                                           self.push_port)
            url = f"http://{self.host}:{self._push_server.server_port}/events/{token}"
            provision_push(self.parts.clients, settings, QUEUE_NAME, url)
            log.info("validator receiving pushed events on %s:%s", self.host,
                     self._push_server.server_port)
            self._thread = threading.Thread(target=run_sweeper, name="sweeper", daemon=True,
                                            args=(validator, self._stop))
        else:
            assert settings.queue_url is not None
            self._thread = threading.Thread(
                target=run_worker, name="validator-worker", daemon=True,
                args=(validator, self.parts.clients.sqs, settings.queue_url, self._stop),
                kwargs={"wait_seconds": 1},
            )
        self._thread.start()

    def stop(self) -> None:
        """Stop taking work; what is being judged is finished first."""
        self._stop.set()
        if self._push_server is not None:
            self._push_server.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=10)
