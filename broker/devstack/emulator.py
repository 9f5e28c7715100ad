"""The embedded emulator (moto's S3, SQS and DynamoDB), served by waitress in a child
process of `broker run`.

moto's own server (werkzeug's development server) starts a thread for every
connection and closes it after every answer, so each call the broker and the
validator made paid a TCP connect and a thread start that no real store costs:
under load, a third of `broker run`'s CPU. waitress keeps connections alive and
answers from a fixed pool of threads. In a process of its own, the emulator works
on the machine's other core instead of taking turns with the broker and the
validator for one interpreter; it exits with the process that started it.

Where moto differs from a real store in ways the product would notice, it is mended
first (`moto_mends`).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from broker.common.long_lived import freeze_survivors
from broker.devstack import children
from broker.devstack.fast_lane import FastLane
from broker.devstack.keeping import EmulatorBuckets, StorageMirror
from broker.devstack.moto_mends import (
    announce_when_stored,
    mend_queues,
    mend_version_listing,
)

THREADS = 16  # answers at once: the broker's and the validator's calls in flight
START_TIMEOUT = 30.0


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Kept:
    """Buckets whose objects the emulator mirrors into a folder (see `keeping`)."""

    folder: Path
    buckets: tuple[str, ...]


class EmbeddedEmulator:
    """moto on host:port (0: a free port), in a child process; `keep` mirrors buckets."""

    MODULE = "broker.devstack.emulator"  # what the child runs: its `main()` serves

    def __init__(self, host: str = "127.0.0.1", port: int = 0, keep: Kept | None = None
                 ) -> None:
        self.host = host
        self.port = port or _free_port(host)
        self.keep = keep
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        # stderr is ours, never a pipe left unread: a full pipe would block the emulator
        # the next time it logs an error, and every request with it.
        keeping = [] if self.keep is None else [
            "--keep", str(self.keep.folder),
            *(arg for bucket in self.keep.buckets for arg in ("--keep-bucket", bucket))]
        self._process = children.spawn(self.MODULE, "--host", self.host,
                                        "--port", str(self.port), *keeping,
                                        stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError("the emulator did not start: see its errors above")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the emulator did not answer on {self.endpoint} "
                           f"within {START_TIMEOUT:.0f} s")

    def __enter__(self) -> EmbeddedEmulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self._process is not None:
            children.stop(self._process)
            self._process = None


def _dispatcher() -> Any:
    """moto's request router, remembering which backend answers each host: moto looks it
    up again on every request, under one lock, listing its own package directory. The
    frequent request shapes take the fast lane in front of it. Each request's storage
    events are sent once it has stored everything."""
    from moto.moto_server.werkzeug_app import (  # the emulator is a local-only extra
        DomainDispatcherApplication,
        create_backend_app,
    )

    answering = announce_when_stored()
    mend_queues()
    mend_version_listing()

    class Dispatcher(DomainDispatcherApplication):
        def __init__(self) -> None:
            super().__init__(create_backend_app)
            self._backends: dict[str | None, object] = {}

        def get_backend_for_host(self, host: str | None) -> object:
            if host not in self._backends:  # callers hold self.lock
                self._backends[host] = super().get_backend_for_host(host)
            return self._backends[host]

    lane = FastLane(Dispatcher())

    def serve_request(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        return answering(lambda: lane(environ, start_response))

    return serve_request


def _bodiless_kept_alive() -> type:
    """waitress's connection, kept open after an answer that has no body to delimit.
    waitress closes the connection after any answer without a Content-Length, a 204
    among them, which must have none: each DELETE cost the validator a new connection."""
    from waitress.channel import HTTPChannel
    from waitress.task import WSGITask

    class BodilessKeptAlive(WSGITask):
        _bodiless = False

        def build_response_header(self) -> bytes:
            asked: dict[str, str] = getattr(self.request, "headers", {})
            self._bodiless = not self.has_body and self.version == "1.1" \
                and asked.get("CONNECTION", "").lower() != "close"
            try:
                return super().build_response_header()
            finally:
                self._bodiless = False

        def set_close_on_finish(self) -> None:
            if not self._bodiless:  # the client asked to close, or an error: as waitress
                super().set_close_on_finish()

    class Channel(HTTPChannel):
        task_class = BodilessKeptAlive

    return Channel


def main() -> None:
    parser = argparse.ArgumentParser(description="the embedded S3/SQS/DynamoDB emulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--parent", type=int, default=0)
    parser.add_argument("--keep", type=Path, help="mirror the buckets into this folder")
    parser.add_argument("--keep-bucket", action="append", default=[])
    args = parser.parse_args()
    from waitress.server import BaseWSGIServer, create_server

    children.exit_with(args.parent)
    freeze_survivors()  # what it stores lives as long as it does
    dispatcher = _dispatcher()
    if args.keep is not None:
        mirror = StorageMirror(EmulatorBuckets(), tuple(args.keep_bucket), args.keep)
        mirror.start()

        def last_sync_then_exit(*_: object) -> None:  # the stop `broker run` asks for
            mirror.stop()
            os._exit(0)

        signal.signal(signal.SIGTERM, last_sync_then_exit)
    server = create_server(dispatcher, host=args.host, port=args.port,
                           threads=THREADS, ident="emulator", channel_timeout=60)
    assert isinstance(server, BaseWSGIServer)  # one host and port: one server
    server.channel_class = _bodiless_kept_alive()
    server.run()


if __name__ == "__main__":
    main()
