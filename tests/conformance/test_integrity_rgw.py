"""On a real S3 (Ceph RGW): an object swapped while the validator delivers it is never
served, and the swapped-in object is judged or quarantined, never lost; with versions
(as provisioned) and without them."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest

from broker.compose import compose
from broker.devstack.stack import DevStack
from broker.web import create_app
from tests.conformance.conftest import Rgw
from tests.samples import HTML_AS_PNG, SECRET
from tests.unit.test_integrity import (
    INCOMING,
    KIND_IDS,
    KINDS,
    Kind,
    process_every_version,
    served,
    swap_during_second,
    unversioned,
    upload,
    versions,
)
from tests.unit.test_validator import Stage

pytestmark = pytest.mark.conformance


@pytest.fixture(scope="module")
def rgw_stack(rgw: Rgw) -> Iterator[DevStack]:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_ACCESS_KEY_ID", rgw.access_key)
        env.setenv("AWS_SECRET_ACCESS_KEY", rgw.secret_key)
        stack = DevStack(broker_origin="http://127.0.0.1:1", overrides={
            "jwt_secret": SECRET, "s3_endpoint_url": rgw.endpoint, "events": "http"})
        stack.start(with_worker=False)  # events are delivered by hand, swaps in between
        try:
            yield stack
        finally:
            stack.stop()


@pytest.fixture
def stage(rgw_stack: DevStack) -> Stage:
    settings, clients = rgw_stack.settings, rgw_stack.clients
    assert settings is not None
    assert clients is not None
    clients.s3.put_bucket_versioning(Bucket=INCOMING,
                                     VersioningConfiguration={"Status": "Enabled"})
    app = create_app(settings.model_dump(), clients=clients)
    return Stage(app, clients, compose(settings, clients).validator)


@pytest.mark.parametrize("versioning", ["versioned", "unversioned"])
@pytest.mark.parametrize("kind", KINDS, ids=KIND_IDS)
def test_a_swap_during_delivery_on_rgw_serves_only_judged_bytes(
        stage: Stage, kind: Kind, versioning: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if versioning == "unversioned":
        unversioned(stage)
    record = upload(stage, kind)
    swap_during_second(monkeypatch, stage, record, HTML_AS_PNG)
    outcomes = []
    for _ in range(3):  # a swap caught mid-delivery is retried, as the queue would
        try:
            outcomes.append(stage.process(record))
            break
        except Exception as exc:  # the retry is the point: the queue would deliver again
            outcomes.append(type(exc).__name__)
    settled = stage.reread(record)
    assert settled.status in ("ready", "rejected"), outcomes
    if settled.status == "ready":
        body = served(stage, record)
        assert hashlib.sha256(body).hexdigest() == settled.served_sha256
        if record.visibility == "private":
            assert body == kind.data  # copied: the judged bytes exactly
    else:  # the swapped-in HTML was judged in the original's place, and refused
        assert stage.keys("uploads-public", record.id) == []
        assert stage.keys("uploads-private", record.id) == []
    process_every_version(stage)
    assert stage.keys(INCOMING, "incoming/") == []
    assert versions(stage.aws) == []
