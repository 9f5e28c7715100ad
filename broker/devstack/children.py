"""Processes of ours that `broker run` starts beside itself (the emulator, the
validator): each works on its own core and exits with the process that started it,
even one killed outright."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

STOP_TIMEOUT = 10.0


def spawn(module: str, *args: str, **popen: Any) -> subprocess.Popen[bytes]:
    """`python -m module args… --parent <this pid>` with this interpreter."""
    return subprocess.Popen(  # noqa: S603 - our own module, our own arguments
        [sys.executable, "-m", module, *args, "--parent", str(os.getpid())], **popen)


def stop(process: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM (finish what is in hand), then SIGKILL after `timeout`."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout)
    for pipe in (process.stdin, process.stdout, process.stderr):
        if pipe is not None:
            pipe.close()


def exit_with(parent: int) -> None:
    """In the child: end this process once the one that started it is gone. Ctrl-C
    reaches the terminal's whole group: the parent stops its children, in order."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(0)

    if parent:
        threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()

