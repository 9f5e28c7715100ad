"""A real S3 implementation for the conformance suite: Ceph RGW on loopback."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import require_system
from tests.integration.conftest import free_port

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
    workdir = tmp_path_factory.mktemp("ceph")
    port = free_port()
    try:
        subprocess.run([str(SCRIPT), "start", str(workdir), str(port), str(free_port())],
                       check=True, timeout=180, capture_output=True)
        access, secret = (workdir / "s3-keys").read_text().split()
        yield Rgw(f"http://127.0.0.1:{port}", access, secret)
    finally:
        subprocess.run([str(SCRIPT), "stop", str(workdir)], check=False, timeout=60)
