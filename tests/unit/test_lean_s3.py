"""The verdict's S3 calls answer as botocore's do, over HTTP against an S3 emulator:
the same results and types for reads, ranges, versions, writes and deletes; the same
error codes for what is missing, changed or empty; botocore's errors for a body cut
short; retries of a store that is briefly unavailable; botocore kept for AWS itself."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from moto.server import ThreadedMotoServer

from broker.aws.lean_s3 import LeanS3, lean_s3

BUCKET = "incoming"
PATH_STYLE = Config(s3={"addressing_style": "path"}, signature_version="s3v4",
                    request_checksum_calculation="when_required",
                    response_checksum_validation="when_required",
                    retries={"mode": "standard", "max_attempts": 4})


def _client(endpoint: str, config: Config = PATH_STYLE) -> Any:
    return boto3.client("s3", region_name="us-east-1", endpoint_url=endpoint, config=config,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    s3 = _client(url)
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    yield url
    server.stop()


@pytest.fixture
def both(endpoint: str) -> Iterator[tuple[Any, LeanS3]]:
    boto = _client(endpoint)
    lean = lean_s3(boto)
    assert lean is not None
    yield boto, lean
    lean.close()


def _facts(reply: dict[str, Any]) -> dict[str, Any]:
    """What a caller reads of an answer (request ids and dates of the call aside)."""
    return {k: v for k, v in reply.items() if k not in ("ResponseMetadata", "Body")}


def _code(call: Any, **params: Any) -> str:
    """The error code a call ends in, or "answered"."""
    try:
        call(**params)
    except ClientError as refused:
        return str(refused.response["Error"]["Code"])
    return "answered"


def test_reads_answer_as_botocores(both: tuple[Any, LeanS3]) -> None:
    boto, lean = both
    first = boto.put_object(Bucket=BUCKET, Key="up/a b+c", Body=b"first version",
                            ContentType="image/png", Metadata={"Upload-Id": "up_1"})
    boto.put_object(Bucket=BUCKET, Key="up/a b+c", Body=b"second, longer version")
    for params in ({}, {"Range": "bytes=0-5"}, {"VersionId": first["VersionId"]},
                   {"VersionId": first["VersionId"], "Range": "bytes=6-100"}):
        ours = lean.get_object(Bucket=BUCKET, Key="up/a b+c", **params)
        theirs = boto.get_object(Bucket=BUCKET, Key="up/a b+c", **params)
        assert _facts(ours) == _facts(theirs), params
        with ours["Body"] as body:
            assert body.read() == theirs["Body"].read(), params
        head = lean.head_object(Bucket=BUCKET, Key="up/a b+c",
                                **{k: v for k, v in params.items() if k == "VersionId"})
        assert _facts(head) == _facts(boto.head_object(
            Bucket=BUCKET, Key="up/a b+c", **{k: v for k, v in params.items()
                                              if k == "VersionId"}))
    chunks = list(lean.get_object(Bucket=BUCKET, Key="up/a b+c")["Body"].iter_chunks(4))
    assert b"".join(chunks) == b"second, longer version"
    assert len(chunks[0]) == 4


def test_refusals_keep_botocores_codes(both: tuple[Any, LeanS3]) -> None:
    boto, lean = both
    boto.put_object(Bucket=BUCKET, Key="up/empty", Body=b"")
    stored = boto.put_object(Bucket=BUCKET, Key="up/kept", Body=b"kept")
    cases: list[tuple[str, dict[str, Any]]] = [
        ("get_object", {"Key": "up/missing"}),
        ("head_object", {"Key": "up/missing"}),
        ("get_object", {"Key": "up/kept", "VersionId": "no-such-version"}),
        ("head_object", {"Key": "up/kept", "VersionId": "no-such-version"}),
        ("get_object", {"Key": "up/kept", "IfMatch": '"0000"'}),
        ("get_object", {"Key": "up/empty", "Range": "bytes=0-99"}),
        ("delete_object", {"Key": "up/kept", "VersionId": "no-such-version"}),
    ]
    codes = []
    for method, params in cases:
        ours = _code(getattr(lean, method), Bucket=BUCKET, **params)
        theirs = _code(getattr(boto, method), Bucket=BUCKET, **params)
        assert ours == theirs, (method, params)
        codes.append(ours)
    assert codes.count("answered") == 1, codes  # every refusal is one, except the delete
    assert lean.get_object(Bucket=BUCKET, Key="up/kept", IfMatch=stored["ETag"]
                           )["Body"].read() == b"kept"


def test_writes_and_deletes_land_as_botocores(both: tuple[Any, LeanS3]) -> None:
    boto, lean = both
    put = lean.put_object(Bucket=BUCKET, Key="served/a", Body=b"\x89PNG pixels",
                          ContentType="image/png", CacheControl="public, max-age=60",
                          ContentDisposition='inline; filename="a.png"',
                          Metadata={"upload-id": "up_2", "sha256": "ab"})
    stored = boto.head_object(Bucket=BUCKET, Key="served/a")
    assert (stored["ETag"], stored["VersionId"]) == (put["ETag"], put["VersionId"])
    assert (stored["ContentType"], stored["CacheControl"], stored["ContentDisposition"],
            stored["Metadata"]) == ("image/png", "public, max-age=60",
                                    'inline; filename="a.png"',
                                    {"upload-id": "up_2", "sha256": "ab"})
    assert boto.get_object(Bucket=BUCKET, Key="served/a")["Body"].read() == b"\x89PNG pixels"
    second = boto.put_object(Bucket=BUCKET, Key="served/a", Body=b"newer")
    ours = lean.list_object_versions(Bucket=BUCKET, Prefix="served/a")
    theirs = boto.list_object_versions(Bucket=BUCKET, Prefix="served/a")
    for part in ("Versions", "DeleteMarkers", "IsTruncated"):
        assert ours.get(part) == theirs.get(part) or [
            {k: v for k, v in e.items() if k != "Owner"} for e in theirs.get(part, [])
        ] == ours.get(part), part
    lean.delete_object(Bucket=BUCKET, Key="served/a", VersionId=second["VersionId"])
    lean.delete_object(Bucket=BUCKET, Key="served/a", VersionId=put["VersionId"])
    assert "Versions" not in boto.list_object_versions(Bucket=BUCKET, Prefix="served/a")


def test_what_it_does_not_know_goes_to_botocore(both: tuple[Any, LeanS3]) -> None:
    boto, lean = both
    lean.put_object(Bucket=BUCKET, Key="other/b", Body=b"x", Tagging="kind=test")
    assert boto.get_object_tagging(Bucket=BUCKET, Key="other/b")["TagSet"] == [
        {"Key": "kind", "Value": "test"}]
    assert lean.head_bucket(Bucket=BUCKET)["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_aws_itself_and_virtual_hosts_stay_with_botocore(endpoint: str) -> None:
    assert lean_s3(boto3.client("s3", region_name="eu-west-1", config=PATH_STYLE)) is None
    virtual = Config(s3={"addressing_style": "virtual"},
                     request_checksum_calculation="when_required",
                     response_checksum_validation="when_required")
    assert lean_s3(_client(endpoint, virtual)) is None
    assert lean_s3(_client(endpoint, Config(s3={"addressing_style": "path"}))) is None


class _Flaky(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, answers: list[str]) -> None:
        super().__init__(("127.0.0.1", 0), _FlakyHandler)
        self.answers = answers
        self.requests = 0


class _FlakyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Flaky

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.requests += 1
        answer = self.server.answers.pop(0) if self.server.answers else "ok"
        if answer == "busy":
            error = b"<Error><Code>SlowDown</Code><Message>Reduce your rate</Message></Error>"
            self.send_response(503)
            self.send_header("Content-Length", str(len(error)))
            self.end_headers()
            self.wfile.write(error)
            return
        self.send_response(200)
        self.send_header("ETag", '"e"')
        self.send_header("Last-Modified", "Sat, 05 Dec 2026 03:50:29 GMT")
        self.send_header("Content-Length", "100")  # and then fewer: the body is cut short
        self.end_headers()
        self.wfile.write(b"only part" if answer == "cut" else b"x" * 100)
        if answer == "cut":
            self.close_connection = True


@pytest.fixture
def flaky() -> Iterator[tuple[_Flaky, LeanS3]]:
    server = _Flaky([])
    threading.Thread(target=server.serve_forever, daemon=True).start()
    lean = lean_s3(_client(f"http://127.0.0.1:{server.server_address[1]}"))
    assert lean is not None
    yield server, lean
    lean.close()
    server.shutdown()
    server.server_close()


def test_a_busy_store_is_retried_and_a_cut_body_is_botocores_error(
        flaky: tuple[_Flaky, LeanS3]) -> None:
    server, lean = flaky
    server.answers = ["busy", "busy"]
    assert lean.get_object(Bucket=BUCKET, Key="k")["Body"].read() == b"x" * 100
    assert server.requests == 3
    server.answers = ["busy"] * 4
    assert _code(lean.get_object, Bucket=BUCKET, Key="k") == "SlowDown"
    server.answers = ["cut"]
    body = lean.get_object(Bucket=BUCKET, Key="k")["Body"]
    with pytest.raises(BotoCoreError):
        body.read()


def test_a_body_left_unread_does_not_spoil_the_next_call(
        flaky: tuple[_Flaky, LeanS3]) -> None:
    _, lean = flaky
    for _ in range(3):
        with lean.get_object(Bucket=BUCKET, Key="k")["Body"] as body:
            assert body.read(10) == b"x" * 10  # and the rest never read
    assert lean.get_object(Bucket=BUCKET, Key="k")["Body"].read() == b"x" * 100
