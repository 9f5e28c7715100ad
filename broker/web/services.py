"""The domain objects one app uses, kept in `app.extensions`."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from broker.domain.auth import TokenVerifier
from broker.domain.multipart_uploads import MultipartUploads
from broker.domain.profiles import Profiles
from broker.domain.uploads import Uploads
from broker.settings import Settings
from broker.web.limits import UploadRateLimit

EXTENSION = "broker"


@dataclass(frozen=True)
class Services:
    settings: Settings
    profiles: Profiles
    uploads: Uploads
    tokens: TokenVerifier
    rate_limit: UploadRateLimit
    multipart: MultipartUploads


def services() -> Services:
    """The services of the app handling this request."""
    found: Services = current_app.extensions[EXTENSION]
    return found
