"""The HTTP push receiver: Ceph RGW and MinIO POST bucket notifications here.

A notification is processed before the answer, so a 2xx means done: on a
failure the store gets 503 and delivers again (at least once, like SQS).
Every request must carry the shared token, in the path (`/events/<token>`,
what an RGW push-endpoint URL can hold) or as `Authorization: Bearer <token>`
(what MinIO's webhook `auth_token` sends).
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
from collections.abc import Iterable
from typing import Any

from werkzeug.exceptions import HTTPException
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

from broker.common import metrics
from broker.common.parsing import UnreadableJson, parse_json
from broker.domain import readiness
from broker.domain.inspection import OUTAGES
from broker.validator.events import MalformedEvent, refs_from_notification
from broker.validator.judge import Validator

log = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024  # notifications are a few KiB


def _answer(code: int, **body: Any) -> Response:
    return Response(json.dumps(body), status=code, mimetype="application/json")


class PushReceiver:
    """A WSGI app that turns pushed notifications into validator runs."""

    def __init__(self, validator: Validator, token: str) -> None:
        if len(token) < 16:
            raise ValueError("the event token must be at least 16 characters")
        self.validator = validator
        self._token = token.encode()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        request.max_content_length = MAX_BODY
        try:
            response = self._handle(request)
        except HTTPException as exc:  # e.g. a body over MAX_BODY
            response = _answer(exc.code or 400, error=exc.name)
        return response(environ, start_response)

    def _handle(self, request: Request) -> Response:
        parts = request.path.strip("/").split("/")
        if parts == ["metrics"] and request.method == "GET":
            body, content_type = metrics.exposition()
            return Response(body, content_type=content_type)
        if parts == ["readyz"] and request.method == "GET":
            return self._readiness()
        if parts[0] != "events" or len(parts) > 2:
            return _answer(404, error="not found")
        if request.method != "POST":
            return _answer(405, error="POST notifications here")
        if not self._authorized(request, parts[1] if len(parts) == 2 else ""):
            log.warning("refused a push notification without the right token")
            return _answer(401, error="a valid event token is required")
        try:
            notification = parse_json(request.get_data())
            refs = refs_from_notification(notification if isinstance(notification, dict)
                                          else {})
        except (UnreadableJson, MalformedEvent) as exc:
            return _answer(400, error=f"not an S3 notification: {exc}")
        try:
            outcomes = [self.validator.process(ref) for ref in refs]
        except OUTAGES as exc:
            metrics.count_outage(exc)
            log.warning("push notification will be redelivered: %s", exc)
            return _answer(503, error="try again")
        except Exception:
            # A bug: logged in full; the store redelivers, and the sweeper re-drives it.
            log.exception("a push notification failed unexpectedly")
            return _answer(500, error="internal error")
        for ref, outcome in zip(refs, outcomes, strict=True):
            log.info("s3://%s/%s: %s", ref.bucket, ref.key, outcome)
        return _answer(200, outcomes=outcomes)

    def _readiness(self) -> Response:
        """200 when storage and the records answer, else 503 naming what does not."""
        v = self.validator
        checks = readiness.check(v.storage, v.settings.incoming_bucket, v.records,
                                 v.scanner if v.settings.scanner == "clamd" else None,
                                 v.settings.scanner_max_signature_age)
        ready = all(state == "ok" for state in checks.values())
        return _answer(200 if ready else 503, status="ready" if ready else "unavailable",
                       checks=checks)

    def _authorized(self, request: Request, path_token: str) -> bool:
        header = request.headers.get("Authorization", "")
        offered = path_token or header.removeprefix("Bearer ").strip()
        return hmac.compare_digest(offered.encode(), self._token)


def serve_push(receiver: PushReceiver, host: str, port: int) -> BaseWSGIServer:
    """Serve the receiver on a background thread; `.shutdown()` stops it."""
    server = make_server(host, port, receiver, threaded=True)
    threading.Thread(target=server.serve_forever, name="push-receiver", daemon=True).start()
    return server
