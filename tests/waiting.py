"""Waiting for a server a test or the benchmark started to answer HTTP."""

from __future__ import annotations

import subprocess
import time

import requests


def wait_for_http(url: str, timeout: float = 30,
                  process: subprocess.Popen[bytes] | None = None) -> None:
    """Return once `url` answers at all; fail after `timeout` or if `process` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{url}: the server exited with {process.returncode}")
        try:
            requests.get(url, timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up within {timeout} s")
