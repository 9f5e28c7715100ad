"""The two WSGI apps the presign benchmark compares, each served by gunicorn."""

from __future__ import annotations

import os

import boto3
from botocore.config import Config
from flask import Flask, jsonify

from broker.runtimes.serving import ready_to_serve
from broker.web import create_app


def broker_app() -> Flask:
    """The real broker: auth, profile checks, record write, presign; served as
    `broker serve` serves it."""
    return ready_to_serve(create_app())


def bare_app() -> Flask:
    """The floor: Flask plus one generate_presigned_post, nothing else."""
    app = Flask(__name__)
    s3 = boto3.client("s3", endpoint_url=os.environ["BROKER_ENDPOINT_URL"],
                      region_name="us-east-1", config=Config(signature_version="s3v4"))

    @app.post("/presign")
    def presign():  # type: ignore[no-untyped-def]
        return jsonify(s3.generate_presigned_post(
            Bucket="uploads-incoming", Key="incoming/bench", ExpiresIn=300,
            Fields={"Content-Type": "image/png"},
            Conditions=[{"Content-Type": "image/png"}, ["content-length-range", 10, 10]]))

    return app
