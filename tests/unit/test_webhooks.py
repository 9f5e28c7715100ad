"""Webhooks as the Standard Webhooks specification says, checked by its reference
verifier (the `standardwebhooks` package) in a receiver the tests run: delivered and
verified; the receiver down, failing and slow, then back; given up, then replayed."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from pydantic import SecretStr
from standardwebhooks.webhooks import Webhook
from werkzeug.serving import make_server

from broker.aws.clients import AwsClients
from broker.common import clock
from broker.compose import compose
from broker.domain.records.outbox import MAX_ATTEMPTS
from broker.domain.webhooks.deliverer import Deliverer
from broker.settings import Settings
from broker.web import create_app
from tests.integration.conftest import free_port
from tests.samples import HTML_AS_PNG, auth, png_bytes
from tests.unit.test_validator import Stage

SECRET_A = "whsec_" + base64.b64encode(b"a" * 32).decode()
SECRET_B = "whsec_" + base64.b64encode(b"b" * 32).decode()


@dataclass
class Receiver:
    """A receiver that verifies every request with the reference verifier."""

    secret: str
    mode: str = "ok"  # "ok", "fail" (HTTP 500) or "slow" (answers after the timeout)
    verified: list[dict[str, Any]] = field(default_factory=list)
    attempts: list[str] = field(default_factory=list)  # the webhook-id of each request

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items()
                   if k.startswith("HTTP_")}
        self.attempts.append(headers.get("webhook-id", ""))
        if self.mode == "slow":
            time.sleep(1.5)
        if self.mode != "ok":
            start_response("500 Internal Server Error", [("Content-Length", "0")])
            return [b""]
        self.verified.append(Webhook(self.secret).verify(body, headers) | {
            "webhook-id": headers["webhook-id"]})
        start_response("204 No Content", [])
        return [b""]


class Serving:
    """Serves a receiver on a fixed port; it can go down and come back."""

    def __init__(self, app: Receiver) -> None:
        self.app, self.port = app, free_port()
        self.start()

    def start(self) -> None:
        self.server = make_server("127.0.0.1", self.port, self.app, threaded=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()  # the port refuses connections now


@pytest.fixture
def serving() -> Iterator[Serving]:
    running = Serving(Receiver(SECRET_A))
    yield running
    running.stop()


@pytest.fixture
def receiver(serving: Serving) -> tuple[Receiver, str]:
    return serving.app, f"http://127.0.0.1:{serving.port}/hooks"


@pytest.fixture
def hooked(settings: Settings, receiver: tuple[Receiver, str]) -> Settings:
    return settings.model_copy(update={"webhook_url": receiver[1],
                                       "webhook_secret": SecretStr(SECRET_A),
                                       "webhook_allow_private": True})


@pytest.fixture
def stage(hooked: Settings, aws: AwsClients) -> Stage:
    app: Flask = create_app(hooked.model_dump(), clients=aws)
    return Stage(app, aws, compose(hooked, aws).validator)


@pytest.fixture
def deliverer(stage: Stage, hooked: Settings, aws: AwsClients) -> Deliverer:
    built = compose(hooked, aws, records=stage.validator.records).deliverer
    assert built is not None
    built.timeout = 0.5
    return built


def test_a_verdict_reaches_the_receiver_signed_as_the_specification_says(
        stage: Stage, deliverer: Deliverer, receiver: tuple[Receiver, str]) -> None:
    app, _ = receiver
    record = stage.upload(png_bytes())
    stage.process(record)
    assert deliverer.deliver_due().delivered
    (event,) = app.verified
    assert event["type"] == "upload.ready"
    assert event["timestamp"].endswith("Z")
    shown = stage.app.test_client().get(f"/v1/uploads/{record.id}", headers=auth("alice")).json
    assert event["data"] == shown | {"owner": "alice"}  # the upload as its owner sees it
    assert event["webhook-id"].startswith("msg_")
    assert deliverer.deliver_due().delivered == []  # delivered once


def test_every_reported_change_is_one_event(stage: Stage, deliverer: Deliverer,
                                            receiver: tuple[Receiver, str]) -> None:
    app, _ = receiver
    good, spoof = stage.upload(png_bytes()), stage.upload(HTML_AS_PNG, filename="x.png")
    stage.process(good)
    stage.process(spoof)
    stage.app.test_client().delete(f"/v1/uploads/{good.id}", headers=auth("alice"))
    deliverer.deliver_due()
    seen = sorted((e["data"]["id"], e["type"]) for e in app.verified)
    assert seen == sorted([(good.id, "upload.ready"), (good.id, "upload.deleted"),
                           (spoof.id, "upload.rejected")])  # none for pending, processing
    rejected = next(e for e in app.verified if e["type"] == "upload.rejected")
    assert rejected["data"]["reason"]["code"] == "type_mismatch"


def test_down_failing_and_slow_receivers_get_every_event_with_one_id(
        stage: Stage, deliverer: Deliverer, receiver: tuple[Receiver, str],
        serving: Serving) -> None:
    app, _ = receiver
    stage.process(stage.upload(png_bytes()))
    now = clock.now()
    serving.stop()  # down: connections refused
    assert deliverer.deliver_due(now).retried
    (pending,) = stage.validator.records.webhooks("pending")
    assert "ConnectionRefused" in (pending.last_error or "")
    serving.start()
    for mode in ("fail", "slow", "fail"):
        now += timedelta(minutes=1)  # past the first backoffs
        app.mode = mode
        assert deliverer.deliver_due(now).retried
        assert deliverer.deliver_due(now).retried == []  # not before its backoff
    app.mode = "ok"
    assert deliverer.deliver_due(now + timedelta(minutes=1)).delivered
    assert len(app.attempts) == 4  # the three that reached it, and the one that passed
    (done,) = [d for d in [stage.validator.records.get_webhook(pending.id)] if d]
    tried = [entry["result"] for entry in json.loads(done.history)]  # every attempt
    assert len(tried) == 5
    assert tried[0].startswith("ConnectionRefused")
    assert tried[1:] == ["HTTP 500", "TimeoutError: timed out", "HTTP 500", "HTTP 204"]
    assert len(set(app.attempts)) == 1  # the same webhook-id on every attempt
    assert len(app.verified) == 1


def give_up(stage: Stage, deliverer: Deliverer, app: Receiver) -> datetime:
    """An accepted upload whose receiver fails every attempt; the time after the last."""
    stage.process(stage.upload(png_bytes()))
    app.mode = "fail"
    now = clock.now()
    for _ in range(MAX_ATTEMPTS):
        deliverer.deliver_due(now)
        now += timedelta(days=1)
    return now


def test_a_delivery_given_up_is_listed_and_can_be_replayed(
        stage: Stage, deliverer: Deliverer, receiver: tuple[Receiver, str]) -> None:
    app, _ = receiver
    now = give_up(stage, deliverer, app)
    records = stage.validator.records
    (dead,) = records.webhooks("dead")
    assert dead.attempts == MAX_ATTEMPTS
    assert "HTTP 500" in (dead.last_error or "")
    assert records.webhooks("pending") == []
    assert deliverer.deliver_due(now + timedelta(days=3)).delivered == []  # stays dead

    app.mode = "ok"
    assert deliverer.replay_now([dead.id]).delivered == 1
    assert app.verified[0]["webhook-id"] == dead.event_id  # the same event, again
    assert records.webhooks("dead") == []


def test_private_addresses_are_refused_unless_allowed(stage: Stage, deliverer: Deliverer,
                                                       receiver: tuple[Receiver, str]) -> None:
    app, _ = receiver
    stage.process(stage.upload(png_bytes()))
    deliverer.allow_private = False
    assert deliverer.deliver_due().retried
    assert app.attempts == []  # not even connected to
    (pending,) = stage.validator.records.webhooks("pending")
    assert "loopback" in (pending.last_error or "")


def test_during_a_rotation_either_secret_verifies(
        settings: Settings, aws: AwsClients, receiver: tuple[Receiver, str]) -> None:
    app, url = receiver
    app.secret = SECRET_B  # the receiver has moved to the new secret
    both = settings.model_copy(update={"webhook_url": url, "webhook_allow_private": True,
                                       "webhook_secret": SecretStr(f"{SECRET_A} {SECRET_B}")})
    stage = Stage(create_app(both.model_dump(), clients=aws), aws, compose(both, aws).validator)
    stage.process(stage.upload(png_bytes()))
    deliverer = compose(both, aws, records=stage.validator.records).deliverer
    assert deliverer is not None
    assert deliverer.deliver_due().delivered
    assert len(app.verified) == 1


@pytest.mark.parametrize(("url", "secret", "problem"), [
    ("http://hooks.example.test/", None, "needs BROKER_WEBHOOK_SECRET"),
    ("ftp://hooks.example.test/", SECRET_A, r"is not an http\(s\) URL"),
    ("http://hooks.example.test/", "not-a-secret", "whsec_"),
])
def test_webhook_settings_are_checked_at_start(url: str, secret: str | None,
                                               problem: str) -> None:
    from broker.settings import SettingsError, load_settings

    with pytest.raises(SettingsError, match=problem):
        load_settings(webhook_url=url, webhook_secret=secret)


def test_the_outbox_is_written_only_with_the_change(stage: Stage) -> None:
    record = stage.upload(png_bytes())
    records = stage.validator.records
    # A transition whose condition fails writes no event.
    assert records.transition(record, "ready", allowed_from=("processing",)) is None
    assert records.webhooks("pending") == []




def test_broker_webhooks_lists_the_dead_and_replays_them(
        stage: Stage, deliverer: Deliverer, receiver: tuple[Receiver, str],
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from broker.cli import main

    app, url = receiver
    give_up(stage, deliverer, app)
    for name, value in {"BROKER_WEBHOOK_URL": url, "BROKER_WEBHOOK_SECRET": SECRET_A,
                        "BROKER_WEBHOOK_ALLOW_PRIVATE": "true"}.items():
        monkeypatch.setenv(name, value)
    capsys.readouterr()
    assert main(["webhooks", "list", "--dead"]) == 0
    listed = capsys.readouterr().out
    (dead,) = stage.validator.records.webhooks("dead")
    assert dead.id in listed
    assert "upload.ready" in listed
    assert "HTTP 500" in listed

    app.mode = "ok"
    assert main(["webhooks", "replay", "--all-dead"]) == 0
    assert "sent 1 of 1 again" in capsys.readouterr().out
    assert [e["webhook-id"] for e in app.verified] == [dead.event_id]


def test_an_upload_whose_permission_lapsed_is_reported_expired(
        stage: Stage, deliverer: Deliverer, receiver: tuple[Receiver, str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from broker.validator.sweep import sweep

    app, _ = receiver
    record = stage.uploads.create("alice", "avatar", "me.png", "image/png", 10).record
    real_now = clock.now
    monkeypatch.setattr(clock, "now", lambda: real_now() + timedelta(minutes=10))
    assert sweep(stage.validator).expired == [record.id]
    deliverer.deliver_due()
    (event,) = app.verified
    assert (event["type"], event["data"]["id"], event["data"]["status"]) == (
        "upload.expired", record.id, "expired")


def test_on_aws_the_signing_secret_comes_from_secrets_manager(
        stage: Stage, settings: Settings, aws: AwsClients, receiver: tuple[Receiver, str]
        ) -> None:
    import boto3

    app, url = receiver
    generated = base64.b64encode(b"s" * 33).decode()  # letters and digits, as the stack's
    arn = boto3.client("secretsmanager", region_name="us-east-1").create_secret(
        Name="webhooks", SecretString=generated)["ARN"]
    app.secret = "whsec_" + generated  # what the receiver was given
    on_aws = settings.model_copy(update={"webhook_url": url, "webhook_secret_arn": arn,
                                         "webhook_allow_private": True})
    deliverer = compose(on_aws, aws, records=stage.validator.records).deliverer
    assert deliverer is not None
    stage.process(stage.upload(png_bytes()))
    assert deliverer.deliver_due().delivered
    assert len(app.verified) == 1
