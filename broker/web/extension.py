"""Uploads inside an existing Flask app, as a Flask extension.

    from broker.flask import UploadBroker

    uploads = UploadBroker(app, owner=lambda: current_user.get_id())

mounts API v1, Uppy's Companion routes and the uploader's files under
`BROKER_URL_PREFIX` (default `/uploads`), on the app's own origin: the app's sign-in
says who calls (no tokens, no CORS), and changes are held to the same cross-site rule
as the standalone broker's session cookie. Settings come from `app.config` under the
`BROKER_…` names (the environment still works). The validator runs as anywhere else:
`broker worker`, `broker run`, or the Lambda, on the same settings.

With `BROKER_APP_SIGNAL`, the app hears every verdict in its own process: the blinker
signal `upload_settled` is sent with `event` ("upload.ready", "upload.rejected",
"upload.expired", "upload.deleted"), `upload` (as its owner sees it, plus `owner`) and
`event_id`, at least once, from the outbox the verdict was written with.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from blinker import Namespace
from flask import Blueprint, Flask, url_for
from jinja2.utils import htmlsafe_json_dumps
from markupsafe import Markup

from broker.compose import Parts, compose
from broker.domain.auth import TokenVerifier
from broker.domain.schemas import render_upload
from broker.domain.webhooks.deliverer import Send
from broker.domain.webhooks.sender import Answer
from broker.settings import Settings, SettingsError, load_settings
from broker.web import problems
from broker.web.api import api
from broker.web.companion import companion
from broker.web.services import EXTENSION, Services, services

log = logging.getLogger(__name__)

BLUEPRINT = "upload_broker"
signals = Namespace()
# Sent with the app as sender: `@upload_settled.connect_via(app)`.
upload_settled = signals.signal("upload-settled")

Owner = Callable[[], str | None]


class UploadBroker:
    """The broker mounted in an app. `owner` returns the signed-in user's id, or None."""

    def __init__(self, app: Flask | None = None, *, owner: Owner,
                 parts: Parts | None = None) -> None:
        self.owner = owner
        self._parts = parts
        self._stop = threading.Event()
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Mount the routes and files in `app`, with settings from its config."""
        parts = self._parts or compose(settings_from(app.config))
        app.extensions[EXTENSION] = Services.of(parts, _tokens_if_any(parts), self.owner)
        app.register_blueprint(_mount(parts.settings.url_prefix))
        app.jinja_env.globals["upload_broker"] = self
        if parts.settings.app_signal:
            parts.start_deliverer(self._stop, parts.app_deliverer(_signal_sender(app)))

    def close(self) -> None:
        """Stop sending the signal (the app is shutting down, or a test ends)."""
        self._stop.set()

    # -- the app's own code ---------------------------------------------------------

    def get(self, upload_id: str, owner: str) -> dict[str, object]:
        """The upload as its owner sees it through the API; NotFound for another's."""
        uploads = services().uploads
        return render_upload(uploads, uploads.get(owner, upload_id))

    def list(self, owner: str, limit: int = 20, cursor: str | None = None
             ) -> tuple[list[dict[str, object]], str | None]:
        """The owner's uploads, newest first, and the cursor of the next page."""
        uploads = services().uploads
        records, next_cursor = uploads.list_page(owner, limit, cursor)
        return [render_upload(uploads, r) for r in records], next_cursor

    def download_url(self, upload_id: str, owner: str) -> str:
        """A fresh link to the served file: presigned for a private one (minutes)."""
        return services().uploads.download_url(owner, upload_id)

    def download_link(self, upload_id: str) -> str:
        """The app's own link to a file: it answers the signed-in owner with the file,
        anyone else with 404."""
        return url_for(f"{BLUEPRINT}.api.download_upload", upload_id=upload_id)

    def delete(self, upload_id: str, owner: str) -> None:
        """Remove the upload and its stored file."""
        services().uploads.delete(owner, upload_id)

    def uploader(self, profile: str, **options: Any) -> Markup:
        """The uploader for `profile`, for a template: `{{ upload_broker.uploader("avatar") }}`."""
        base = services().settings.url_prefix or "/"
        config = htmlsafe_json_dumps({"broker": base, "profile": profile, **options})
        return Markup(
            '<link rel="stylesheet" href="{css}">'
            '<div class="upload-broker"></div>'
            '<script src="{js}"></script>'
            "<script>BrokerUploader.mount(document.currentScript.previousElementSibling"
            ".previousElementSibling, {config});</script>"
        ).format(css=url_for(f"{BLUEPRINT}.static", filename="uploader.css"),
                 js=url_for(f"{BLUEPRINT}.static", filename="uploader.js"),
                 config=config)


def settings_from(config: dict[str, Any]) -> Settings:
    """The broker's settings: the app's `BROKER_…` config over the environment."""
    overrides = {name.removeprefix("BROKER_").lower(): value
                 for name, value in config.items() if name.startswith("BROKER_")}
    return load_settings(**overrides)


def _tokens_if_any(parts: Parts) -> TokenVerifier | None:
    """Bearer tokens too, when a secret or identity provider is configured."""
    try:
        return parts.tokens
    except SettingsError:
        return None  # the app's sign-in only


def _signal_sender(app: Flask) -> Send:
    """Delivers to the app by sending `upload_settled` in its context."""

    def send(url: str, keys: list[bytes], event_id: str, payload: dict[str, object],
             allow_private: bool, timeout: float) -> Answer:
        with app.app_context():
            try:
                upload_settled.send(app, event=payload["type"], upload=payload["data"],
                                    event_id=event_id)
            except Exception as exc:  # a receiver's bug: logged, and sent again later
                log.exception("a receiver of upload_settled failed")
                return Answer(False, f"a receiver failed: {type(exc).__name__}: {exc}")
        return Answer(True, "sent")

    return send


def _mount(prefix: str) -> Blueprint:
    """API v1 and Uppy's routes, answering problems as the standalone broker does, and
    the uploader's files, under `prefix`."""
    mount = Blueprint(BLUEPRINT, __name__, url_prefix=prefix or None,
                      static_folder="static", static_url_path="/static")
    problems.register(mount)
    mount.register_blueprint(api)
    mount.register_blueprint(companion)
    return mount
