"""`broker run`'s emulator on a starved machine: every stored object's metadata and
content type are set a random 0 to 300 ms after the object itself, the gap in which
moto announces it. With LATE_METADATA_ANNOUNCE=early it is announced at once, in that
gap, as a store that announces an object before it is whole would."""

from __future__ import annotations

import os
import random
import time
from typing import Any

from moto.s3.models import FakeKey

from broker.devstack import emulator

LATEST = 0.3


def _late(set_metadata: Any) -> Any:
    def later(self: FakeKey, *args: Any, **kwargs: Any) -> None:
        time.sleep(random.uniform(0, LATEST))
        set_metadata(self, *args, **kwargs)
    return later


def _as_moto_does() -> Any:
    return lambda respond: respond()


if __name__ == "__main__":
    FakeKey.set_metadata = _late(FakeKey.set_metadata)  # type: ignore[method-assign]
    if os.environ.get("LATE_METADATA_ANNOUNCE") == "early":
        emulator.announce_when_stored = _as_moto_does
    emulator.main()
