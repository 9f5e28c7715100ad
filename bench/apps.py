"""The WSGI apps the presign benchmark compares, each served by gunicorn."""

from __future__ import annotations

import os
import uuid

import boto3
from botocore.config import Config
from flask import Flask, jsonify

from broker.runtimes.serving import ready_to_serve
from broker.web import create_app

# The floor's own table: what any upload service must keep, one narrow row an upload.
FLOOR_TABLE = """
CREATE TABLE IF NOT EXISTS floor_uploads (
    id text PRIMARY KEY, owner text NOT NULL, key text NOT NULL,
    expires_at timestamptz NOT NULL)
"""


def broker_app() -> Flask:
    """The real broker: auth, profile checks, record write, presign; served as
    `broker serve` serves it."""
    return ready_to_serve(create_app())


def _bare(with_insert: bool) -> Flask:
    app = Flask(__name__)
    s3 = boto3.client("s3", endpoint_url=os.environ["BROKER_ENDPOINT_URL"],
                      region_name="us-east-1", config=Config(signature_version="s3v4"))
    pool = None
    if with_insert:
        from psycopg_pool import ConnectionPool

        pool = ConnectionPool(os.environ["BROKER_DATABASE_URL"], min_size=4, max_size=16,
                              kwargs={"autocommit": True})
        with pool.connection() as conn:
            conn.execute(FLOOR_TABLE)

    @app.post("/presign")
    def presign():  # type: ignore[no-untyped-def]
        key = f"incoming/{uuid.uuid4().hex}"
        signed = s3.generate_presigned_post(
            Bucket="uploads-incoming", Key=key, ExpiresIn=300,
            Fields={"Content-Type": "image/png"},
            Conditions=[{"Content-Type": "image/png"}, ["content-length-range", 10, 10]])
        if pool is not None:
            with pool.connection() as conn:  # one committed INSERT (autocommit)
                conn.execute("INSERT INTO floor_uploads VALUES (%s, %s, %s, "
                             "now() + interval '5 minutes')", (key[9:], "user", key))
        return jsonify(signed)

    return app


def bare_app() -> Flask:
    """Flask plus one generate_presigned_post, nothing else."""
    return _bare(with_insert=False)


def floor_app() -> Flask:
    """The durable floor: the bare presign, and one committed INSERT of a narrow row into
    the PostgreSQL the broker uses."""
    return _bare(with_insert=True)
