"""Who is calling: a bearer token, or the session cookie that `POST /v1/session` set."""

from __future__ import annotations

from flask import current_app, g, request

from broker.common.errors import Forbidden, NotAuthenticated
from broker.domain.auth import bearer_token
from broker.web.services import services

SESSION_COOKIE = "broker_session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def current_owner(changes: bool = False) -> str:
    """The authenticated owner id; NotAuthenticated says what is missing. `changes`
    marks a GET that creates or changes something (Companion's protocol has such GETs):
    it is held to the same cross-site rule as a POST."""
    if "owner" not in g:  # once per request, however many ask
        g.owner = _authenticate()
    if changes and g.get("by_cookie"):
        _check_origin()
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
        g.by_cookie = True
        token = cookie
    return services().tokens.verify(token).owner


def _check_origin() -> None:
    """A cookie-authenticated change must come from our own page or an allowed origin:
    the browser's Origin says so, or, where it sends none (same-origin GETs), its
    Sec-Fetch-Site. A request that shows neither is refused."""
    origin = request.headers.get("Origin")
    own = request.host_url.rstrip("/")
    allowed = {own, *services().settings.allowed_origins}
    if origin is None and request.headers.get("Sec-Fetch-Site") == "same-origin":
        return
    if origin not in allowed:
        current_app.logger.warning("refused cookie request from origin %r", origin)
        raise Forbidden(f"Requests from origin {origin!r} may not use the session cookie.",
                        code="origin_not_allowed")
