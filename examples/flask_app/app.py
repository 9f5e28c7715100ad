"""An app of its own that adds uploads with the broker's Flask extension.

People sign in with a name (Flask-Login), get a profile page whose avatar is served
from the public URL, and keep private documents listed with download links that
answer only them. Next to `make run`: `make example`, then http://127.0.0.1:5000/.
The lines marked `# broker` are all the upload code there is.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from flask import Flask, redirect, render_template_string, request, url_for
from flask_login import (
    LoginManager,
    UserMixin,
    current_user,
    login_required,
    login_user,
    logout_user,
)
from werkzeug.wrappers import Response

from broker.flask import UploadBroker, upload_settled  # broker


class User(UserMixin):
    def __init__(self, name: str) -> None:
        self.id = name


SIGN_IN = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Sign in</title></head>
<body><main><h1>Sign in</h1><form method="post"><label for="name">Your name</label>
<input id="name" name="name" required autocomplete="username">
<button type="submit">Sign in</button></form></main></body></html>"""

PROFILE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ user }}'s profile</title>
<style>body { font: 16px/1.5 system-ui, sans-serif; max-width: 44rem; margin: 2rem auto;
padding: 0 1rem; } .avatar { width: 6rem; height: 6rem; border-radius: 50%; object-fit: cover; }
</style></head><body><main>
<h1>{{ user }}</h1>
{% if avatar %}<img class="avatar" src="{{ avatar.url }}" alt="{{ user }}'s avatar">{% endif %}
<h2>Avatar</h2>
{{ upload_broker.uploader("avatar", library=false, onSettled="reload") }}
<h2>Documents</h2>
<ul class="documents">{% for doc in documents %}
  <li><a href="{{ link(doc.id) }}">{{ doc.filename }}</a></li>{% endfor %}</ul>
{{ upload_broker.uploader("document", library=false, onSettled="reload") }}
<form method="post" action="{{ url_for('sign_out') }}"><button>Sign out</button></form>
</main></body></html>"""


def create_app(config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config["SECRET_KEY"] = os.environ.get("EXAMPLE_SECRET_KEY") or os.urandom(24).hex()
    app.config.update(config or {})
    app.logger.setLevel(logging.INFO)
    logins = LoginManager(app)
    logins.login_view = "sign_in"
    logins.user_loader(User)
    uploads = UploadBroker(app, owner=lambda: current_user.get_id())  # broker

    @upload_settled.connect_via(app)  # broker: each verdict, in this process
    def settled(sender: Flask, event: str, upload: dict[str, Any], **extra: Any) -> None:
        app.logger.info("%s's %s: %s", upload["owner"], upload["filename"], event)

    @app.route("/sign-in", methods=["GET", "POST"])
    def sign_in() -> str | Response:
        if request.method == "POST":
            login_user(User(request.form["name"].strip()), remember=True)
            return redirect(url_for("profile"))
        return SIGN_IN

    @app.post("/sign-out")
    def sign_out() -> Response:
        logout_user()
        return redirect(url_for("sign_in"))

    @app.get("/")
    @login_required
    def profile() -> str:
        mine, _ = uploads.list(current_user.id, limit=100)  # broker
        ready = [u for u in mine if u["status"] == "ready"]  # broker
        avatar = next((u for u in ready if u["profile"] == "avatar"), None)  # broker
        documents = [u for u in ready if u["profile"] == "document"]  # broker
        return render_template_string(PROFILE, user=current_user.id, avatar=avatar,
                                      documents=documents,
                                      link=uploads.download_link)  # broker

    return app
