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


def finish_stopping() -> None:
    """From here on the stop runs to its end (it saves what the emulator holds, and waits
    for what is being judged): a second Ctrl-C or SIGTERM says so instead of cutting it."""

    def patience(signum: int, frame: object) -> None:
        print("still stopping: saving and finishing, a moment…", flush=True)

    signal.signal(signal.SIGINT, patience)
    signal.signal(signal.SIGTERM, patience)
