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
    port = free_port()
    subprocess.run([str(RUNTIME), "start", str(port)], check=True, timeout=120,
                   capture_output=True)
    yield f"http://127.0.0.1:{port}"
    subprocess.run([str(RUNTIME), "stop", str(port)], check=False, timeout=30)
