"""Where moto, the embedded emulator, differs from a real store in ways the product
would notice, mended before it serves (in the emulator's process only).

moto announces a stored object (ObjectCreated) before the request that stores it has
set its metadata and content type, so a validator quick enough read an object that was
not yet whole. Here every announcement waits for the end of the request that made it,
as a real store announces only what it has stored.

moto's queue deletes a message by building a new list of the others and putting it in
place of the old: a message sent meanwhile, from another request's thread, was dropped
with the old list, and its upload never judged. Here a delete holds the queue's lock,
which every send takes too. And a receive checked each message's retention by working
out every attribute of the queue, counting its messages among them: here it reads
the one attribute it needs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any


class _Announcements(threading.local):
    """The storage events a request raised, held until it has finished (None: none held)."""

    held: list[tuple[Any, ...]] | None = None


def announce_when_stored() -> Callable[[Callable[[], Iterable[bytes]]], Iterable[bytes]]:
    """Hold moto's storage events while a request is answered; send them once it is
    done. Returns the wrapper every request runs in."""
    from moto.s3 import notifications

    send_now = notifications.send_event
    pending = _Announcements()

    def send_or_hold(*event: Any) -> None:
        if pending.held is None:
            send_now(*event)
        else:
            pending.held.append(event)

    def answering(respond: Callable[[], Iterable[bytes]]) -> Iterable[bytes]:
        pending.held = []
        try:
            return respond()
        finally:
            held, pending.held = pending.held, None
            for event in held:
                send_now(*event)

    notifications.send_event = send_or_hold  # type: ignore[assignment]
    return answering


def mend_queues() -> None:
    """moto's SQS: a delete and a send exclude each other, and a receive checks each
    message's retention from that one attribute (see the module's notes)."""
    from moto.core.utils import unix_time
    from moto.sqs.models import Message, Queue, SQSBackend

    delete = Queue.delete_message

    def delete_under_lock(self: Queue, receipt_handle: str) -> None:
        with self._messages_lock:  # a Condition on an RLock, taken by add_message too
            delete(self, receipt_handle)

    def retained(self: SQSBackend, queue_name: str, message: Message) -> bool:
        queue = self.get_queue(queue_name)  # its attributes are set on it by name
        period = float(queue.message_retention_period)  # type: ignore[attr-defined]
        return period + message.sent_timestamp / 1000 > unix_time()  # type: ignore[operator]

    Queue.delete_message = delete_under_lock  # type: ignore[method-assign]
    SQSBackend.is_message_valid_based_on_retention_period = retained  # type: ignore[method-assign]
