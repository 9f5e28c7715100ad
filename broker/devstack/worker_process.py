"""`broker run`'s validator in a process of its own.

The broker and the validator each get an interpreter (and a core) of their own, as
in production, instead of taking turns for one. The parent sends the stack's
settings on stdin; the child says `ready` once it judges, then the id of every
upload whose record it changed, one per line, so the broker's long polls wake at once.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import threading
from typing import IO, Any

from pydantic import SecretStr

from broker.common.long_lived import freeze_survivors
from broker.devstack import children
from broker.domain.records import changes as record_changes
from broker.settings import Settings, load_settings

READY = "ready"
START_TIMEOUT = 60.0


def _revealed(settings: Settings) -> dict[str, Any]:
    """The settings as JSON can carry them, secrets included (they go down a pipe)."""
    plain = settings.model_dump()
    return {name: value.get_secret_value() if isinstance(value, SecretStr)
            else str(value) if name.endswith("_file") and value is not None else value
            for name, value in plain.items()}


class WorkerProcess:
    """The validator worker (queue or push receiver, sweeper, webhook deliverer) in a
    child process; its changes wake this process's waiters."""

    def __init__(self, settings: Settings, host: str, push_port: int) -> None:
        self._settings = settings
        self._args = ("--host", host, "--push-port", str(push_port))
        self._process: subprocess.Popen[bytes] | None = None
        self._ready = threading.Event()
        self._reader: threading.Thread | None = None

    def start(self) -> None:
        # stderr is ours: the validator's log lines appear with the broker's.
        self._process = children.spawn("broker.devstack.worker_process", *self._args,
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps(_revealed(self._settings)).encode() + b"\n")
        self._process.stdin.close()
        self._reader = threading.Thread(target=self._relay, args=(self._process.stdout,),
                                        name="worker-changes", daemon=True)
        self._reader.start()
        if not self._ready.wait(START_TIMEOUT) or self._process.poll() is not None:
            self.stop()
            raise RuntimeError("the validator worker did not start: see its errors above")

    def _relay(self, lines: IO[bytes]) -> None:
        for line in lines:
            upload_id = line.decode().strip()
            if upload_id == READY:
                self._ready.set()
            else:
                record_changes.changed(upload_id)
        self._ready.set()  # ended: start() sees the exit rather than waiting out its timeout

    def stop(self) -> None:
        if self._process is not None:
            children.stop(self._process)
            self._process = None


def main() -> None:
    parser = argparse.ArgumentParser(description="broker run's validator worker")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--push-port", type=int, default=0)
    parser.add_argument("--parent", type=int, default=0)
    args = parser.parse_args()
    children.exit_with(args.parent)
    freeze_survivors()  # what it loaded lives as long as it does
    from broker.common import logs
    from broker.compose import compose
    from broker.devstack.judging import Judging

    settings = load_settings(**json.loads(sys.stdin.readline()))
    logs.configure(settings.log_format, settings.log_level)
    told = threading.Lock()

    def tell(line: str) -> None:
        with told:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    record_changes.forward_changes(tell)
    judging = Judging(compose(settings), args.host, args.push_port)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.set())
    judging.start()
    tell(READY)
    while not stopping.wait(1):
        pass
    judging.stop()  # finishes what is being judged


if __name__ == "__main__":
    main()
