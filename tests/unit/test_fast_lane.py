"""The emulator's fast lane answers the verdict's frequent requests as moto does, and
leaves the stores as moto leaves them: each call is made once through the lane and
once through moto alone (two servers over the same stores), and what the caller reads
(headers, bodies, botocore's results, errors) and what is stored afterwards compare
equal. The lane must answer those shapes itself, and leave refusals and every other
shape to moto."""

from __future__ import annotations

import json
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote_plus

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server

from broker.aws.lean_json import LeanSqs
from broker.aws.lean_s3 import LeanS3, lean_s3
from broker.aws.sigv4 import Signer
from broker.devstack.fast_lane import FastLane

PATH_STYLE = Config(s3={"addressing_style": "path"}, signature_version="s3v4",
                    request_checksum_calculation="when_required",
                    response_checksum_validation="when_required",
                    retries={"mode": "standard", "max_attempts": 1})
SIGNER = Signer(Credentials("testing", "testing"), "us-east-1", "s3")
VOLATILE = {"date", "server", "x-amz-request-id", "x-amzn-requestid", "x-amz-id-2",
            "last-modified", "x-amz-version-id", "connection", "keep-alive"}


class Stores:
    """One lane and one plain moto, both over this process's moto stores."""

    def __init__(self) -> None:
        moto = DomainDispatcherApplication(create_backend_app)
        self.referred: Counter[str] = Counter()

        def counted(environ: dict[str, Any], start_response: Any) -> Any:
            self.referred[environ["REQUEST_METHOD"]] += 1
            return moto(environ, start_response)

        self._servers = [make_server("127.0.0.1", 0, app, threaded=True)
                         for app in (FastLane(counted), moto)]
        for server in self._servers:
            threading.Thread(target=server.serve_forever, daemon=True).start()
        self.lane, self.moto = (f"http://127.0.0.1:{s.server_port}" for s in self._servers)

    def s3(self, endpoint: str) -> Any:
        return boto3.client("s3", region_name="us-east-1", endpoint_url=endpoint,
                            config=PATH_STYLE, aws_access_key_id="testing",
                            aws_secret_access_key="testing")

    def lean(self, endpoint: str) -> LeanS3:
        client = lean_s3(self.s3(endpoint))
        assert client is not None
        return client

    def sqs(self, endpoint: str) -> Any:
        return boto3.client("sqs", region_name="us-east-1", endpoint_url=endpoint,
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()


@pytest.fixture(scope="module")
def stores() -> Iterator[Stores]:
    both = Stores()
    yield both
    both.stop()


@pytest.fixture
def bucket(stores: Stores) -> str:
    name = f"lane-{uuid.uuid4().hex[:12]}"
    s3 = stores.s3(stores.moto)
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


def _store(stores: Stores, bucket: str, key: str, body: bytes = b"\x89PNG picture bytes"
           ) -> str:
    return str(stores.s3(stores.moto).put_object(
        Bucket=bucket, Key=key, Body=body, ContentType="image/png",
        Metadata={"upload-id": "up_1"})["VersionId"])


def _headers(answer: requests.Response) -> dict[str, str]:
    return {k.lower(): v for k, v in answer.headers.items() if k.lower() not in VOLATILE}


def _signed(stores: Stores, endpoint: str, method: str, path: str,
            headers: dict[str, str] | None = None, body: bytes = b"") -> requests.Response:
    """A request as the lean client signs it, its raw answer kept."""
    where, _, query = path.partition("?")
    signed = SIGNER.sign_headers(method, endpoint.removeprefix("http://"), where,
                                 dict(headers or {}), body, query=query)
    return requests.request(method, f"{endpoint}{path}", headers=signed, data=body,
                            timeout=30)


def _facts(reply: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in reply.items()
            if k not in ("ResponseMetadata", "Body", "VersionId", "LastModified")}


def test_reads_and_ranges_answer_as_motos(stores: Stores, bucket: str) -> None:
    body = bytes(range(256)) * 40
    _store(stores, bucket, "up/a.png", body)
    before = sum(stores.referred.values())
    for wanted in (None, "bytes=0-99", "bytes=100-", "bytes=10000-20000", "bytes=5-5"):
        headers = {"range": wanted} if wanted else {}
        ours = _signed(stores, stores.lane, "GET", f"/{bucket}/up/a.png", headers)
        theirs = _signed(stores, stores.moto, "GET", f"/{bucket}/up/a.png", headers)
        assert (ours.status_code, ours.content) == (theirs.status_code, theirs.content), wanted
        assert _headers(ours) == _headers(theirs), wanted
        assert ours.headers["x-amz-version-id"] == theirs.headers["x-amz-version-id"]
    assert sum(stores.referred.values()) == before  # every one answered by the lane
    for endpoint in (stores.lane, stores.moto):
        lean = stores.lean(endpoint)
        assert lean.get_object(Bucket=bucket, Key="up/a.png", Range="bytes=0-9"
                               )["Body"].read() == body[:10]


def test_refusals_and_other_shapes_are_motos_own(stores: Stores, bucket: str) -> None:
    version = _store(stores, bucket, "up/b.png")
    calls: list[tuple[str, dict[str, Any]]] = [
        ("get_object", {"Key": "up/missing.png"}),
        ("get_object", {"Key": "up/b.png", "VersionId": "not-a-version"}),
        ("get_object", {"Key": "up/b.png", "Range": "bytes=999999-"}),
        ("get_object", {"Key": "up/b.png", "IfMatch": '"not-its-etag"'}),
        ("delete_object", {"Key": "up/b.png", "VersionId": "not-a-version"}),
        ("head_object", {"Key": "up/b.png", "VersionId": version}),
        ("list_object_versions", {"Prefix": "up/", "Delimiter": "/"}),
    ]
    for method, params in calls:
        answers = []
        for endpoint in (stores.lane, stores.moto):
            before = stores.referred.copy()
            try:
                reply = getattr(stores.s3(endpoint), method)(Bucket=bucket, **params)
                answers.append(_facts(reply))
            except ClientError as refused:
                answers.append(refused.response["Error"]["Code"])
            if endpoint == stores.lane:
                assert stores.referred != before, (method, params)  # moto answered
        assert answers[0] == answers[1], (method, params)
    with pytest.raises(ClientError, match="NoSuchBucket"):
        stores.lean(stores.lane).get_object(Bucket="no-such-bucket", Key="up/a.png")


def test_writes_store_what_moto_stores(stores: Stores, bucket: str) -> None:
    headers = {"content-type": "image/webp", "cache-control": "public, max-age=31536000",
               "content-disposition": 'inline; filename="a.webp"',
               "x-amz-meta-upload-id": "up_2"}
    before = stores.referred["PUT"]
    answers = [_signed(stores, endpoint, "PUT", f"/{bucket}/served/{name}.webp", headers,
                       b"RIFF webp bytes")
               for endpoint, name in ((stores.lane, "ours"), (stores.moto, "theirs"))]
    assert stores.referred["PUT"] == before
    assert answers[0].status_code == answers[1].status_code == 200
    assert _headers(answers[0]) == _headers(answers[1])
    s3 = stores.s3(stores.moto)  # what is stored, read by moto itself
    ours, theirs = (s3.get_object(Bucket=bucket, Key=f"served/{name}.webp")
                    for name in ("ours", "theirs"))
    assert _facts(ours) == _facts(theirs)
    assert ours["Body"].read() == theirs["Body"].read() == b"RIFF webp bytes"
    assert ours["Metadata"] == {"upload-id": "up_2"}


def test_version_listings_and_deletes_answer_as_motos(stores: Stores, bucket: str) -> None:
    for name in ("ours", "theirs"):
        _store(stores, bucket, f"up/{name}.png", b"first")
        _store(stores, bucket, f"up/{name}.png", b"second <&>")
        _store(stores, bucket, f"up/{name}.png.extra", b"under the prefix too")
        stores.s3(stores.moto).delete_object(Bucket=bucket, Key=f"up/{name}.png.extra")
    before = sum(stores.referred.values())
    listed = [stores.lean(endpoint).list_object_versions(Bucket=bucket, Prefix=f"up/{name}")
              for endpoint, name in ((stores.lane, "ours"), (stores.moto, "theirs"))]
    assert sum(stores.referred.values()) == before

    def shown(reply: dict[str, Any], name: str) -> Any:
        masked = json.loads(json.dumps(_facts(reply), default=str).replace(name, "NAME"))
        for entry in masked.get("Versions", []) + masked.get("DeleteMarkers", []):
            entry.pop("VersionId"), entry.pop("LastModified")
        return masked

    assert shown(listed[0], "ours") == shown(listed[1], "theirs")
    assert len(listed[0]["Versions"]) == 3
    assert len(listed[0]["DeleteMarkers"]) == 1
    deleted = []
    for reply, endpoint in zip(listed, (stores.lane, stores.moto), strict=True):
        oldest = reply["Versions"][-1]
        answer = _signed(stores, endpoint, "DELETE",
                         f"/{bucket}/{oldest['Key']}?versionId={oldest['VersionId']}")
        assert answer.status_code == 204
        assert answer.headers["x-amz-version-id"] == oldest["VersionId"]
        deleted.append(_headers(answer))
    assert deleted[0] == deleted[1]
    assert sum(stores.referred.values()) == before
    left = [stores.s3(stores.moto).list_object_versions(Bucket=bucket, Prefix=f"up/{name}")
            for name in ("ours", "theirs")]
    assert shown(left[0], "ours") == shown(left[1], "theirs")
    assert len(left[0]["Versions"]) == 2


def test_queue_receives_and_deletes_answer_as_motos(stores: Stores) -> None:
    answers = []
    before = sum(stores.referred.values())
    for endpoint in (stores.lane, stores.moto):
        sqs = stores.sqs(stores.moto)
        url = sqs.create_queue(QueueName=f"lane-{uuid.uuid4().hex[:12]}")["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody='{"Records": []}',
                         MessageAttributes={"kind": {"DataType": "String",
                                                     "StringValue": "event"}})
        lean = LeanSqs(stores.sqs(endpoint))
        got = lean.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                   VisibilityTimeout=30)
        assert len(got["Messages"]) == 1
        again = lean.receive_message(QueueUrl=url, WaitTimeSeconds=0)  # hidden: none
        assert lean.delete_message(QueueUrl=url, ReceiptHandle=got["Messages"][0][
            "ReceiptHandle"])["ResponseMetadata"]["HTTPStatusCode"] == 200
        left = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        message = {k: v for k, v in got["Messages"][0].items()
                   if k not in ("MessageId", "ReceiptHandle")}
        answers.append((message, _facts(again), left["ApproximateNumberOfMessages"],
                        left["ApproximateNumberOfMessagesNotVisible"]))
    assert sum(stores.referred.values()) == before
    assert answers[0] == answers[1]
    assert answers[0][0]["Body"] == '{"Records": []}'


def test_queue_refusals_are_motos_own(stores: Stores) -> None:
    url = stores.sqs(stores.moto).create_queue(QueueName=f"lane-{uuid.uuid4().hex[:8]}"
                                               )["QueueUrl"]
    codes = []
    for endpoint in (stores.lane, stores.moto):
        lean = LeanSqs(stores.sqs(endpoint))
        for call, params in (
                ("delete_message", {"QueueUrl": url, "ReceiptHandle": "unknown"}),
                ("receive_message", {"QueueUrl": url + "-missing"}),
                ("receive_message", {"QueueUrl": url, "MaxNumberOfMessages": 11})):
            with pytest.raises(ClientError) as refused:
                getattr(lean, call)(**params)
            codes.append(refused.value.response["Error"]["Code"])
    assert codes[:3] == codes[3:]
    assert stores.referred["POST"] >= 3


def test_moto_told_to_check_policies_answers_everything(stores: Stores, bucket: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from moto import settings
    from werkzeug.test import EnvironBuilder

    _store(stores, bucket, "up/c.png")
    monkeypatch.setattr(settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)
    answered: list[str] = []
    lane = FastLane(lambda environ, start_response: answered.append("moto") or [b""])
    signed = SIGNER.sign_headers("GET", "localhost", f"/{bucket}/up/c.png", {}, b"")
    environ = EnvironBuilder(path=f"/{bucket}/up/c.png", headers=signed).get_environ()
    environ["REQUEST_URI"] = environ["PATH_INFO"]
    lane(environ, lambda *_: None)
    assert answered == ["moto"]  # moto checks IAM policies; the lane never does


def _form(stores: Stores, bucket: str, key: str, **fields: str) -> dict[str, Any]:
    conditions: list[Any] = [["starts-with", "$key", "up/"]]
    conditions += [{name: value} for name, value in fields.items()]
    post = stores.s3(stores.moto).generate_presigned_post(
        bucket, key, Fields=fields, Conditions=conditions)
    return dict(post["fields"])


def test_browser_form_uploads_answer_and_store_as_motos(stores: Stores, bucket: str) -> None:
    sqs = stores.sqs(stores.moto)
    queue = sqs.create_queue(QueueName=f"lane-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"]
                                   )["Attributes"]["QueueArn"]
    stores.s3(stores.moto).put_bucket_notification_configuration(
        Bucket=bucket, NotificationConfiguration={"QueueConfigurations": [
            {"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]})
    fields = {"Content-Type": "image/png", "success_action_status": "201",
              "x-amz-meta-upload-id": "up_3"}
    before = sum(stores.referred.values())
    # A browser's, and one signed as SigV2 forms are (the access key a field of the form).
    for origin, signed in ((None, {}), ("http://app.example", {"AWSAccessKeyId": "testing"})):
        answers = []
        for endpoint, name in ((stores.lane, "ours"), (stores.moto, "theirs")):
            form = _form(stores, bucket, f"up/{name}/${{filename}}", **fields) | signed
            answer = requests.post(f"{endpoint}/{bucket}", data=form, timeout=30,
                                   headers={"Origin": origin} if origin else {},
                                   files={"file": ("avatar.png", b"\x89PNG bytes", "image/png")})
            answers.append((answer.status_code, answer.content, _headers(answer)))
        assert answers[0] == answers[1], origin
        assert answers[0][0] == 201
    assert sum(stores.referred.values()) == before
    s3 = stores.s3(stores.moto)
    ours, theirs = (s3.get_object(Bucket=bucket, Key=f"up/{name}/avatar.png")
                    for name in ("ours", "theirs"))
    assert _facts(ours) == _facts(theirs)
    assert ours["Metadata"] == {"upload-id": "up_3"}
    assert ours["ContentType"] == "image/png"
    events = []
    while got := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages"):
        for message in got:
            body = json.loads(message["Body"])
            events += [(r["eventName"], r["s3"]["object"]["key"]) for r in body.get("Records", [])]
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
    names = {(event, unquote_plus(key).split("/")[1]) for event, key in events}
    assert names == {("ObjectCreated:Post", "ours"), ("ObjectCreated:Post", "theirs")}


@pytest.mark.parametrize("change", ["redirect", "acl", "no file", "two files", "query"])
def test_other_form_uploads_are_motos_own(stores: Stores, bucket: str, change: str) -> None:
    extra = {"redirect": {"success_action_redirect": "http://app.example/done"},
             "acl": {"acl": "public-read"}}.get(change, {})
    answers = []
    for endpoint, name in ((stores.lane, "ours"), (stores.moto, "theirs")):
        form = _form(stores, bucket, f"up/{name}/a.png", **extra)
        files: Any = {"file": ("a.png", b"bytes", "image/png")}
        if change == "no file":
            files = None
            form["file"] = "bytes as a field"
        elif change == "two files":
            files = [("file", ("a.png", b"one", "image/png")),
                     ("file", ("b.png", b"two", "image/png"))]
        before = stores.referred["POST"]
        answer = requests.post(f"{endpoint}/{bucket}" + ("?x-id=1" if change == "query" else ""),
                               data=form, files=files, timeout=30, allow_redirects=False)
        if endpoint == stores.lane:
            assert stores.referred["POST"] == before + 1
        stored = stores.s3(stores.moto).list_objects_v2(Bucket=bucket, Prefix=f"up/{name}/")
        answers.append((answer.status_code, _headers(answer).get("location", "").replace(
            name, "NAME"), [o["Size"] for o in stored.get("Contents", [])]))
    assert answers[0] == answers[1]
