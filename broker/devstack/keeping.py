"""What `broker run` keeps between runs: the emulator's objects, mirrored to a folder.

The emulator holds its buckets in memory. The mirror runs in the emulator's process and
reads them there: every couple of seconds it copies each new or changed object (bytes,
headers and metadata) into the folder, and once more when the emulator stops. The next
`broker run` puts them back through the S3 API before it serves, so the public URLs and
private downloads an app stored answer again after a restart; a `kill -9` loses at
most the last interval. Each pass lists every bucket and reads only the objects that
are not the very ones the last pass saw (moto stores every write as a new object): over
20,000 files an unchanged pass takes milliseconds, where comparing every file's ETag held
the emulator's interpreter for a tenth of a second. With many changes the passes space
out: the mirror takes at most a twentieth of the time. What a pass changes is
appended to a journal beside the index, which is rewritten whole only now and then
and at stop (rewriting tens of thousands of entries every pass stalled the emulator).
A kept file is forgotten only once this run has seen it stored and then gone, so a
pass before the files are put back forgets none. The records are kept by their own
SQLite file beside it.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)

SYNC_SECONDS = 2.0
# The pause after a pass is at least this many times as long as the pass took.
PAUSE_PER_PASS = 19
INDEX = "index.json"
JOURNAL = "journal.jsonl"  # [key, entry] kept or [key, null] forgotten, since the index
OBJECTS = "objects"
_HEADERS = ("ContentType", "ContentDisposition", "CacheControl", "Metadata")
_USER_METADATA = "x-amz-meta-"


class Stored(Protocol):
    """An object as stored: the store replaces it with another whenever it changes."""

    @property
    def etag(self) -> str: ...


class Buckets(Protocol):
    """Where the mirror reads stored objects from."""

    def listing(self, bucket: str) -> dict[str, Stored]:
        """Every current object in `bucket`, by key (none: a bucket not made yet)."""

    def fetch(self, bucket: str, key: str) -> tuple[bytes, dict[str, Any]] | None:
        """The object's bytes and headers (`_HEADERS`); None when it is gone."""


class EmulatorBuckets:
    """The buckets of the moto emulator in this process, read in its memory: no request
    of the emulator's own for every file kept. moto stores every write (a put, a copy,
    a finished multipart upload) as a new object."""

    def listing(self, bucket: str) -> dict[str, Stored]:
        # Each name's versions; a copy, as others store meanwhile.
        return {name: found for name, versions in list(dict.items(self._keys(bucket)))
                if (found := _latest(versions)) is not None}

    def fetch(self, bucket: str, key: str) -> tuple[bytes, dict[str, Any]] | None:
        found = _latest(dict.get(self._keys(bucket), key, []))
        if found is None:
            return None
        metadata = {name.lower(): value for name, value in dict(found.metadata).items()}
        headers = {"ContentType": metadata.get("content-type"),
                   "ContentDisposition": metadata.get("content-disposition"),
                   "CacheControl": metadata.get("cache-control"),
                   "Metadata": {name[len(_USER_METADATA):]: value
                                for name, value in metadata.items()
                                if name.startswith(_USER_METADATA)}}
        return found.value, {name: value for name, value in headers.items() if value}

    @staticmethod
    def _keys(bucket: str) -> Any:
        from moto.core.models import DEFAULT_ACCOUNT_ID
        from moto.s3.models import s3_backends

        found = s3_backends[DEFAULT_ACCOUNT_ID]["aws"].buckets.get(bucket)
        return found.keys if found is not None else {}


def _latest(versions: list[Any]) -> Any:
    """The current object among a name's versions (the latest last); None when that is
    a delete marker, or there is none."""
    return versions[-1] if versions and type(versions[-1]).__name__ == "FakeKey" else None


def restore(s3: S3Client, buckets: Iterable[str], folder: Path) -> int:
    """Put the objects kept by the last run back into storage; how many."""
    restored = 0
    for bucket in buckets:
        for key, entry in kept_in(folder, bucket).items():
            body = (folder / bucket / OBJECTS / entry["file"]).read_bytes()
            headers = {name: entry[name] for name in _HEADERS if entry.get(name)}
            s3.put_object(Bucket=bucket, Key=key, Body=body, **headers)
            restored += 1
    return restored


class StorageMirror:
    """The objects of `buckets`, mirrored into `folder` (one sub-folder a bucket)."""

    def __init__(self, source: Buckets, buckets: tuple[str, ...], folder: Path) -> None:
        self._source = source
        self._buckets = buckets
        self._folder = folder
        self._listed: dict[str, dict[str, Stored]] = {}  # by bucket, at the last pass
        self._kept: dict[str, dict[str, dict[str, Any]]] = {}  # by bucket, as on disk
        self._journaled: dict[str, int] = {}  # entries written to each journal
        self._lock = threading.Lock()  # one sync at a time: the thread's and the last
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._sync_until_stopped,
                                        name="storage-mirror", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop syncing, after a last sync of everything stored until now."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.sync()
        with self._lock:
            for bucket in self._kept:
                self._rewrite_index(bucket)

    def sync(self) -> None:
        """Copy what changed since the last sync; forget what was deleted."""
        with self._lock:
            for bucket in self._buckets:
                self._sync_bucket(bucket)

    def _sync_until_stopped(self) -> None:
        pause = SYNC_SECONDS
        while not self._stop.wait(pause):
            started = time.monotonic()
            try:
                self.sync()
            except Exception:  # a full disk: try again
                log.exception("keeping the stored files failed; trying again")
            pause = max(SYNC_SECONDS, PAUSE_PER_PASS * (time.monotonic() - started))

    def _sync_bucket(self, bucket: str) -> None:
        folder = self._folder / bucket
        if bucket not in self._kept:  # read once; the next run restores from the files
            self._kept[bucket] = kept_in(self._folder, bucket)
            self._journaled[bucket] = 0
            (folder / OBJECTS).mkdir(parents=True, exist_ok=True)
        kept = self._kept[bucket]
        listed = self._listed.get(bucket, {})
        stored = self._source.listing(bucket)
        changes: list[tuple[str, dict[str, Any]]] = []
        for key, found in stored.items():
            if listed.get(key) is found:
                continue  # the very object the last pass saw: nothing to copy
            etag = found.etag
            if kept.get(key, {}).get("ETag") != etag or key in listed:  # new, or rewritten
                entry = self._keep(bucket, key, etag, folder / OBJECTS)
                if entry is None:
                    continue  # deleted since it was listed: the next sync forgets it
                kept[key] = entry
                changes.append((key, entry))
        gone: list[tuple[str, None]] = []
        # Only what this run listed and is now gone: not a kept file not yet put back.
        for key in listed.keys() - stored.keys():
            if key in kept:
                (folder / OBJECTS / kept.pop(key)["file"]).unlink(missing_ok=True)
                gone.append((key, None))
        self._listed[bucket] = stored
        if not changes and not gone:
            return
        with open(folder / JOURNAL, "a+b") as journal:  # at its end
            if journal.tell():
                journal.seek(-1, os.SEEK_END)
                if journal.read(1) != b"\n":
                    journal.write(b"\n")  # after a line a crash cut short
            journal.writelines(json.dumps(change).encode() + b"\n"
                               for change in (*changes, *gone))
        self._journaled[bucket] += len(changes) + len(gone)
        if self._journaled[bucket] > max(1000, len(kept)):  # longer than the index
            self._rewrite_index(bucket)

    def _rewrite_index(self, bucket: str) -> None:
        """The whole index written anew, then the journal it holds emptied."""
        folder = self._folder / bucket
        _write_atomically(folder / INDEX, json.dumps(self._kept[bucket]).encode())
        (folder / JOURNAL).unlink(missing_ok=True)
        self._journaled[bucket] = 0

    def _keep(self, bucket: str, key: str, etag: str, folder: Path
              ) -> dict[str, Any] | None:
        """Copy one object to disk; None when it is gone already. One changed since it
        was listed is copied again at the next pass."""
        found = self._source.fetch(bucket, key)
        if found is None:
            return None
        body, headers = found
        name = quote(key, safe="")
        _write_atomically(folder / name, body)
        return {"file": name, "ETag": etag, **headers}


def kept_in(folder: Path, bucket: str) -> dict[str, dict[str, Any]]:
    """What is kept of a bucket, by key: the index, and the journal's changes since."""
    path = folder / bucket / INDEX
    found: dict[str, dict[str, Any]] = json.loads(path.read_text()) if path.exists() else {}
    journal = folder / bucket / JOURNAL
    if journal.exists():
        for line in journal.read_text(encoding="utf-8").splitlines():
            try:
                key, entry = json.loads(line)
            except ValueError:
                continue  # a line a crash cut short: that pass is lost, as said
            if entry is None:
                found.pop(key, None)
            else:
                found[key] = entry
    return found


def _write_atomically(path: Path, data: bytes) -> None:
    """A crash leaves the old file or the new one, never half of one."""
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    os.replace(partial, path)
