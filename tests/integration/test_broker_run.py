"""`broker run` as a developer runs it: its emulator and its validator in processes
of their own, stopped in order on Ctrl-C, gone with it even when it is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.conftest import free_port
from tests.waiting import wait_for_http

pytestmark = pytest.mark.integration
BROKER = str(Path(sys.executable).parent / "broker")


def _start(scratch: Path) -> tuple[subprocess.Popen[str], list[int]]:
    # Its temporary folders in the test's own: a killed `broker run` cannot remove them;
    # and a project folder of its own, where it keeps its data (.broker/).
    env = {k: v for k, v in os.environ.items() if not k.startswith("BROKER_")} | {
        "TMPDIR": str(scratch)}
    project = scratch.parent / f"{scratch.name}-project"
    project.mkdir(exist_ok=True)
    port = free_port()
    run = subprocess.Popen(
        [BROKER, "run", "--port", str(port), "--emulator-port", str(free_port()),
         "--push-port", str(free_port())], env=env, cwd=project, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", process=run)
        children = Path(f"/proc/{run.pid}/task/{run.pid}/children").read_text().split()
    except BaseException:
        _end(run)
        raise
    return run, [int(pid) for pid in children]


def _end(run: subprocess.Popen[str]) -> None:
    """However a test ends: `broker run` and whatever is left of its group, stopped and
    reaped (a no-op once the test saw it exit)."""
    from tests.waiting import stop_process

    stop_process(run, grace=60, group=True)


def _gone(pid: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def test_ctrl_c_stops_the_validator_and_the_emulator_cleanly(tmp_path: Path) -> None:
    run, children = _start(tmp_path)
    try:
        assert len(children) == 2  # the emulator and the validator worker
        os.killpg(run.pid, signal.SIGINT)  # what the terminal sends the whole group
        out, err = run.communicate(timeout=120)
        assert run.returncode == 0, err
        assert "stopping the broker" in out
        assert "Traceback" not in err  # the validator stopped before the emulator it calls
        assert all(_gone(pid, 30) for pid in children)
        assert list(tmp_path.iterdir()) == []  # its temporary (metrics) folders removed
    finally:
        _end(run)


def test_the_children_exit_when_broker_run_is_killed_outright(tmp_path: Path) -> None:
    run, children = _start(tmp_path)
    try:
        run.kill()
        run.communicate(timeout=60)
        # Each child notices within its 1-second check of its parent, on a busy machine
        # within a few more.
        assert all(_gone(pid, 30) for pid in children)
    finally:
        _end(run)
