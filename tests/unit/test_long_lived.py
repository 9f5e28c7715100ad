"""The development stack's full garbage collections leave alone what survived the last
one, and still collect the garbage made since."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from broker.common.long_lived import SurvivorFreezer


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture
def freezer() -> Iterator[SurvivorFreezer]:
    made = SurvivorFreezer()
    gc.disable()  # only the collections a test asks for
    try:
        yield made
    finally:
        gc.enable()
        made.close()


def test_what_survives_a_full_collection_is_not_walked_again(
        freezer: SurvivorFreezer) -> None:
    already = gc.get_freeze_count()
    stored = [Node() for _ in range(50_000)]  # as the emulator keeps what it stores
    freezer.maybe_freeze()
    assert gc.get_freeze_count() == already  # nothing frozen before a full collection
    gc.collect()
    freezer.maybe_freeze()
    assert gc.get_freeze_count() >= already + len(stored)
    walked = sum(len(gc.get_objects(generation)) for generation in range(3))
    assert walked < len(stored)  # the next full collection no longer walks them


def test_garbage_made_after_a_freeze_is_still_collected(freezer: SurvivorFreezer) -> None:
    gc.collect()
    freezer.maybe_freeze()
    first, second = Node(), Node()
    first.other, second.other = second, first  # a cycle: reference counts cannot free it
    gone = weakref.ref(first)
    del first, second
    gc.collect()
    assert gone() is None
