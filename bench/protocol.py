"""The hand-written protocol code against botocore, side by side: what each one saves.

- `broker.aws.sigv4` (through `PostSigner`) signs a POST policy and a part URL, where
  botocore's `generate_presigned_post` and `generate_presigned_url` would.
- `broker.aws.lean_json` sends the records' DynamoDB calls and the worker's queue
  calls, where botocore's clients would: a GetItem and a PutItem, and a message's
  receive and delete, against the emulator.

Each figure is the calling thread's CPU per call (the emulator's time is not counted),
the median of interleaved rounds, so both sides see the same machine.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

ROUNDS = 7
SIGN_CALLS = 2000
RECORD_CALLS = 200


def _cpu_per_call(call: Callable[[], object], calls: int) -> float:
    started = time.thread_time()
    for _ in range(calls):
        call()
    return (time.thread_time() - started) / calls


def _side_by_side(ours: Callable[[], object], theirs: Callable[[], object], calls: int,
                  before: Callable[[int], object] = lambda calls: None
                  ) -> tuple[float, float]:
    """Median CPU seconds per call of each, rounds interleaved; `before(n)` readies n
    calls, untimed (what the calls consume, made by someone else in the product)."""
    for call in (ours, theirs):  # warm caches (the day's key, botocore's loaders)
        before(1)
        call()
    mine: list[float] = []
    boto: list[float] = []
    for _ in range(ROUNDS):
        for call, into in ((ours, mine), (theirs, boto)):
            before(calls)
            into.append(_cpu_per_call(call, calls))
    return statistics.median(mine), statistics.median(boto)


def bench_protocol() -> dict[str, tuple[float, float]]:
    """Per-call CPU (ours, botocore's) for each path the hand-written code takes."""
    from broker.aws.clients import make_clients
    from broker.aws.lean_json import LeanDynamoDB, LeanSqs
    from broker.aws.lean_s3 import lean_s3
    from broker.domain.presign import PostSigner
    from broker.settings import load_settings

    settings = load_settings()
    clients = make_clients(settings)
    s3, dynamodb = clients.s3, clients.dynamodb
    signer = PostSigner(s3)
    bucket, key = settings.incoming_bucket, "incoming/up_0123456789abcdef"
    conditions = [{"Content-Type": "image/png"}, ["content-length-range", 1, 5 << 20]]

    def post_ours() -> object:
        return signer.presign_post(bucket=bucket, key=key, upload_id="up_1",
                                   content_type="image/png", min_size=1, max_size=5 << 20,
                                   ttl=300)

    def post_botocore() -> object:
        return s3.generate_presigned_post(
            Bucket=bucket, Key=key, Fields={"Content-Type": "image/png"},
            Conditions=list(conditions), ExpiresIn=300)

    def part_ours() -> object:
        return signer.presign_part(bucket=bucket, key=key, multipart_id="m1", part_number=3,
                                   length=8 << 20, sha256=None, ttl=300,
                                   checksum="checksum-sha256")

    def part_botocore() -> object:
        return s3.generate_presigned_url("upload_part", ExpiresIn=300, Params={
            "Bucket": bucket, "Key": key, "UploadId": "m1", "PartNumber": 3,
            "ContentLength": 8 << 20})

    lean = LeanDynamoDB(dynamodb)
    table = settings.table
    item: dict[str, Any] = {"id": {"S": "bench-protocol"}, "owner": {"S": "bench"}}

    def get_ours() -> object:
        return lean.get_item(TableName=table, Key={"id": {"S": "bench-protocol"}})

    def get_botocore() -> object:
        return dynamodb.get_item(TableName=table, Key={"id": {"S": "bench-protocol"}})

    def put_ours() -> object:
        return lean.put_item(TableName=table, Item=item)

    def put_botocore() -> object:
        return dynamodb.put_item(TableName=table, Item=item)

    sqs, lean_sqs = clients.sqs, LeanSqs(clients.sqs)
    queue = sqs.create_queue(QueueName="bench-protocol")["QueueUrl"]

    def queue_round(client: Any) -> Callable[[], object]:
        def receive_and_delete() -> object:
            message = client.receive_message(QueueUrl=queue, MaxNumberOfMessages=1,
                                             WaitTimeSeconds=1)["Messages"][0]
            return client.delete_message(QueueUrl=queue,
                                         ReceiptHandle=message["ReceiptHandle"])
        return receive_and_delete

    def events_stored(count: int) -> None:  # the store's sends, not the worker's
        for _ in range(count):
            sqs.send_message(QueueUrl=queue, MessageBody="{}")

    lean_objects = lean_s3(s3)
    assert lean_objects is not None, "the emulator is addressed by path"

    def object_round(client: Any) -> Callable[[], object]:
        def put_get_list_delete() -> object:
            key = "incoming/bench-protocol"
            stored = client.put_object(Bucket=bucket, Key=key, Body=b"x" * 4096,
                                       ContentType="image/png", Metadata={"upload-id": "up_1"})
            with client.get_object(Bucket=bucket, Key=key,
                                   VersionId=stored["VersionId"])["Body"] as body:
                body.read()
            client.list_object_versions(Bucket=bucket, Prefix=key)
            return client.delete_object(Bucket=bucket, Key=key, VersionId=stored["VersionId"])
        return put_get_list_delete

    return {
        "object PUT+GET+LIST+DELETE": _side_by_side(object_round(lean_objects),
                                                    object_round(s3), RECORD_CALLS),
        "queue receive + delete": _side_by_side(queue_round(lean_sqs), queue_round(sqs),
                                                RECORD_CALLS, before=events_stored),
        "POST policy": _side_by_side(post_ours, post_botocore, SIGN_CALLS),
        "part URL": _side_by_side(part_ours, part_botocore, SIGN_CALLS),
        "records GetItem": _side_by_side(get_ours, get_botocore, RECORD_CALLS),
        "records PutItem": _side_by_side(put_ours, put_botocore, RECORD_CALLS),
    }


def print_protocol(figures: dict[str, tuple[float, float]]) -> None:
    print("\nhand-written protocol code against botocore (calling thread's CPU per call,"
          "\nmedian of interleaved rounds; the emulator's own time not counted):")
    print(f"  {'path':<27} {'ours':>9} {'botocore':>9} {'ours/botocore':>14}")
    for path, (ours, theirs) in figures.items():
        print(f"  {path:<27} {ours * 1e6:>6.0f} µs {theirs * 1e6:>6.0f} µs "
              f"{ours / theirs:>13.2f}x")
