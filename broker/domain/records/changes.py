"""Wake-ups for requests waiting on an upload's status (`GET /v1/uploads/{id}?wait=N`).

A state change made in this process wakes its waiters at once, and is forwarded
to another process when one asked (`broker run`'s validator tells its broker);
changes made elsewhere are heard where the records store announces them (PostgreSQL's
NOTIFY), and otherwise (a validator on Lambda, DynamoDB) seen by the waiter re-reading
the record: soon at first, as a verdict usually lands within a few hundred
milliseconds, then less often, up to every `RECHECK` seconds. Nothing here is a source
of truth: a missed wake-up costs at most one re-check interval.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

RECHECK = 1.0


def rechecks(heard_elsewhere: bool) -> Iterator[float]:
    """How long a waiter waits before each re-read: every `RECHECK` where changes made
    elsewhere wake it too; else from an eighth of that, doubling up to it."""
    pause = RECHECK if heard_elsewhere else RECHECK / 8
    while True:
        yield pause
        pause = min(pause * 2, RECHECK)


@dataclass
class _Waiters:
    woken: threading.Event = field(default_factory=threading.Event)
    count: int = 0


_lock = threading.Lock()
_waiting: dict[str, _Waiters] = {}
# Set when a state change wrote webhook deliveries: the deliverer sends them at once.
webhooks_due = threading.Event()
# Where to announce this process's changes as well: another process's waiters.
_forward: Callable[[str], None] | None = None


def forward_changes(to: Callable[[str], None]) -> None:
    global _forward
    _forward = to


def changed(upload_id: str) -> None:
    """The record changed: wake whoever watches it in this process."""
    with _lock:
        waiters = _waiting.pop(upload_id, None)  # later watches start afresh
    if waiters is not None:
        waiters.woken.set()
    if _forward is not None:
        _forward(upload_id)


class Watch:
    """Interest in an upload's next change, taken *before* reading the record, so a
    change landing between the read and the wait still wakes the waiter."""

    def __init__(self, upload_id: str) -> None:
        self._id = upload_id
        with _lock:
            self._waiters = _waiting.setdefault(upload_id, _Waiters())
            self._waiters.count += 1

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, *exc: object) -> None:
        with _lock:
            self._waiters.count -= 1
            if self._waiters.count == 0 and _waiting.get(self._id) is self._waiters:
                del _waiting[self._id]

    def wait(self, timeout: float) -> None:
        """Sleep until the record changes in this process, or `timeout` passes."""
        self._waiters.woken.wait(timeout)
