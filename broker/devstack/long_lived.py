"""Full garbage collections that do not walk again what has already survived one.

The emulator keeps every object and message it stores for its whole life, and each
full collection of the cyclic garbage collector walked all of them with the
interpreter held: measured under load, pauses of 0.1 to 0.4 s every few seconds,
which every request in flight waited out. Here whatever survives a full collection is
moved out of the collector's sight (`gc.freeze`), so later ones walk only what is
newer. Reference counting still frees those objects; only a reference cycle formed
among them afterwards would stay, which the emulator's stored data does not make.
"""

from __future__ import annotations

import gc
from typing import Any

OLDEST = 2  # the generation a full collection collects


class SurvivorFreezer:
    """Freezes what survives each full collection, at the next `maybe_freeze()`: not
    from inside the collector's own callback."""

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
