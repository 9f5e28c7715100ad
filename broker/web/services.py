"""The domain objects one app uses, kept in `app.extensions`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flask import current_app, request

from broker.common.logs import set_upload
from broker.compose import Parts
from broker.domain.auth import TokenVerifier
from broker.domain.multipart_uploads import MultipartUploads
from broker.domain.profiles import Profiles
from broker.domain.uploads import Uploads
from broker.settings import Settings
from broker.web.limits import UploadRateLimit

EXTENSION = "broker"
MAX_REQUEST_BYTES = 1024 * 1024  # requests are small JSON documents


@dataclass(frozen=True)
class Services:
    settings: Settings
    profiles: Profiles
    uploads: Uploads
    tokens: TokenVerifier | None  # None: no bearer tokens (an app's own sign-in only)
    rate_limit: UploadRateLimit
    multipart: MultipartUploads
    # Mounted in an app (the Flask extension): who is signed in to it, or None.
    owner: Callable[[], str | None] | None = None

    @classmethod
    def of(cls, parts: Parts, tokens: TokenVerifier | None,
           owner: Callable[[], str | None] | None = None) -> Services:
        return cls(parts.settings, parts.profiles, parts.uploads, tokens,
                   UploadRateLimit(parts.settings), parts.multipart, owner)


def services() -> Services:
    """The services of the app handling this request."""
    found: Services = current_app.extensions[EXTENSION]
    return found


def bounded_and_named() -> None:
    """Before each API request, standalone or mounted: a body over the limit is refused
    (413) before it is read, and every line logged names the upload the path names."""
    request.max_content_length = MAX_REQUEST_BYTES
    set_upload((request.view_args or {}).get("upload_id"))
