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
    workdir = tmp_path_factory.mktemp("ceph")
    port = free_port()
    try:
        subprocess.run([str(SCRIPT), "start", str(workdir), str(port), str(free_port())],
                       check=True, timeout=180, capture_output=True)
        access, secret = (workdir / "s3-keys").read_text().split()
        yield Rgw(f"http://127.0.0.1:{port}", access, secret)
    finally:
        subprocess.run([str(SCRIPT), "stop", str(workdir)], check=False, timeout=60)


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
        settings = stack.start()
        try:
            with serving(create_app(settings.model_dump(), clients=stack.clients), port):
                yield origin
        finally:
            stack.stop()
