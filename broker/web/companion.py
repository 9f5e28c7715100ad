"""Uppy Companion's S3 protocol, so Uppy's AwsS3 plugin works unchanged.

`GET /s3/params?filename=…&type=…&metadata[profile]=…` answers
`{method, url, fields, expires}` like Companion; Uppy posts the form and takes
`url + fields.key` as the location, so `url` ends with a slash. Uppy sends these
calls as plain same-origin fetches: the session cookie authenticates them
(bearer tokens from `companionHeaders` work too).
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from broker.errors import InvalidRequest
from broker.parsing import whole_number
from broker.presign import PresignedUpload
from broker.web.services import services
from broker.web.session import current_owner

companion = Blueprint("companion", __name__, url_prefix="/s3")


def _metadata(name: str) -> str | None:
    return request.args.get(f"metadata[{name}]")


@companion.get("/params")
def params() -> Response:
    owner = current_owner(changes=True)  # it creates an upload, though it is a GET
    services().rate_limit.check(owner)
    profile = _metadata("profile")
    if not profile:
        raise InvalidRequest("unknown_profile",
                             "Set the upload profile in Uppy's meta: metadata[profile].")
    size_text = _metadata("size")
    size = whole_number(size_text) if size_text is not None else None
    if size_text is not None and size is None:
        raise InvalidRequest("validation_error",
                             "metadata[size] must be a whole number of bytes (digits 0-9).")
    new = services().uploads.create(
        owner, profile, request.args.get("filename", ""), request.args.get("type", ""), size,
        "POST")
    assert isinstance(new.post, PresignedUpload)
    response = jsonify({
        "method": "POST",
        "url": new.post.url.rstrip("/") + "/",
        "fields": new.post.fields,
        "expires": services().settings.presign_ttl,
    })
    response.headers["Cache-Control"] = "no-store"
    return response
