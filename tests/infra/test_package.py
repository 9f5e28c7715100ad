"""The built Lambda package itself works: unpacked alone, it processes a real event."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from broker.aws.clients import make_clients
from broker.compose import compose
from broker.domain.uploads import Uploads
from broker.provision import provision
from broker.settings import load_settings
from tests.conftest import require_system
from tests.integration.conftest import free_port
from tests.samples import png_bytes

pytestmark = pytest.mark.infra
ROOT = Path(__file__).resolve().parents[2]


def lambda_python() -> str | None:
    """A Python 3.12 interpreter, like the Lambda runtime: on PATH, or from pyenv."""
    candidate = shutil.which("python3.12")
    if candidate and subprocess.run([candidate, "-c", ""], capture_output=True,
                                    check=False).returncode == 0:
        return candidate
    pyenv = shutil.which("pyenv")
    if pyenv is None:
        return None
    listed = subprocess.run([pyenv, "versions", "--bare"], capture_output=True, text=True,
                            check=False).stdout.split()
    versions = [v for v in listed if v.startswith("3.12")]
    if not versions:
        return None
    prefix = subprocess.run([pyenv, "prefix", versions[-1]], capture_output=True, text=True,
                            check=False).stdout.strip()
    found = Path(prefix) / "bin" / "python3.12"
    return str(found) if found.exists() else None


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("build")
    subprocess.run([sys.executable, str(ROOT / "scripts" / "package.py"), "--out", str(out)],
                   check=True, capture_output=True, timeout=600)
    return out


def run_alone(package: Path, folder: Path, program: str, *args: str,
              env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Unpack `package` into `folder` and run `program` with only that folder importable."""
    runtime = lambda_python()
    require_system("Python 3.12 (the Lambda runtime)", runtime is not None,
                   "pyenv install 3.12")
    assert runtime is not None
    with zipfile.ZipFile(package) as archive:
        archive.extractall(folder)
    # -S: no site-packages; run elsewhere so the source tree is not importable either.
    return subprocess.run([runtime, "-S", "-c", program, str(folder), *args],
                          cwd=folder.parent, env=env | {"PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        monkeypatch.setenv("BROKER_ENDPOINT_URL", f"http://127.0.0.1:{port}")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def test_the_unpacked_validator_zip_processes_an_sqs_event_on_its_own(
    packages: Path, emulator: str, tmp_path: Path
) -> None:
    settings = load_settings(public_base_url="https://cdn.example.test")
    clients = make_clients(settings)
    provision(clients, settings, "uploads-events", ["https://app.example.test"])
    validator = compose(settings, clients).validator
    uploads = Uploads(settings, validator.profiles, validator.records, validator.storage,
                      clients.s3)
    png = png_bytes()
    record = uploads.create("alice", "avatar", "me.png", "image/png", len(png)).record
    clients.s3.put_object(Bucket=settings.incoming_bucket, Key=record.incoming_key, Body=png,
                          Metadata={"upload-id": record.id})

    notification = {"Records": [{"eventName": "ObjectCreated:Post", "eventSource": "aws:s3",
                                 "s3": {"bucket": {"name": settings.incoming_bucket},
                                        "object": {"key": record.incoming_key.replace(
                                            "/", "%2F"), "size": len(png)}}}]}
    event = {"Records": [{"messageId": "m-1", "receiptHandle": "r-1", "eventSource": "aws:sqs",
                          "body": json.dumps(notification)}]}
    (tmp_path / "event.json").write_text(json.dumps(event))
    program = (
        "import json, sys; sys.path[:0] = [sys.argv[1]];"
        "import lambdas.validator.handler as h;"
        "print(json.dumps(h.handler(json.load(open(sys.argv[2])), None)));"
        "import magic, pylibmagic;"
        "assert all(m.__file__.startswith(sys.argv[1]) for m in (h, magic, pylibmagic))"
    )
    env = {k: v for k, v in os.environ.items() if k.startswith(("AWS_", "BROKER_"))}
    reply = run_alone(packages / "validator.zip", tmp_path / "task", program,
                      str(tmp_path / "event.json"), env=env)
    assert reply.returncode == 0, reply.stderr[-3000:]
    assert json.loads(reply.stdout.strip().splitlines()[-1]) == {"batchItemFailures": []}
    settled = uploads.records.get(record.id)
    assert settled is not None
    assert settled.status == "ready"
    assert settled.content_type == "image/png"


def test_the_unpacked_broker_zip_answers_an_http_api_event(packages: Path,
                                                           tmp_path: Path) -> None:
    event = {"version": "2.0", "routeKey": "$default", "rawPath": "/v1/profiles",
             "rawQueryString": "", "headers": {"host": "api.example.test"},
             "requestContext": {"http": {"method": "GET", "path": "/v1/profiles",
                                         "protocol": "HTTP/1.1", "sourceIp": "203.0.113.9"},
                                "domainName": "api.example.test", "stage": "$default"},
             "isBase64Encoded": False}
    (tmp_path / "event.json").write_text(json.dumps(event))
    program = (
        "import json, sys; sys.path[:0] = [sys.argv[1]];"
        "import lambdas.broker.handler as h;"
        "print(json.dumps(h.handler(json.load(open(sys.argv[2])), None)))"
    )
    env = {"BROKER_JWT_SECRET": "s" * 40, "AWS_ACCESS_KEY_ID": "x",
           "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "us-east-1"}
    reply = run_alone(packages / "broker.zip", tmp_path / "task", program,
                      str(tmp_path / "event.json"), env=env)
    assert reply.returncode == 0, reply.stderr[-3000:]
    answer = json.loads(reply.stdout.strip().splitlines()[-1])
    assert answer["statusCode"] == 200
    names = [p["name"] for p in json.loads(answer["body"])["profiles"]]
    assert names == ["avatar", "document", "video"]  # the shipped profiles
