"""Wake-ups for requests waiting on an upload's status (`GET /v1/uploads/{id}?wait=N`).

A state change made in this process wakes its waiters at once; changes made by
another process (a validator elsewhere) are seen by the waiter re-reading the
record every `RECHECK` seconds. Nothing here is a source of truth: a missed wake-up
costs at most one re-check interval.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

RECHECK = 1.0


@dataclass
class _Waiters:
    woken: threading.Event = field(default_factory=threading.Event)
    count: int = 0


_lock = threading.Lock()
_waiting: dict[str, _Waiters] = {}
# Set when a state change wrote webhook deliveries: the deliverer sends them at once.
webhooks_due = threading.Event()


def changed(upload_id: str) -> None:
    """The record changed: wake whoever waits on it in this process."""
    with _lock:
        waiters = _waiting.pop(upload_id, None)  # later waiters start a fresh wait
    if waiters is not None:
        waiters.woken.set()


def wait(upload_id: str, timeout: float) -> None:
    """Sleep until the record changes in this process, or `timeout` passes."""
    with _lock:
        waiters = _waiting.setdefault(upload_id, _Waiters())
        waiters.count += 1
    try:
        waiters.woken.wait(timeout)
    finally:
        with _lock:
            waiters.count -= 1
            if waiters.count == 0 and _waiting.get(upload_id) is waiters:
                del _waiting[upload_id]
