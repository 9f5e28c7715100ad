"""A real S3 implementation for the conformance suite: Ceph RGW on loopback."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from broker.devstack.stack import DevStack
from broker.web import create_app
from tests.conftest import require_system
from tests.integration.conftest import free_port, serving
from tests.samples import SECRET

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "ceph-rgw.sh"


@dataclass(frozen=True)
class Rgw:
    endpoint: str
    access_key: str
    secret_key: str


@pytest.fixture(scope="session")
def rgw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rgw]:
    installed = all(shutil.which(tool) for tool in ("radosgw", "ceph-mon", "ceph-osd"))
    require_system("Ceph RGW", installed, "scripts/ceph-rgw.sh install (as root)")
    import os
    import signal
    from contextlib import suppress

    from tests.waiting import START_TIMEOUT, wait_for_http, wait_until_gone

    workdir = tmp_path_factory.mktemp("ceph")
    port = free_port()
    # The daemons detach themselves: they are stopped (and waited for) by their pid files.
    daemons: set[int] = set()
    try:
        try:
            started = subprocess.run(
                [str(SCRIPT), "start", str(workdir), str(port), str(free_port())],
                timeout=3 * START_TIMEOUT, capture_output=True, text=True, check=False)
        finally:
            daemons |= _daemons(workdir)
        if started.returncode != 0:
            raise RuntimeError(f"Ceph RGW did not start (exit code {started.returncode}):\n"
                               f"{started.stdout[-2000:]}{started.stderr[-2000:]}"
                               f"{_log_tail(workdir)}")
        wait_for_http(f"http://127.0.0.1:{port}/", what="Ceph RGW",
                      log=lambda: _log_tail(workdir))
        access, secret = (workdir / "s3-keys").read_text().split()
        yield Rgw(f"http://127.0.0.1:{port}", access, secret)
    finally:
        daemons |= _daemons(workdir)
        subprocess.run([str(SCRIPT), "stop", str(workdir)], check=False, timeout=120)
        for pid in wait_until_gone(sorted(daemons)):  # the script's SIGKILL not yet done
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        wait_until_gone(sorted(daemons))


def _daemons(workdir: Path) -> set[int]:
    """The pids in the daemons' pid files."""
    pids = set()
    for pidfile in (workdir / "run").glob("*.pid"):
        text = pidfile.read_text().strip()
        if text.isdigit():
            pids.add(int(text))
    return pids


def _log_tail(workdir: Path) -> str:
    return "".join(f"\n--- {log.name} ---\n{log.read_text(errors='replace')[-1500:]}"
                   for log in sorted((workdir / "log").glob("*.log")))


@pytest.fixture(scope="session")
def broker_on_rgw(rgw: Rgw) -> Iterator[str]:
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_ACCESS_KEY_ID", rgw.access_key)
        env.setenv("AWS_SECRET_ACCESS_KEY", rgw.secret_key)
        stack = DevStack(broker_origin=origin, overrides={
            "jwt_secret": SECRET, "s3_endpoint_url": rgw.endpoint, "events": "http",
            "incoming_bucket": "rgw-incoming", "public_bucket": "rgw-public",
            "private_bucket": "rgw-private"})
        try:  # the emulator's process is stopped however the start or the tests end
            settings = stack.start()
            with serving(create_app(settings.model_dump(), clients=stack.clients), port):
                yield origin
        finally:
            stack.stop()
