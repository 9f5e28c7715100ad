"""An app that lets its signed-in users upload an avatar through the broker.

The app never sees file bytes: it hands the browser a short-lived token for the
broker, the browser uploads straight to storage, and the app keeps only the
upload's id and public URL once the broker says the file is ready.

Run it next to `make run`:

    APP_BROKER_URL=http://127.0.0.1:8000 APP_BROKER_JWT_SECRET="$(cat .broker/secret)" \
        .venv/bin/flask --app docs/examples/app.py run --port 5000
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import requests
from flask import Flask, abort, jsonify, request, session

WAITING = ("pending", "processing")  # statuses before the verdict


def create_app(broker_url: str, jwt_secret: str) -> Flask:
    app = Flask(__name__)
    app.secret_key = os.urandom(32)  # your app's own session key
    avatars: dict[str, str] = {}  # user -> public URL: use your database

    def current_user() -> str:
        """Your sign-in goes here; this example trusts the session it set below."""
        user = session.get("user")
        if not user:
            abort(401)
        return str(user)

    def broker_token(user: str) -> str:
        """A token the broker accepts: HS256 with the shared secret, `sub` the owner."""
        now = datetime.now(UTC)
        claims = {"sub": user, "iat": now, "exp": now + timedelta(minutes=10)}
        return jwt.encode(claims, jwt_secret, algorithm="HS256")

    @app.post("/login")
    def login() -> Any:  # stands in for your real sign-in
        session["user"] = request.form["user"]
        return "", 204

    @app.get("/upload-token")
    def upload_token() -> Any:
        """The browser asks for a token before each upload (the uploader's `token`)."""
        return broker_token(current_user()), 200, {"Content-Type": "text/plain"}

    @app.get("/")
    def page() -> str:
        return f"""<!doctype html>
<div id="uploads"></div>
<script src="{broker_url}/static/uploader.js"></script>
<script>
  BrokerUploader.mount(document.getElementById("uploads"), {{
    broker: "{broker_url}",
    profile: "avatar",
    token: () => fetch("/upload-token").then((reply) => reply.text()),
    onSettled: (upload) => upload.status === "ready" && fetch("/avatar", {{
      method: "POST", headers: {{"Content-Type": "application/json"}},
      body: JSON.stringify({{upload_id: upload.id}}),
    }}),
  }});
</script>"""

    def judged(user: str, upload_id: str) -> requests.Response:
        """The broker's record of the upload once judged. A long poll answers at each
        change of status (pending, processing, then ready or rejected): ask again
        while the upload is still waiting."""
        for _ in range(3):
            reply = requests.get(f"{broker_url}/v1/uploads/{upload_id}",
                                 params={"wait": 20},  # answers as soon as it changes
                                 headers={"Authorization": f"Bearer {broker_token(user)}"},
                                 timeout=30)
            if reply.status_code != 200 or reply.json()["status"] not in WAITING:
                break
        return reply

    @app.post("/avatar")
    def set_avatar() -> Any:
        """Keep an upload as the user's avatar, once the broker has judged it."""
        user = current_user()
        reply = judged(user, request.get_json()["upload_id"])
        if reply.status_code == 404:  # not this user's upload, or no such upload
            abort(404)
        reply.raise_for_status()
        upload = reply.json()
        if upload["profile"] != "avatar" or upload["status"] != "ready":
            return jsonify(error=f"upload is {upload['status']}",
                           reason=upload["reason"]), 409
        avatars[user] = upload["url"]
        return jsonify(avatar=upload["url"])

    @app.get("/avatar")
    def get_avatar() -> Any:
        return jsonify(avatar=avatars.get(current_user()))

    return app


if os.environ.get("APP_BROKER_URL"):  # `flask --app docs/examples/app.py run`
    app = create_app(os.environ["APP_BROKER_URL"], os.environ["APP_BROKER_JWT_SECRET"])
