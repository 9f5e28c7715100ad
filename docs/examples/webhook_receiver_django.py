"""A Django view receiving the broker's webhooks, verified with the Standard Webhooks
reference library before anything is trusted. Add `receive` to your URLconf:

    path("webhooks", webhook_receiver_django.receive)

and set BROKER_WEBHOOK_SECRET (whsec_...) in the environment, as for the broker.
"""

from __future__ import annotations

import os
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

EVENTS: list[dict[str, Any]] = []  # what your app would act upon: use your models
SEEN: set[str] = set()  # webhook-id of each event handled: a unique column in practice


@csrf_exempt  # the signature, not a CSRF token, proves where it comes from
@require_POST
def receive(request: HttpRequest) -> HttpResponse:
    verifier = Webhook(os.environ["BROKER_WEBHOOK_SECRET"])
    try:
        # request.body is the raw bytes, exactly as sent: the signature covers them.
        event = verifier.verify(request.body, dict(request.headers))
    except WebhookVerificationError:
        return HttpResponse(status=400)  # forged, altered or too old: ignore it
    event_id = request.headers["webhook-id"]  # the same on every retry
    if event_id not in SEEN:
        upload = event["data"]
        EVENTS.append({"type": event["type"], "id": upload["id"], "owner": upload["owner"],
                       "url": upload.get("url")})
        SEEN.add(event_id)
    return HttpResponse(status=204)  # 2xx once recorded: the broker stops retrying
