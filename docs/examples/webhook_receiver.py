"""A webhook receiver for the broker's events, verified with the Standard Webhooks
reference library before anything is trusted.

Run it next to `make run` (which lets webhooks reach loopback):

    BROKER_WEBHOOK_SECRET=whsec_... .venv/bin/python docs/examples/webhook_receiver.py

and start the broker with BROKER_WEBHOOK_URL=http://127.0.0.1:5001/webhooks and the
same BROKER_WEBHOOK_SECRET.
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask, request
from standardwebhooks.webhooks import Webhook, WebhookVerificationError


def create_app(secret: str) -> Flask:
    app = Flask(__name__)
    verifier = Webhook(secret)
    seen: set[str] = set()  # webhook-id of each event handled: use your database
    events: list[dict[str, Any]] = []  # what your app would act upon
    app.config["EVENTS"] = events

    @app.post("/webhooks")
    def receive() -> tuple[str, int]:
        try:
            # The raw body, exactly as sent: the signature covers its bytes.
            event = verifier.verify(request.get_data(), dict(request.headers))
        except WebhookVerificationError:
            return "", 400  # forged, altered or too old: ignore it
        event_id = request.headers["webhook-id"]  # the same on every retry
        if event_id in seen:
            return "", 204  # a duplicate delivery: already handled
        upload = event["data"]
        if event["type"] == "upload.ready":
            events.append({"owner": upload["owner"], "id": upload["id"],
                           "url": upload["url"], "type": event["type"]})
        else:  # upload.rejected, upload.expired, upload.deleted, ...
            events.append({"owner": upload["owner"], "id": upload["id"],
                           "type": event["type"]})
        seen.add(event_id)
        return "", 204  # 2xx once recorded: the broker stops retrying

    return app


if __name__ == "__main__":
    create_app(os.environ["BROKER_WEBHOOK_SECRET"]).run(port=5001)
