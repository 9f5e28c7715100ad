"""Streams of chunks: hashed on the way through, or read as a file."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable, Iterator
from typing import Any


class HashedStream:
    """Passes a stream of chunks through, counting and hashing what goes by; with
    `part_size`, also each `part_size` bytes on their own (what a multipart copy in parts
    of that size must reproduce, part by part)."""

    def __init__(self, chunks: Iterable[bytes], part_size: int | None = None) -> None:
        self._chunks = chunks
        self.size = 0
        self._digest = hashlib.sha256()
        self._part_size = part_size
        self._part = hashlib.sha256()
        self._part_filled = 0
        self.part_digests: list[str] = []

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._chunks:
            self.size += len(chunk)
            self._digest.update(chunk)
            if self._part_size:
                self._hash_parts(chunk)
            yield chunk

    def _hash_parts(self, chunk: bytes) -> None:
        assert self._part_size is not None
        view = memoryview(chunk)
        while view:
            take = min(len(view), self._part_size - self._part_filled)
            self._part.update(view[:take])
            self._part_filled += take
            view = view[take:]
            if self._part_filled == self._part_size:
                self.part_digests.append(self._part.hexdigest())
                self._part, self._part_filled = hashlib.sha256(), 0

    def hexdigest(self) -> str:
        return self._digest.hexdigest()

    def part_hexdigests(self) -> tuple[str, ...]:
        """Every part's SHA-256 (hex), the last, shorter one included."""
        tail = [self._part.hexdigest()] if self._part_filled else []
        return tuple(self.part_digests + tail)


class ChunkReader(io.RawIOBase):
    """A readable file over an iterator of chunks, for upload_fileobj."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = chunk
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size
