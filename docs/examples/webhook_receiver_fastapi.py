"""A FastAPI receiver for the broker's webhooks, verified with the Standard Webhooks
reference library before anything is trusted.

    BROKER_WEBHOOK_SECRET=whsec_... uvicorn docs.examples.webhook_receiver_fastapi:app
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import FastAPI, Request, Response
from standardwebhooks.webhooks import Webhook, WebhookVerificationError


def create_app(secret: str) -> FastAPI:
    app = FastAPI()
    verifier = Webhook(secret)
    seen: set[str] = set()  # webhook-id of each event handled: use your database
    app.state.events: list[dict[str, Any]] = []  # what your app would act upon

    @app.post("/webhooks")
    async def receive(request: Request) -> Response:
        body = await request.body()  # the raw bytes: the signature covers them
        try:
            event = verifier.verify(body, dict(request.headers))
        except WebhookVerificationError:
            return Response(status_code=400)  # forged, altered or too old: ignore it
        event_id = request.headers["webhook-id"]  # the same on every retry
        if event_id not in seen:
            upload = event["data"]
            app.state.events.append({"type": event["type"], "id": upload["id"],
                                     "owner": upload["owner"], "url": upload.get("url")})
            seen.add(event_id)
        return Response(status_code=204)  # 2xx once recorded: the broker stops retrying

    return app


if "BROKER_WEBHOOK_SECRET" in os.environ:
    app = create_app(os.environ["BROKER_WEBHOOK_SECRET"])
