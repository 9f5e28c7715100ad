"""How the long-running commands treat their process: signals, ports."""

from __future__ import annotations

import signal
import socket


def port_free(host: str, port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex((host, port)) != 0


def stop_on_signals() -> None:
    """Ctrl-C and SIGTERM both stop the stack cleanly, even when started in the background."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
