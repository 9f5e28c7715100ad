"""Large files in parts through the API on the emulator: planned parts, part URLs
pinned to their length and content, resume from what storage holds, completion
checked against the plan, and nothing left behind by a delete or an expiry."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import parse_qs, urlparse

import pytest
import requests

from broker.common import clock
from broker.compose import compose
from broker.devstack.stack import DevStack
from broker.storage.part_plans import MIB
from broker.web import create_app
from tests.integration.conftest import free_port, serving
from tests.parts_client import PartsUpload, start_in_parts
from tests.samples import SECRET, auth, settle

pytestmark = pytest.mark.integration
PART = 5 * MIB


@pytest.fixture(scope="module")
def stack() -> Iterator[tuple[str, DevStack]]:
    port = free_port()
    stack = DevStack(emulator_port=free_port(), broker_origin=f"http://127.0.0.1:{port}",
                     overrides={"jwt_secret": SECRET, "multipart_part_size": PART,
                                "multipart_threshold": 6 * MIB,
                                # Promotion by copy in parts, at a size tests can afford.
                                "multipart_copy_threshold": 6 * MIB,
                                "multipart_copy_part_size": PART})
    try:  # the emulator's process is stopped however the start or the tests end
        settings = stack.start()
        with serving(create_app(settings.model_dump(), clients=stack.clients), port) as base:
            yield base, stack
    finally:
        stack.stop()


@pytest.fixture
def broker(stack: tuple[str, DevStack]) -> str:
    return stack[0]


def text(size: int, seed: int = 0) -> bytes:
    line = f"line {seed} of a large plain text document, in parts\n".encode()
    return (line * (size // len(line) + 1))[:size]


def open_parts(stack: DevStack, upload: PartsUpload) -> list[dict[str, object]]:
    """The multipart uploads storage keeps open at the upload's key."""
    assert stack.clients is not None
    listed = stack.clients.s3.list_multipart_uploads(Bucket="uploads-incoming",
                                                     Prefix=f"incoming/{upload.id}")
    return list(listed.get("Uploads", []))


def test_a_large_file_in_parts_resumes_and_ends_ready_byte_for_byte(
        stack: tuple[str, DevStack]) -> None:
    broker, _ = stack
    data = text(12 * MIB + 123)
    upload = start_in_parts(broker, "parts-alice", len(data), method=None)  # by its size
    assert (upload.part_size, upload.part_count) == (PART, 3)
    first = upload.send(data, [1, 2])  # then the connection drops
    listed = upload.stored().json()
    assert [(p["part_number"], p["size"]) for p in listed["parts"]] == [(1, PART), (2, PART)]
    assert (listed["part_size"], listed["part_count"]) == (PART, 3)
    missing = sorted(set(range(1, 4)) - {p["part_number"] for p in listed["parts"]})
    rest = upload.send(data, missing)  # resumed: only what storage lacks
    done = upload.complete(first | rest)
    assert done.status_code == 200, done.text
    assert done.json()["status"] in ("pending", "processing", "ready")
    record = settle(broker, "parts-alice", upload.id)
    assert record["status"] == "ready", record
    assert record["size"] == len(data)
    served = requests.get(record["download_url"], timeout=30)
    assert served.content == data
    assert served.headers["ETag"].endswith('-3"')  # promoted by a copy in three parts


def test_below_the_threshold_a_post_form_is_the_default(broker: str) -> None:
    created = requests.post(f"{broker}/v1/uploads", headers=auth("parts-bob"), json={
        "profile": "document", "filename": "a.txt", "content_type": "text/plain",
        "size": 6 * MIB - 1}, timeout=30).json()
    assert created["upload"]["method"] == "POST"


def test_each_part_url_signs_its_planned_length_and_its_sha256(broker: str) -> None:
    data = text(11 * MIB)
    upload = start_in_parts(broker, "parts-carol", len(data))
    signed = upload.sign([1, 3], data)
    for number, length in ((1, PART), (3, MIB)):
        query = parse_qs(urlparse(signed[number]["url"]).query)
        assert query["X-Amz-SignedHeaders"] == ["content-length;host;x-amz-checksum-sha256"]
        assert query["partNumber"] == [str(number)]
        assert "x-amz-checksum-sha256" in signed[number]["headers"]
        assert len(upload.part(data, number)) == length
    bare = upload.sign([2])[2]  # no SHA-256 sent: the length alone
    assert parse_qs(urlparse(bare["url"]).query)["X-Amz-SignedHeaders"] == [
        "content-length;host"]
    assert bare["headers"] == {}


def test_completion_refuses_missing_and_missized_parts_and_stays_resumable(
        broker: str) -> None:
    data = text(12 * MIB, seed=1)
    upload = start_in_parts(broker, "parts-dave", len(data))
    upload.send(data, [1, 3])
    refused = upload.complete()
    assert refused.status_code == 422
    assert refused.json()["code"] == "parts_missing"
    assert "2" in refused.json()["detail"]
    # A part of another size than planned (the emulator does not check signatures:
    # real stores refuse it at the PUT, the conformance suite shows it).
    short = upload.sign([2])[2]
    assert upload.put(short, upload.part(data, 2)[:-10]).status_code == 200
    refused = upload.complete()
    assert refused.status_code == 422
    assert refused.json()["code"] == "part_size_mismatch"
    upload.send(data, [2])  # sent again, whole
    assert upload.complete().status_code == 200
    assert settle(broker, "parts-dave", upload.id)["status"] == "ready"


def test_completion_with_etags_other_than_storage_holds_is_refused(broker: str) -> None:
    data = text(6 * MIB, seed=2)
    upload = start_in_parts(broker, "parts-erin", len(data))
    etags = upload.send(data)
    refused = upload.complete({n: '"0123456789abcdef0123456789abcdef"' for n in etags})
    assert refused.status_code == 422
    assert refused.json()["code"] == "part_etag_mismatch"
    assert upload.complete(etags).status_code == 200
    again = upload.complete(etags)  # a retried request: harmless
    assert again.status_code == 200
    assert settle(broker, "parts-erin", upload.id)["status"] == "ready"
    late = requests.post(f"{broker}/v1/uploads/{upload.id}/parts", headers=auth("parts-erin"),
                         json={"part_numbers": [1]}, timeout=30)
    assert late.status_code == 409
    assert late.json()["code"] == "not_pending"


@pytest.mark.parametrize(("body", "code"), [
    ({"part_numbers": [0]}, "invalid_part_numbers"),
    ({"part_numbers": [3]}, "invalid_part_numbers"),
    ({"part_numbers": [1, 1]}, "invalid_part_numbers"),
    ({"part_numbers": []}, "validation_error"),
    ({"part_numbers": list(range(1, 102))}, "validation_error"),
    ({"part_numbers": [1], "sha256": {"1": "not base64!"}}, "invalid_sha256"),
    ({"part_numbers": [1], "sha256": {"1": "c2hvcnQ="}}, "invalid_sha256"),
    ({"part_numbers": [1], "sha256": {"2": "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg="}},
     "invalid_part_numbers"),
    ({"part_numbers": ["1"]}, "validation_error"),
])
def test_bad_part_requests_get_a_clear_error(broker: str, body: dict[str, object],
                                             code: str) -> None:
    upload = start_in_parts(broker, "parts-frank", 6 * MIB)
    refused = requests.post(f"{broker}/v1/uploads/{upload.id}/parts", json=body,
                            headers=auth("parts-frank"), timeout=30)
    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == code
    assert upload.sign([1, 2])  # nothing lost: the upload still takes its parts


def test_parts_of_another_users_upload_or_of_a_post_upload_are_not_given(
        broker: str) -> None:
    upload = start_in_parts(broker, "parts-gina", 6 * MIB)
    for path in ("/parts", "/complete"):
        stranger = requests.post(f"{broker}/v1/uploads/{upload.id}{path}",
                                 json={"part_numbers": [1]} if path == "/parts" else {},
                                 headers=auth("parts-mallory"), timeout=30)
        assert stranger.status_code == 404
    assert requests.get(f"{broker}/v1/uploads/{upload.id}/parts",
                        headers=auth("parts-mallory"), timeout=30).status_code == 404
    form = requests.post(f"{broker}/v1/uploads", headers=auth("parts-gina"), json={
        "profile": "document", "filename": "a.txt", "content_type": "text/plain",
        "size": 10}, timeout=30).json()
    refused = requests.post(f"{broker}/v1/uploads/{form['id']}/parts",
                            json={"part_numbers": [1]}, headers=auth("parts-gina"), timeout=30)
    assert refused.status_code == 409
    assert refused.json()["code"] == "not_multipart"


def test_a_single_request_above_5_gib_is_refused_with_the_way_out(broker: str) -> None:
    refused = requests.post(f"{broker}/v1/uploads", headers=auth("parts-hal"), json={
        "profile": "document", "filename": "a.txt", "content_type": "text/plain",
        "size": 6 * 1024 ** 3, "method": "POST"}, timeout=30)
    assert refused.status_code == 422
    assert refused.json()["code"] == "use_multipart"


def test_deleting_an_unfinished_upload_aborts_its_parts(
        stack: tuple[str, DevStack]) -> None:
    broker, dev = stack
    data = text(6 * MIB, seed=3)
    upload = start_in_parts(broker, "parts-ivy", len(data))
    upload.send(data, [1])
    assert open_parts(dev, upload)
    assert requests.delete(f"{broker}/v1/uploads/{upload.id}",
                           headers=auth("parts-ivy"), timeout=30).status_code == 204
    assert open_parts(dev, upload) == []


def test_an_upload_left_unfinished_expires_and_its_parts_are_aborted(
        stack: tuple[str, DevStack], monkeypatch: pytest.MonkeyPatch) -> None:
    from broker.validator.sweep import sweep

    broker, dev = stack
    data = text(6 * MIB, seed=4)
    upload = start_in_parts(broker, "parts-jack", len(data))
    upload.send(data, [1])
    headers = auth("parts-jack")  # issued now: the clock moves on below
    real_now = clock.now
    monkeypatch.setattr(clock, "now", lambda: real_now() + timedelta(days=1, minutes=5))
    assert dev.settings is not None
    assert dev.clients is not None
    report = sweep(compose(dev.settings, dev.clients).validator)
    assert upload.id in report.expired
    assert open_parts(dev, upload) == []
    late = requests.post(f"{broker}/v1/uploads/{upload.id}/complete", json={},
                         headers=headers, timeout=30)
    assert late.status_code == 409
    assert late.json()["code"] == "expired"


def test_an_upload_past_its_lifetime_takes_no_more_parts(
        broker: str, monkeypatch: pytest.MonkeyPatch) -> None:
    upload = start_in_parts(broker, "parts-lea", 6 * MIB)
    headers = auth("parts-lea")
    real_now = clock.now
    monkeypatch.setattr(clock, "now", lambda: real_now() + timedelta(days=1, seconds=30))
    for ask in (lambda: requests.post(f"{broker}/v1/uploads/{upload.id}/parts", timeout=30,
                                      json={"part_numbers": [1]}, headers=headers),
                lambda: requests.post(f"{broker}/v1/uploads/{upload.id}/complete", json={},
                                      headers=headers, timeout=30)):
        refused = ask()
        assert refused.status_code == 409
        assert refused.json()["code"] == "expired"


def test_an_unfinished_upload_read_after_it_lapsed_is_expired_and_aborted(
        stack: tuple[str, DevStack], monkeypatch: pytest.MonkeyPatch) -> None:
    broker, dev = stack
    upload = start_in_parts(broker, "parts-kim", 6 * MIB)
    upload.send(text(6 * MIB, seed=5), [2])
    headers = auth("parts-kim")
    real_now = clock.now
    monkeypatch.setattr(clock, "now", lambda: real_now() + timedelta(days=1, minutes=5))
    record = requests.get(f"{broker}/v1/uploads/{upload.id}", headers=headers, timeout=30).json()
    assert record["status"] == "expired"
    assert open_parts(dev, upload) == []




# -- Uppy Companion's multipart protocol, as Uppy 6's AwsS3 plugin calls it -------------

def companion_start(broker: str, user: str, size: int | None = None) -> tuple[str, str]:
    metadata: dict[str, object] = {"profile": "document", "name": "big.txt"}
    if size is not None:
        metadata["size"] = size
    created = requests.post(f"{broker}/s3/multipart", headers=auth(user), timeout=30, json={
        "filename": "big.txt", "type": "text/plain", "metadata": metadata})
    assert created.status_code == 200, created.text
    body = created.json()
    assert body["bucket"] == "uploads-incoming"
    return body["key"], body["uploadId"]


def companion_put(broker: str, user: str, key: str, upload_id: str, number: int,
                  body: bytes) -> str:
    signed = requests.get(f"{broker}/s3/multipart/{upload_id}/{number}", params={"key": key},
                          headers=auth(user), timeout=30)
    assert signed.status_code == 200, signed.text
    assert signed.json()["expires"] == 300
    stored = requests.put(signed.json()["url"], data=body, timeout=60)
    assert stored.status_code == 200, stored.text
    return str(stored.headers["ETag"])


def test_uppys_companion_multipart_protocol_uploads_to_ready(broker: str) -> None:
    user = "companion-parts-amy"
    data = text(11 * MIB, seed=6)
    key, upload_id = companion_start(broker, user)
    chunks = [data[i:i + PART] for i in range(0, len(data), PART)]  # Uppy's own chunking
    etags = {1: companion_put(broker, user, key, upload_id, 1, chunks[0])}
    listed = requests.get(f"{broker}/s3/multipart/{upload_id}", params={"key": key},
                          headers=auth(user), timeout=30).json()
    assert [(p["PartNumber"], p["Size"]) for p in listed] == [(1, PART)]
    batch = requests.get(f"{broker}/s3/multipart/{upload_id}/batch",
                         params={"key": key, "partNumbers": "2,3"}, headers=auth(user),
                         timeout=30).json()["presignedUrls"]
    for number in (2, 3):
        query = parse_qs(urlparse(batch[str(number)]).query)
        assert query["X-Amz-SignedHeaders"] == ["host"]  # Uppy sizes its own parts
        stored = requests.put(batch[str(number)], data=chunks[number - 1], timeout=60)
        etags[number] = stored.headers["ETag"]
    done = requests.post(f"{broker}/s3/multipart/{upload_id}/complete", params={"key": key},
                         headers=auth(user), timeout=60, json={
                             "parts": [{"PartNumber": n, "ETag": e} for n, e in etags.items()]})
    assert done.status_code == 200, done.text
    assert done.json()["key"] == key
    assert done.json()["location"].endswith(f"/{key}")
    record = settle(broker, user)
    assert record["status"] == "ready", record
    assert requests.get(record["download_url"], timeout=30).content == data


def test_companion_multipart_of_another_user_or_key_is_404(broker: str) -> None:
    key, upload_id = companion_start(broker, "companion-parts-bo")
    other_key, _ = companion_start(broker, "companion-parts-bo")
    for path, params in ((f"{upload_id}", {"key": key}), (f"{upload_id}/1", {"key": key})):
        assert requests.get(f"{broker}/s3/multipart/{path}", params=params, timeout=30,
                            headers=auth("companion-parts-eve")).status_code == 404
    assert requests.get(f"{broker}/s3/multipart/{upload_id}/1", params={"key": other_key},
                        headers=auth("companion-parts-bo"), timeout=30).status_code == 404
    assert requests.delete(f"{broker}/s3/multipart/{upload_id}", params={"key": key},
                           headers=auth("companion-parts-eve"), timeout=30).status_code == 404
    missing = requests.get(f"{broker}/s3/multipart/{upload_id}/1", timeout=30,
                           headers=auth("companion-parts-bo"))
    assert missing.status_code == 400


def test_companion_multipart_is_bounded_by_the_profiles_maximum(broker: str) -> None:
    user = "companion-parts-cy"
    key, upload_id = companion_start(broker, user)
    # document: at most 25 MiB, so at most 6 parts when all but the last hold 5 MiB.
    refused = requests.get(f"{broker}/s3/multipart/{upload_id}/7", params={"key": key},
                           headers=auth(user), timeout=30)
    assert refused.status_code == 422
    assert refused.json()["code"] == "invalid_part_numbers"
    data = text(6 * PART, seed=7)
    etags = {n: companion_put(broker, user, key, upload_id, n,
                              data[(n - 1) * PART:n * PART]) for n in range(1, 7)}
    over = requests.post(f"{broker}/s3/multipart/{upload_id}/complete", params={"key": key},
                         headers=auth(user), timeout=60, json={
                             "parts": [{"PartNumber": n, "ETag": e} for n, e in etags.items()]})
    assert over.status_code == 422
    assert over.json()["code"] == "too_large"
    aborted = requests.delete(f"{broker}/s3/multipart/{upload_id}", params={"key": key},
                              headers=auth(user), timeout=30)
    assert aborted.status_code == 200
    assert aborted.json() == {}


def test_companion_multipart_with_a_declared_size_completes_only_that_size(
        broker: str) -> None:
    user = "companion-parts-dee"
    key, upload_id = companion_start(broker, user, size=6 * MIB)
    data = text(6 * MIB + 1, seed=8)
    etags = {1: companion_put(broker, user, key, upload_id, 1, data[:PART]),
             2: companion_put(broker, user, key, upload_id, 2, data[PART:])}
    refused = requests.post(f"{broker}/s3/multipart/{upload_id}/complete", params={"key": key},
                            headers=auth(user), timeout=60, json={
                                "parts": [{"PartNumber": n, "ETag": e}
                                          for n, e in etags.items()]})
    assert refused.status_code == 422
    assert refused.json()["code"] == "size_mismatch"


@pytest.mark.parametrize("body", [None, {"filename": 3, "type": "text/plain"},
                                  {"filename": "a.txt", "type": "text/plain"},
                                  {"filename": "a.txt", "type": "text/plain",
                                   "metadata": {"profile": "document", "size": "ten"}}])
def test_bad_companion_multipart_starts_get_a_clear_error(
        broker: str, body: dict[str, object] | None) -> None:
    refused = requests.post(f"{broker}/s3/multipart", headers=auth("companion-parts-ed"),
                            json=body, timeout=30)
    assert refused.status_code in (400, 422), refused.text
    assert refused.json()["code"] in ("malformed_json", "unknown_profile", "validation_error")
