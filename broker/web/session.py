"""Who is calling: a bearer token, or the session cookie that `POST /v1/session` set."""

from __future__ import annotations

from flask import current_app, g, request

from broker.auth import bearer_token, owner_from_token
from broker.errors import Forbidden, NotAuthenticated
from broker.web.services import services

SESSION_COOKIE = "broker_session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def current_owner() -> str:
    """The authenticated owner id; NotAuthenticated says what is missing."""
    if "owner" not in g:  # once per request: the rate limiter asks first
        g.owner = _authenticate()
    owner: str = g.owner
    return owner


def _authenticate() -> str:
    header = request.headers.get("Authorization")
    if header is not None:
        token = bearer_token(header)
    else:
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie:
            raise NotAuthenticated(
                "Send 'Authorization: Bearer <token>' or sign in with POST /v1/session.",
                code="missing_token")
        if request.method not in SAFE_METHODS:
            _check_origin()  # cookies ride along on cross-site requests; tokens do not
        token = cookie
    return owner_from_token(services().secret, token)


def _check_origin() -> None:
    origin = request.headers.get("Origin")
    own = request.host_url.rstrip("/")
    allowed = {own, *services().settings.allowed_origins}
    if origin not in allowed:
        current_app.logger.warning("refused cookie request from origin %r", origin)
        raise Forbidden(f"Requests from origin {origin!r} may not use the session cookie.",
                        code="origin_not_allowed")
