"""Every error leaves as application/problem+json with a stable `code`."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Flask, Response, json
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException, InternalServerError

from broker.common import metrics
from broker.common.errors import (
    BrokerError,
    Conflict,
    Forbidden,
    InvalidRequest,
    MalformedRequest,
    NotAuthenticated,
    NotFound,
    StorageError,
    TooManyRequests,
    UnsupportedMediaType,
)

log = logging.getLogger(__name__)
PROBLEM_TYPE = "urn:problem:upload-broker:{code}"

# Each domain error's answer: the one place the domain meets HTTP.
ANSWERS: dict[type[BrokerError], tuple[int, str]] = {
    MalformedRequest: (400, "The request cannot be read"),
    NotAuthenticated: (401, "Authentication required"),
    Forbidden: (403, "Forbidden"),
    NotFound: (404, "Not found"),
    Conflict: (409, "Conflict"),
    UnsupportedMediaType: (415, "Unsupported media type"),
    InvalidRequest: (422, "The request cannot be accepted"),
    TooManyRequests: (429, "Too many requests"),
    StorageError: (503, "Storage is unavailable"),
}


def answer_for(exc: BrokerError) -> tuple[int, str]:
    """The status and title of a domain error, by its nearest mapped class."""
    for cls in type(exc).__mro__:
        if cls in ANSWERS:
            return ANSWERS[cls]
    return 500, "Internal error"


def problem(status: int, code: str, title: str, detail: str, **extra: Any) -> Response:
    body = {"type": PROBLEM_TYPE.format(code=code), "title": title, "status": status,
            "detail": detail, "code": code, **extra}
    return Response(json.dumps(body), status=status, mimetype="application/problem+json")


def _broker_error(exc: BrokerError) -> Response:
    extra = dict(exc.extra)
    if isinstance(exc, StorageError):
        metrics.count_outage(exc)
        log.error("%s failure: %s", exc.service, exc, exc_info=exc.__cause__)
        extra["retry_after"] = exc.retry_after
    status, title = answer_for(exc)
    response = problem(status, exc.code, title, exc.detail, **extra)
    if "retry_after" in extra:
        response.headers["Retry-After"] = str(extra["retry_after"])
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="uploads"'
    return response


def _validation_error(exc: ValidationError) -> Response:
    errors = [
        {"field": ".".join(str(p) for p in err["loc"]) or "(body)", "message": err["msg"]}
        for err in exc.errors()
    ]
    return problem(422, "validation_error", "The request body is not valid",
                   "One or more fields are missing or have the wrong form.", errors=errors)


def _http_error(exc: HTTPException) -> Response:
    code = (exc.name or "error").lower().replace(" ", "_")
    response = problem(exc.code or 500, code, exc.name, exc.description or exc.name)
    if exc.code == 405 and exc.get_headers():
        response.headers.update({k: v for k, v in exc.get_headers() if k == "Allow"})
    return response


def _unexpected(exc: InternalServerError) -> Response:
    # Flask has logged the traceback; the client learns nothing internal.
    return problem(500, "internal_error", "Internal error",
                   "Something went wrong on our side; it has been logged.")


def register(target: Flask | Blueprint) -> None:
    """Answer problems for the whole app (the standalone broker) or for the routes of
    one blueprint (mounted in an app, whose own pages keep their own errors)."""
    target.register_error_handler(BrokerError, _broker_error)
    target.register_error_handler(ValidationError, _validation_error)
    target.register_error_handler(InternalServerError, _unexpected)
    target.register_error_handler(HTTPException, _http_error)
