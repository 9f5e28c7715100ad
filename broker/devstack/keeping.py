"""What `broker run` keeps between runs: the emulator's objects, mirrored to a folder.

The emulator holds its buckets in memory. The mirror copies each new or changed object
(bytes, headers and metadata) into the folder every couple of seconds and once more
at stop, and puts them back at the next start, so the public URLs and private
downloads an app stored answer again after a restart; a `kill -9` loses at most the
last interval. Each pass lists every bucket, so with many files the passes space out:
the mirror takes at most a twentieth of the time. The records are kept by their own
SQLite file beside it.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)

SYNC_SECONDS = 2.0
# The pause after a pass is at least this many times as long as the pass took.
PAUSE_PER_PASS = 19
INDEX = "index.json"
OBJECTS = "objects"
_HEADERS = ("ContentType", "ContentDisposition", "CacheControl", "Metadata")


class StorageMirror:
    """The objects of `buckets`, mirrored into `folder` (one sub-folder a bucket)."""

    def __init__(self, s3: S3Client, buckets: tuple[str, ...], folder: Path) -> None:
        self._s3 = s3
        self._buckets = buckets
        self._folder = folder
        self._lock = threading.Lock()  # one sync at a time: the thread's and the last
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def restore(self) -> int:
        """Put the kept objects back into the emulator; how many."""
        restored = 0
        for bucket in self._buckets:
            for key, entry in self._index(bucket).items():
                body = (self._folder / bucket / OBJECTS / entry["file"]).read_bytes()
                headers = {name: entry[name] for name in _HEADERS if entry.get(name)}
                self._s3.put_object(Bucket=bucket, Key=key, Body=body, **headers)
                restored += 1
        return restored

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
            except Exception:  # the emulator stopping under us, a full disk: try again
                log.exception("keeping the stored files failed; trying again")
            pause = max(SYNC_SECONDS, PAUSE_PER_PASS * (time.monotonic() - started))

    def _sync_bucket(self, bucket: str) -> None:
        kept = self._index(bucket)
        stored = {o["Key"]: o["ETag"] for page in
                  self._s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
                  for o in page.get("Contents", [])}
        folder = self._folder / bucket
        (folder / OBJECTS).mkdir(parents=True, exist_ok=True)
        changed = False
        for key, etag in stored.items():
            if kept.get(key, {}).get("ETag") != etag:
                entry = self._keep(bucket, key, folder / OBJECTS)
                if entry is None:
                    continue  # deleted since it was listed: the next sync forgets it
                kept[key] = entry
                changed = True
        for key in set(kept) - set(stored):
            (folder / OBJECTS / kept.pop(key)["file"]).unlink(missing_ok=True)
            changed = True
        if changed or not (folder / INDEX).exists():
            _write_atomically(folder / INDEX, json.dumps(kept).encode())

    def _keep(self, bucket: str, key: str, folder: Path) -> dict[str, Any] | None:
        """Copy one object to disk; None when it is gone already."""
        try:
            got = self._s3.get_object(Bucket=bucket, Key=key)
        except self._s3.exceptions.NoSuchKey:
            return None
        name = quote(key, safe="")
        _write_atomically(folder / name, got["Body"].read())
        return {"file": name, "ETag": got["ETag"],
                **{h: got.get(h) for h in _HEADERS if got.get(h)}}

    def _index(self, bucket: str) -> dict[str, dict[str, Any]]:
        path = self._folder / bucket / INDEX
        if not path.exists():
            return {}
        found: dict[str, dict[str, Any]] = json.loads(path.read_text())
        return found


def _write_atomically(path: Path, data: bytes) -> None:
    """A crash leaves the old file or the new one, never half of one."""
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    os.replace(partial, path)
