"""The in-memory moving window behind the per-user upload rate limit."""

from __future__ import annotations

from broker.web.limits import LocalWindow


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_at_most_amount_in_any_window_then_told_how_long_to_wait() -> None:
    clock = Clock()
    window = LocalWindow(3, 60, clock)
    for second in (0, 10, 20):
        clock.now = 1000 + second
        assert window.hit("alice") is None
    clock.now = 1030
    assert window.hit("alice") == 30  # the first one leaves the window at 1060
    assert window.hit("bob") is None  # per owner
    clock.now = 1060
    assert window.hit("alice") is None  # moving: one slot freed, not all three
    assert window.hit("alice") == 10


def test_refused_attempts_do_not_count() -> None:
    clock = Clock()
    window = LocalWindow(1, 60, clock)
    assert window.hit("alice") is None
    for second in range(1, 60):
        clock.now = 1000 + second
        assert window.hit("alice") is not None
    clock.now = 1060
    assert window.hit("alice") is None


def test_idle_owners_are_forgotten_so_memory_follows_the_active_ones() -> None:
    clock = Clock()
    window = LocalWindow(5, 60, clock)
    for n in range(10_000):  # a new user every 10 ms for 100 s
        clock.now = 1000 + n / 100
        assert window.hit(f"user-{n}") is None
    assert len(window) <= 60 * 100 + 2  # about one window's worth of users, not 10,000
    clock.now += 61
    assert window.hit("user-0") is None  # a forgotten owner starts afresh
