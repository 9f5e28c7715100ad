"""`broker run` keeps its data: after Ctrl-C, or a crash, the next run serves the same
public files and private downloads and knows the same uploads; `--fresh` forgets them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from broker.devstack.keeping import SYNC_SECONDS
from tests.integration.conftest import free_port
from tests.samples import SECRET, auth, pdf_bytes, png_bytes, send_upload, settle
from tests.waiting import stop_process, wait_for_http

pytestmark = pytest.mark.integration
BROKER = str(Path(sys.executable).parent / "broker")


# The same ports every run, as `make run`'s defaults are: public URLs name the emulator's.
PORTS = {flag: free_port() for flag in ("--port", "--emulator-port", "--push-port")}


@contextmanager
def broker_run(project: Path, *extra: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """`broker run` in a project folder of the test's own (its .broker/ is there)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BROKER_")} | {
        "TMPDIR": str(project.parent), "BROKER_JWT_SECRET": SECRET}
    port = PORTS["--port"]
    ports = [str(part) for flag, value in PORTS.items() for part in (flag, value)]
    run = subprocess.Popen(
        [BROKER, "run", *ports, *extra], env=env, cwd=project, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", process=run)
        yield f"http://127.0.0.1:{port}", run
    finally:
        stop_process(run, group=True, sig=signal.SIGINT)


def fetch(url: str, user: str | None = None) -> requests.Response:
    return requests.get(url, headers=auth(user) if user else {}, timeout=30)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "app"
    folder.mkdir()
    return folder


def test_files_and_records_survive_a_restart_and_fresh_forgets_them(project: Path) -> None:
    avatar, document = png_bytes(48, 48), pdf_bytes()
    with broker_run(project) as (broker, _):
        avatar_id = send_upload(broker, "alice", avatar)
        document_id = send_upload(broker, "alice", document, profile="document",
                                  filename="notes.pdf", content_type="application/pdf")
        public = settle(broker, "alice", avatar_id)["url"]
        assert settle(broker, "alice", document_id)["status"] == "ready"
        served = fetch(public).content
        kept = fetch(f"{broker}/v1/uploads/{document_id}/download", "alice").content
        assert kept == document

    with broker_run(project) as (broker, _):
        again = fetch(f"{broker}/v1/uploads/{avatar_id}", "alice").json()
        assert again["status"] == "ready"
        assert again["url"] == public  # the URL an app stored still names the file
        assert fetch(public).content == served
        assert fetch(f"{broker}/v1/uploads/{document_id}/download", "alice").content \
            == document
        assert fetch(f"{broker}/v1/uploads/{document_id}", "mallory").status_code == 404

    with broker_run(project, "--fresh") as (broker, _):
        assert fetch(f"{broker}/v1/uploads/{avatar_id}", "alice").status_code == 404
        assert fetch(public).status_code == 404


def test_a_crash_loses_at_most_the_last_moments(project: Path) -> None:
    avatar = png_bytes(40, 40)
    with broker_run(project) as (broker, run):
        upload_id = send_upload(broker, "alice", avatar)
        public = settle(broker, "alice", upload_id)["url"]
        time.sleep(2 * SYNC_SECONDS + 1)  # what a crash may lose is older than this
        os.killpg(run.pid, signal.SIGKILL)  # the whole stack, with no chance to save
        run.wait(timeout=60)

    with broker_run(project) as (broker, _):
        assert fetch(f"{broker}/v1/uploads/{upload_id}", "alice").json()["status"] == "ready"
        assert fetch(public).status_code == 200
