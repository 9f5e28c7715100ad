"""A throwaway Redis (Debian's `redis-server`) on loopback, persisting nothing."""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"


def redis_installed() -> bool:
    return shutil.which("redis-server") is not None


class RedisServer:
    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"redis://127.0.0.1:{port}"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        import tempfile
        from pathlib import Path

        from tests.waiting import wait_until_ready

        with tempfile.NamedTemporaryFile(prefix="redis-", suffix=".log", delete=False) as log:
            self._process = subprocess.Popen(
                [REDIS, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no"], stdout=log, stderr=subprocess.STDOUT)
        self._log = Path(log.name)
        try:
            wait_until_ready(f"redis-server on 127.0.0.1:{self.port}", self._answers,
                             process=self._process, log=self._log)
        except BaseException:
            self.stop()
            raise

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs."""
        return self._process.pid if self._process is not None else None

    def _answers(self) -> bool:
        """PING is answered (it is loaded and serving), not only connected to."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as probe:
            probe.sendall(b"PING\r\n")
            return probe.recv(64).startswith(b"+PONG")

    def stop(self) -> None:
        from tests.waiting import stop_process

        if self._process is not None:
            stop_process(self._process)  # SIGTERM, SIGKILL if it hangs; reaped
            self._process = None
            self._log.unlink(missing_ok=True)


@contextmanager
def running_redis(port: int) -> Iterator[RedisServer]:
    server = RedisServer(port)
    server.start()
    try:
        yield server
    finally:
        server.stop()
