"""Full garbage collections that do not walk again what has already survived one.

The development stack's processes keep what they loaded, and the emulator every object
and message it stores, for their whole life; each full collection of the cyclic
garbage collector walked all of it with the interpreter held. Measured under load:
pauses of 0.1 to 0.4 s every few seconds in the emulator, and about 45 ms in the broker
and the validator, which every request in flight waited out. Here whatever survives a
full collection is moved out of the collector's sight (`gc.freeze`), so later ones
walk only what is newer. Reference counting still frees those objects; only a
reference cycle formed among them afterwards would stay.
"""

from __future__ import annotations

import gc
import threading
import time
from typing import Any

OLDEST = 2  # the generation a full collection collects
LOOK_EVERY_SECONDS = 1.0


class SurvivorFreezer:
    """Freezes what survives each full collection, soon after it: not from inside the
    collector's own callback, which must take no lock."""

    def __init__(self) -> None:
        self.due = False
        gc.callbacks.append(self._after_collection)

    def _after_collection(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "stop" and info["generation"] == OLDEST:
            self.due = True

    def maybe_freeze(self) -> None:
        if self.due:
            self.due = False
            gc.freeze()

    def close(self) -> None:
        gc.callbacks.remove(self._after_collection)


def freeze_survivors() -> SurvivorFreezer:
    """For the rest of this process, what survives a full collection is frozen within a
    second of it."""
    freezer = SurvivorFreezer()

    def watch() -> None:
        while True:
            time.sleep(LOOK_EVERY_SECONDS)
            freezer.maybe_freeze()

    threading.Thread(target=watch, name="gc-freezer", daemon=True).start()
    return freezer
