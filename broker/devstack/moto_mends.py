"""Where moto, the embedded emulator, differs from a real store in ways the product
would notice, mended before it serves (in the emulator's process only).

moto announces a stored object (ObjectCreated) before the request that stores it has
set its metadata and content type, so a validator quick enough read an object that was
not yet whole. Here every announcement waits for the end of the request that made it,
as a real store announces only what it has stored.

moto's queue deletes a message by building a new list of the others and putting it in
place of the old: a message sent meanwhile, from another request's thread, was dropped
with the old list, and its upload never judged. Here a delete holds the queue's lock,
which every send takes too. And a receive checked each message's retention, and a
send whether the queue deduplicates by content, by working out every attribute of the
queue, counting its messages among them: here an attribute is worked out when read.
A receive also deep-copied each message it handed out, body and all, only to replace
the copy's message attributes with those asked for: a shallow copy serves.

moto lists an object's versions by copying every version of every object in the
bucket, then keeping those under the prefix asked for: the validator's one listing per
verdict cost a fifth of the emulator's work under load. Here only the objects under
the prefix are copied.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
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
    """moto's SQS: a delete and a send exclude each other, a receive checks each
    message's retention from that one attribute, and hands out shallow copies of the
    messages it receives (see the module's notes)."""
    import copy

    from moto.core.utils import unix_time
    from moto.sqs import models
    from moto.sqs.models import Message, Queue, SQSBackend

    delete = Queue.delete_message

    def delete_under_lock(self: Queue, receipt_handle: str) -> None:
        with self._messages_lock:  # a Condition on an RLock, taken by add_message too
            delete(self, receipt_handle)

    def retained(self: SQSBackend, queue_name: str, message: Message) -> bool:
        queue = self.get_queue(queue_name)  # its attributes are set on it by name
        period = float(queue.message_retention_period)  # type: ignore[attr-defined]
        return period + message.sent_timestamp / 1000 > unix_time()  # type: ignore[operator]

    def copied(value: Any, memo: dict[int, Any] | None = None) -> Any:
        # A received message's copy only has its attributes filtered, by replacing them.
        return copy.copy(value) if isinstance(value, Message) else copy.deepcopy(value, memo)

    Queue.delete_message = delete_under_lock  # type: ignore[method-assign]
    models.deepcopy = copied  # type: ignore[attr-defined,assignment]
    Queue.attributes = property(_QueueAttributes)  # type: ignore[assignment,method-assign]
    SQSBackend.is_message_valid_based_on_retention_period = retained  # type: ignore[method-assign]


class _QueueAttributes(Mapping[str, Any]):
    """A queue's attributes as moto works them out, each only when it is read."""

    def __init__(self, queue: Any) -> None:
        self._queue = queue
        names = list(queue.BASE_ATTRIBUTES)
        if queue.fifo_queue:
            names += queue.FIFO_ATTRIBUTES
        if queue.kms_master_key_id:
            names += queue.KMS_ATTRIBUTES
        self._names = dict.fromkeys(names)  # in moto's order, each once

    def __getitem__(self, name: str) -> Any:
        if name not in self._names:
            raise KeyError(name)
        queue = self._queue
        if name == "Policy" and queue.policy:
            return queue.policy
        if name == "RedrivePolicy" and queue.redrive_policy:
            return json.dumps(queue.redrive_policy)
        from moto.core.utils import camelcase_to_underscores

        value = getattr(queue, camelcase_to_underscores(name))
        return str(value).lower() if isinstance(value, bool) else value

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


def mend_version_listing() -> None:
    """moto's version listing copies only the objects under the prefix it is asked for
    (see the module's notes); what it answers is unchanged."""
    from moto.s3.models import S3Backend

    listing = S3Backend.list_object_versions

    def under_prefix(self: S3Backend, bucket_name: str, delimiter: str | None = None,
                     key_marker: str | None = None, max_keys: int | None = 1000,
                     prefix: str = "", version_id_marker: str | None = None) -> Any:
        backend = _BackendUnder(self, prefix) if prefix else self
        return listing(backend, bucket_name, delimiter=delimiter,  # type: ignore[arg-type]
                       key_marker=key_marker, max_keys=max_keys, prefix=prefix,
                       version_id_marker=version_id_marker)

    S3Backend.list_object_versions = under_prefix  # type: ignore[method-assign]


class _BackendUnder:
    """A storage backend whose buckets show only the objects under one prefix to the
    version listing, the one reader it is handed to."""

    def __init__(self, backend: Any, prefix: str) -> None:
        self._backend, self._prefix = backend, prefix

    def get_bucket(self, name: str) -> Any:
        return _BucketUnder(self._backend.get_bucket(name), self._prefix)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)


class _BucketUnder:
    def __init__(self, bucket: Any, prefix: str) -> None:
        self._bucket, self.keys = bucket, _KeysUnder(bucket.keys, prefix)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._bucket, name)


class _KeysUnder:
    def __init__(self, keys: Any, prefix: str) -> None:
        self._keys, self._prefix = keys, prefix

    def iterlists(self) -> Iterable[tuple[str, list[Any]]]:
        for name in list(self._keys):  # a copy: others store and delete meanwhile
            if name.startswith(self._prefix):
                yield name, self._keys.getlist(name, [])
