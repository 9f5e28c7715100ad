"""LocalStack's runtime on the host, shared by the LocalStack tests."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = ROOT / "localstack" / "host-runtime.sh"
LOCALSTACK_PYTHON = ROOT / ".cache" / "localstack" / "venv" / "bin" / "python"


@pytest.fixture(scope="session")
def localstack() -> Iterator[str]:
    install = subprocess.run([str(RUNTIME), "install"], capture_output=True, text=True,
                             timeout=900, check=False)
    if install.returncode != 0:
        pytest.skip(f"LocalStack's runtime cannot be installed here: {install.stderr[-400:]}")
    from tests.waiting import START_TIMEOUT, wait_for_http

    port = free_port()
    log = ROOT / ".cache" / "localstack" / f"runtime-{port}.log"
    pidfile = ROOT / ".cache" / "localstack" / f"runtime-{port}.pid"
    try:
        started = subprocess.run([str(RUNTIME), "start", str(port)], timeout=3 * START_TIMEOUT,
                                 capture_output=True, text=True, check=False)
        tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
        assert started.returncode == 0, \
            f"LocalStack did not start (exit code {started.returncode}):\n{started.stderr}{tail}"
        wait_for_http(f"http://127.0.0.1:{port}/_localstack/health", what="LocalStack",
                      log=log)
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(pidfile, port)


def _stop(pidfile: Path, port: int) -> None:
    """The runtime detaches itself (nohup … &): it is stopped by its pid file, then
    waited for with whatever it started; SIGKILL for what is left after the grace."""
    import os
    import signal
    from contextlib import suppress

    from tests.waiting import wait_until_gone

    if not pidfile.exists():
        return
    runtime = int(pidfile.read_text().strip())
    family = [runtime, *_descendants(runtime)]
    subprocess.run([str(RUNTIME), "stop", str(port)], check=False, timeout=60)
    for pid in wait_until_gone(family, timeout=60):
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    wait_until_gone(family)
    pidfile.unlink(missing_ok=True)


def _descendants(root: int) -> list[int]:
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError):
            continue
    found, todo = [], [root]
    while todo:
        parent_pid = todo.pop()
        children = [pid for pid, parent in parents.items() if parent == parent_pid]
        found += children
        todo += children
    return found
