"""The broker mounted in an existing Flask app: the app's sign-in says who calls, the
routes live under the prefix, the app's own pages keep their own errors, and the app's
code reads, links and deletes uploads through a Python API."""

from __future__ import annotations

import pytest
from flask import Flask, abort, render_template_string, session
from flask.testing import FlaskClient

from broker.aws.clients import AwsClients
from broker.flask import UploadBroker
from broker.settings import Settings, SettingsError
from broker.validator.events import ObjectRef
from broker.validator.judge import Validator
from tests.samples import png_bytes

ORIGIN = "http://localhost"  # the test client's own origin
AVATAR = {"profile": "avatar", "filename": "me.png", "content_type": "image/png", "size": 0}


def host_app(settings: Settings, **config: object) -> tuple[Flask, UploadBroker]:
    """A small app of its own: a sign-in that keeps the user's name in its session."""
    app = Flask("host")
    app.secret_key = "app-secret"
    app.config.update(BROKER_PUBLIC_BASE_URL=settings.public_base_url, **config)

    @app.post("/sign-in/<name>")
    def sign_in(name: str) -> str:
        session["user"] = name
        return "signed in"

    @app.get("/profile")
    def profile() -> str:
        if "user" not in session:
            abort(404)
        return render_template_string("<h1>{{ name }}</h1>{{ upload_broker.uploader('avatar') }}",
                                      name=session["user"])

    broker = UploadBroker(app, owner=lambda: session.get("user"))
    return app, broker


@pytest.fixture
def host(settings: Settings, aws: AwsClients) -> tuple[Flask, UploadBroker]:
    return host_app(settings)


def signed_in(app: Flask, user: str) -> FlaskClient:
    client = app.test_client()
    client.post(f"/sign-in/{user}")
    return client


def create(client: FlaskClient, data: bytes, prefix: str = "/uploads",
           origin: str = ORIGIN) -> tuple[int, dict[str, object]]:
    reply = client.post(f"{prefix}/v1/uploads", json=AVATAR | {"size": len(data)},
                        headers={"Origin": origin})
    return reply.status_code, reply.get_json()


def store_and_judge(aws: AwsClients, validator: Validator, created: dict[str, object],
                    data: bytes) -> None:
    fields = created["upload"]["fields"]  # type: ignore[index]
    aws.s3.put_object(Bucket="uploads-incoming", Key=fields["key"], Body=data,
                      ContentType="image/png", Metadata={"upload-id": str(created["id"])})
    assert validator.process(ObjectRef("uploads-incoming", fields["key"])) == "accepted"


def test_a_signed_in_user_creates_an_upload_under_the_prefix(
        host: tuple[Flask, UploadBroker]) -> None:
    app, _ = host
    status, created = create(signed_in(app, "alice"), png_bytes())
    assert status == 201, created
    assert created["status"] == "pending"
    assert created["upload"]["fields"]["key"].startswith("incoming/")  # type: ignore[index]


def test_nobody_signed_in_gets_a_problem_that_says_to_sign_in(
        host: tuple[Flask, UploadBroker]) -> None:
    app, _ = host
    reply = app.test_client().post("/uploads/v1/uploads", json=AVATAR | {"size": 10},
                                   headers={"Origin": ORIGIN})
    assert reply.status_code == 401
    assert reply.mimetype == "application/problem+json"
    assert reply.get_json()["code"] == "not_signed_in"


def test_a_change_from_another_site_is_refused_as_cookie_sessions_are(
        host: tuple[Flask, UploadBroker]) -> None:
    app, _ = host
    status, problem = create(signed_in(app, "alice"), png_bytes(),
                             origin="https://evil.example")
    assert status == 403
    assert problem["code"] == "origin_not_allowed"


def test_another_users_upload_is_not_found_and_the_owner_sees_it_ready(
        host: tuple[Flask, UploadBroker], aws: AwsClients, validator: Validator) -> None:
    app, broker = host
    alice, mallory = signed_in(app, "alice"), signed_in(app, "mallory")
    data = png_bytes()
    _, created = create(alice, data)
    store_and_judge(aws, validator, created, data)
    upload_id = str(created["id"])
    assert mallory.get(f"/uploads/v1/uploads/{upload_id}").status_code == 404
    seen = alice.get(f"/uploads/v1/uploads/{upload_id}").get_json()
    assert seen["status"] == "ready"
    assert seen["url"].startswith("https://cdn.example.test/")
    with app.test_request_context():
        assert broker.get(upload_id, "alice")["status"] == "ready"
        items, cursor = broker.list("alice")
        assert [item["id"] for item in items] == [upload_id]
        assert cursor is None
        assert broker.download_link(upload_id) == f"/uploads/v1/uploads/{upload_id}/download"
        assert broker.download_url(upload_id, "alice") == seen["url"]
        broker.delete(upload_id, "alice")
        assert broker.list("alice")[0] == []


def test_the_apps_own_pages_keep_their_own_errors(host: tuple[Flask, UploadBroker]) -> None:
    app, _ = host
    reply = app.test_client().get("/profile")
    assert reply.status_code == 404
    assert reply.mimetype == "text/html"  # Flask's page, not the broker's problem document


def test_a_template_renders_the_uploader_and_its_files_are_served(
        host: tuple[Flask, UploadBroker]) -> None:
    app, _ = host
    client = signed_in(app, "alice")
    page = client.get("/profile").get_data(as_text=True)
    assert '<script src="/uploads/static/uploader.js">' in page
    assert '<link rel="stylesheet" href="/uploads/static/uploader.css">' in page
    assert '"broker": "/uploads", "profile": "avatar"' in page
    for name in ("uploader.js", "uploader.css"):
        served = client.get(f"/uploads/static/{name}")
        assert served.status_code == 200
        served.close()


def test_the_prefix_comes_from_the_apps_config(settings: Settings, aws: AwsClients) -> None:
    app, _ = host_app(settings, BROKER_URL_PREFIX="/files")
    status, _ = create(signed_in(app, "alice"), png_bytes(), prefix="/files")
    assert status == 201
    assert signed_in(app, "alice").get("/uploads/v1/profiles").status_code == 404


def test_a_misspelt_setting_in_the_apps_config_stops_start_up_by_name(
        settings: Settings, aws: AwsClients) -> None:
    with pytest.raises(SettingsError, match="BROKER_PUBLIC_BASE_ULR"):
        host_app(settings, BROKER_PUBLIC_BASE_ULR="https://cdn.example.test")


def test_a_body_too_large_for_an_upload_request_is_refused_before_it_is_read(
        host: tuple[Flask, UploadBroker]) -> None:
    app, _ = host
    reply = signed_in(app, "alice").post(
        "/uploads/v1/uploads", data=b"{" + b" " * (2 * 1024 * 1024) + b"}",
        headers={"Origin": ORIGIN, "Content-Type": "application/json"})
    assert reply.status_code == 413
    assert reply.mimetype == "application/problem+json"


def test_the_app_hears_each_verdict_by_its_signal_again_after_a_receiver_fails(
        settings: Settings, aws: AwsClients) -> None:
    import threading

    from broker.compose import compose
    from broker.flask import upload_settled

    app, broker = host_app(settings, BROKER_APP_SIGNAL=True)
    heard: list[tuple[str, str, str]] = []
    arrived = threading.Event()
    failures = iter([RuntimeError("the app's database blinked")])

    @upload_settled.connect_via(app)
    def settled(sender: Flask, event: str, upload: dict[str, str], event_id: str) -> None:
        if (failure := next(failures, None)) is not None:
            raise failure  # the first attempt: it is sent again
        heard.append((event, upload["id"], upload["owner"]))
        arrived.set()

    try:
        # The validator runs on the same settings: it writes the app's outbox too.
        judge = compose(settings.model_copy(update={"app_signal": True}), aws).validator
        data = png_bytes()
        _, created = create(signed_in(app, "alice"), data)
        store_and_judge(aws, judge, created, data)
        assert arrived.wait(30), "the signal never came"
        assert heard == [("upload.ready", created["id"], "alice")]
    finally:
        broker.close()
        upload_settled.disconnect(settled, sender=app)
