"""The web layer: the only part of the product that imports Flask."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, jsonify, render_template
from flask_cors import CORS

from broker.aws.clients import AwsClients
from broker.common import metrics
from broker.compose import Parts, compose
from broker.domain import readiness
from broker.domain.profiles import human_size
from broker.settings import load_settings
from broker.validator.quarantine import Quarantine
from broker.web import problems
from broker.web.api import api
from broker.web.companion import companion
from broker.web.openapi import openapi_document
from broker.web.operator import QUARANTINE, operator
from broker.web.services import EXTENSION, Services, services


def create_app(config: Mapping[str, Any] | None = None, *,
               clients: AwsClients | None = None, parts: Parts | None = None) -> Flask:
    """Build the broker. `config` overrides settings read from BROKER_* variables;
    `clients` replaces the AWS clients (tests, other S3 implementations); `parts`, the
    whole composition (a process that runs the validator too)."""
    parts = parts or compose(load_settings(**dict(config or {})), clients)
    settings = parts.settings
    tokens = parts.tokens  # refuse to start without a way to check tokens
    # The validator's scanner, watched here too: readiness fails when its signatures age.
    scanner = parts.scanner if settings.scanner == "clamd" else None

    app = Flask(__name__)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.jinja_env.filters["human_size"] = human_size  # "10 GiB", not "10240.0 MiB"
    app.extensions[EXTENSION] = Services.of(parts, tokens)
    problems.register(app)
    app.register_blueprint(api)
    app.register_blueprint(companion)
    app.register_blueprint(operator)
    app.extensions[QUARANTINE] = Quarantine(parts.validator)
    if settings.allowed_origins:
        # Apps on other origins call the API with bearer tokens, or with the session cookie.
        # Credentials (the session cookie) only for these origins, which CORS names one by one.
        CORS(app, resources={r"/v1/*": {}, r"/s3/*": {}}, origins=list(settings.allowed_origins),
             allow_headers=["Authorization", "Content-Type"], supports_credentials=True,
             expose_headers=["Location", "Retry-After"], max_age=3600)

    @app.get("/metrics")
    def metrics_page() -> Response:
        body, content_type = metrics.exposition()
        return Response(body, content_type=content_type, headers={"Cache-Control": "no-store"})

    @app.get("/")
    def index() -> str:
        return render_template("index.html", profiles=list(services().profiles))

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify({"status": "ok"})

    @app.get("/readyz")
    def readyz() -> tuple[Response, int]:
        uploads = services().uploads
        checks = readiness.check(uploads.storage, settings.private_bucket, uploads.records,
                                 scanner, settings.scanner_max_signature_age)
        ready = all(state == "ok" for state in checks.values())
        response = jsonify({"status": "ready" if ready else "unavailable", "checks": checks})
        response.headers["Cache-Control"] = "no-store"
        return response, 200 if ready else 503

    @app.get("/openapi.json")
    def openapi() -> Response:
        return jsonify(openapi_document())

    return app
