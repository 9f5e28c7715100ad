"""What passes between a worker and a picture's child over their socket: frames of a
kind and a length. The job goes to the child pickled (the worker trusts what it
sends); the answer comes back as JSON and raw bytes, never as a pickle, so a child
that a hostile picture took over can at most lie about its picture, not run code in
the worker that reads its answer."""

from __future__ import annotations

import json
import socket
import struct
from typing import Any

from broker.domain.pictures.model import PictureFile, Refusal, Rendered

# The frames' kinds: to the server, the child's wall-clock deadline; to the child, its
# job; from the child, its answer; from the server, how the child ended.
DEADLINE, JOB, ANSWER, EXIT = b"D", b"J", b"A", b"X"
_HEAD = struct.Struct(">cQ")  # a frame: its kind, then its length
MAX_ANSWER = 4 * 1024**3  # what one picture's files may add up to


class UnreadableAnswer(Exception):
    """A child's answer that is not one this module writes."""


def send(connection: socket.socket, kind: bytes, payload: bytes) -> None:
    connection.sendall(_HEAD.pack(kind, len(payload)) + payload)


def receive(connection: socket.socket, limit: int = MAX_ANSWER) -> tuple[bytes, bytes] | None:
    """The next frame's kind and payload; None when the other end closed between frames."""
    head = _exactly(connection, _HEAD.size, allow_end=True)
    if head is None:
        return None
    kind, length = _HEAD.unpack(head)
    if length > limit:
        raise UnreadableAnswer(f"a frame of {length} bytes")
    return kind, _exactly(connection, length) or b""


def _exactly(connection: socket.socket, count: int, allow_end: bool = False) -> bytes | None:
    chunks, left = [], count
    while left:
        chunk = connection.recv(min(left, 1024 * 1024))
        if not chunk:
            if allow_end and left == count:
                return None
            raise EOFError("the other end closed mid-frame")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def encode_rendered(outcome: Rendered) -> bytes:
    """The outcome as a JSON header (its length first) and its files' bytes after it."""
    files = [f for f in (outcome.served, *outcome.renditions) if f is not None]
    header = {
        "refusal": [outcome.refusal.code, outcome.refusal.detail] if outcome.refusal else None,
        "served": outcome.served is not None,
        "files": [[f.content_type, f.width, f.height, f.name, len(f.data)] for f in files],
        "metadata": [len(block) for block in outcome.metadata],
    }
    text = json.dumps(header).encode()
    return b"".join([struct.pack(">I", len(text)), text, *(f.data for f in files),
                     *outcome.metadata])


def decode_rendered(payload: bytes) -> Rendered:
    """`encode_rendered`'s outcome back, every field checked for its type and size."""
    try:
        (length,) = struct.unpack_from(">I", payload)
        header = json.loads(payload[4:4 + length])
        blobs = _Blobs(payload, 4 + length)
        refusal = header["refusal"]
        files = [PictureFile(content_type=_text(kind), width=_count(width),
                             height=_count(height), name=_text(name),
                             data=blobs.take(_count(size)))
                 for kind, width, height, name, size in header["files"]]
        metadata = tuple(blobs.take(_count(size)) for size in header["metadata"])
        blobs.finished()
        served = files.pop(0) if header["served"] is True and files else None
        return Rendered(
            refusal=Refusal(_text(refusal[0]), _text(refusal[1])) if refusal else None,
            served=served, renditions=tuple(files), metadata=metadata)
    except (ValueError, TypeError, KeyError, IndexError, struct.error) as exc:
        raise UnreadableAnswer(str(exc)) from exc


class _Blobs:
    def __init__(self, payload: bytes, start: int) -> None:
        self.payload, self.at = payload, start

    def take(self, size: int) -> bytes:
        if self.at + size > len(self.payload):
            raise ValueError("the answer is shorter than its header says")
        self.at += size
        return self.payload[self.at - size:self.at]

    def finished(self) -> None:
        if self.at != len(self.payload):
            raise ValueError("the answer is longer than its header says")


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("text expected")
    return value


def _count(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise TypeError("a count expected")
    return value
