"""Who is calling: a bearer token, or the session cookie that `POST /v1/session` set."""

from __future__ import annotations

from collections.abc import Callable

from flask import current_app, g, request

from broker.common.errors import Forbidden, NotAuthenticated
from broker.domain.auth import Identity, bearer_token
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
    signed_in = services().owner
    if header is not None:
        token = bearer_token(header)
    elif signed_in is not None:
        return _app_session(signed_in)
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
    return verify_token(token).owner


def verify_token(token: str) -> Identity:
    """The identity a bearer token proves; NotAuthenticated when it proves none."""
    tokens = services().tokens
    if tokens is None:
        raise NotAuthenticated("This broker takes no bearer tokens: sign in to the app.",
                               code="tokens_not_accepted")
    return tokens.verify(token)


def _app_session(signed_in: Callable[[], str | None]) -> str:
    """Mounted in an app: the app's own sign-in says who calls, a cookie like ours, held
    to the same cross-site rule."""
    owner = signed_in()
    if not owner:
        raise NotAuthenticated("Sign in to upload or see your uploads.", code="not_signed_in")
    if request.method not in SAFE_METHODS:
        _check_origin()
    g.by_cookie = True
    return str(owner)


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
