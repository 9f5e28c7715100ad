"""Per-user rate limits on creating uploads (Flask-Limiter), as problem JSON with Retry-After."""

from __future__ import annotations

import math
import time

from flask import Flask, Response
from flask_limiter import Limiter, RateLimitExceeded

from broker.settings import Settings
from broker.web.problems import problem
from broker.web.session import current_owner

LIMITED_VIEWS = ("api.create_upload", "companion.params")


def _owner_key() -> str:
    # Authenticates first: an anonymous flood gets 401, and a cross-site request riding
    # the cookie 403, without touching the counters (every limited view creates uploads).
    return f"owner:{current_owner(changes=True)}"


def install_limits(app: Flask, settings: Settings) -> Limiter:
    """Limit the views that create uploads, per authenticated user."""

    # Registered before the limiter's own hook, so it runs after it (Flask runs them last-first).
    @app.after_request
    def retry_after_only_on_refusals(response: Response) -> Response:
        if response.status_code < 400:
            response.headers.pop("Retry-After", None)
        return response

    # Should the shared store (Redis) fail, each process goes on limiting on its own
    # rather than refusing every upload or letting every one through.
    limiter = Limiter(key_func=_owner_key, app=app, storage_uri=settings.rate_limit_storage,
                      strategy="moving-window", headers_enabled=True,
                      in_memory_fallback_enabled=True)
    for endpoint in LIMITED_VIEWS:
        view = app.view_functions[endpoint]
        # Flask-Limiter's decorator is typed to admit async views too; ours are plain.
        limited = limiter.limit(settings.upload_rate_limit)(view)
        app.view_functions[endpoint] = limited  # type: ignore[assignment]

    @app.errorhandler(RateLimitExceeded)
    def rate_limited(exc: RateLimitExceeded) -> Response:
        current = limiter.current_limit
        retry_after = max(1, math.ceil(current.reset_at - time.time())) if current else 60
        response = problem(429, "rate_limited", "Too many requests",
                           f"At most {exc.description} new uploads; try again later.",
                           retry_after=retry_after)
        response.headers["Retry-After"] = str(retry_after)
        return response

    return limiter
