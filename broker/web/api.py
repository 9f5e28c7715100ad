"""API v1: create, read, list, download and delete uploads; profiles; sessions."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator
from typing import TypeVar

from flask import Blueprint, Response, jsonify, redirect, request, stream_with_context, url_for
from pydantic import BaseModel
from werkzeug.wrappers import Response as WerkzeugResponse

from broker.common import clock
from broker.common.errors import InvalidRequest, MalformedRequest, UnsupportedMediaType
from broker.common.parsing import UnreadableJson, parse_json, whole_number
from broker.domain.auth import bearer_token
from broker.domain.records import UploadRecord
from broker.domain.schemas import CompleteUpload, CreateUpload, SignParts, render_upload
from broker.domain.uploads import MAX_WAIT, WAITING
from broker.web.services import bounded_and_named, services
from broker.web.session import SESSION_COOKIE, current_owner, verify_token

api = Blueprint("api", __name__, url_prefix="/v1")
api.before_request(bounded_and_named)
EVENT_STREAM_SECONDS = 300  # then the stream ends; an EventSource reconnects
Model = TypeVar("Model", bound=BaseModel)


def parse_body(model: type[Model]) -> Model:
    """The JSON body as `model`; unreadable bodies get 400/415, invalid fields 422."""
    if not request.is_json:
        raise UnsupportedMediaType("Send the body as JSON with 'Content-Type: application/json'.")
    try:
        body = parse_json(request.get_data())
    except UnreadableJson as exc:
        raise MalformedRequest(f"The body is not valid JSON: {exc}.",
                               code="malformed_json") from None
    if not isinstance(body, dict):
        raise MalformedRequest("The body must be a JSON object.", code="malformed_json")
    return model.model_validate(body)


@api.post("/uploads")
def create_upload() -> tuple[Response, int, dict[str, str]]:
    owner = current_owner()
    services().rate_limit.check(owner)
    body = parse_body(CreateUpload)
    uploads = services().uploads
    new = uploads.prepare(owner, body.profile, body.filename, body.content_type, body.size,
                          body.method)
    payload = {
        "id": new.record.id,
        "status": new.record.status,
        "profile": new.record.profile,
        "expires_at": new.record.expires_at,
        "upload": new.post.as_dict(),
    }
    location = url_for(".get_upload", upload_id=new.record.id)
    answer = jsonify(payload)  # rendered before the write (see prepare), sent after it
    uploads.record(new)
    return answer, 201, {"Location": location, "Cache-Control": "no-store"}


@api.post("/uploads/<upload_id>/parts")
def sign_parts(upload_id: str) -> WerkzeugResponse:
    owner = current_owner()
    body = parse_body(SignParts)
    signed = services().multipart.sign(owner, upload_id, body.part_numbers,
                                       _part_hashes(body.sha256))
    return no_store(jsonify({"parts": [p.as_dict() for p in signed.parts],
                              "expires_at": signed.expires_at}))


@api.get("/uploads/<upload_id>/parts")
def list_parts(upload_id: str) -> WerkzeugResponse:
    plan, parts = services().multipart.stored(current_owner(), upload_id)
    return no_store(jsonify({"parts": [p.as_dict() for p in parts],
                              "part_size": plan.part_size if plan else None,
                              "part_count": plan.part_count if plan else None}))


@api.post("/uploads/<upload_id>/complete")
def complete_upload(upload_id: str) -> WerkzeugResponse:
    owner = current_owner()
    body = parse_body(CompleteUpload)
    claimed = None if body.parts is None else {p.part_number: p.etag for p in body.parts}
    if body.parts is not None and len(claimed or {}) != len(body.parts):
        raise InvalidRequest("invalid_part_numbers", "A part number is listed twice.")
    uploads = services().uploads
    record = services().multipart.complete(owner, upload_id, claimed)
    return no_store(jsonify(render_upload(uploads, record)))


def _part_hashes(given: dict[str, str]) -> dict[int, bytes]:
    """Part number -> SHA-256 digest, from the body's decimal keys and base64 values."""
    hashes: dict[int, bytes] = {}
    for key, value in given.items():
        number = whole_number(key)
        try:
            digest = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            digest = b""
        if number is None or len(digest) != 32:
            raise InvalidRequest("invalid_sha256", f"sha256[{key!r}] must map a part number "
                                 "to the part's SHA-256 in base64 (44 characters).")
        hashes[number] = digest
    return hashes


@api.get("/uploads/<upload_id>")
def get_upload(upload_id: str) -> WerkzeugResponse:
    uploads = services().uploads
    wait = request.args.get("wait")
    if wait is None:
        record = uploads.get(current_owner(), upload_id)
    else:
        seconds = whole_number(wait)
        if seconds is None or seconds > MAX_WAIT:
            raise InvalidRequest("invalid_wait", f"wait must be a whole number of seconds "
                                 f"from 0 to {MAX_WAIT}.")
        record = uploads.wait_for_change(current_owner(), upload_id, seconds)
    return no_store(jsonify(render_upload(uploads, record)))


@api.get("/uploads/<upload_id>/events")
def upload_events(upload_id: str) -> WerkzeugResponse:
    """Server-sent events: the upload now, then each change until it settles (or the
    stream's time is up; EventSource reconnects by itself). For servers that can hold
    connections; elsewhere, the long poll does the same."""
    uploads, owner = services().uploads, current_owner()
    record = uploads.get(owner, upload_id)  # 404 before the stream starts

    def event(upload: UploadRecord) -> str:
        return f"event: status\ndata: {json.dumps(render_upload(uploads, upload))}\n\n"

    def stream() -> Iterator[str]:
        current, deadline = record, clock.monotonic() + EVENT_STREAM_SECONDS
        yield event(current)
        while current.status in WAITING:
            left = deadline - clock.monotonic()
            if left <= 0:
                return
            changed = uploads.wait_for_change(owner, upload_id, min(left, MAX_WAIT))
            if changed.status == current.status:
                yield ": still waiting\n\n"  # keeps proxies from closing an idle stream
            else:
                yield event(changed)
            current = changed

    response = Response(stream_with_context(stream()), mimetype="text/event-stream")
    response.headers["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
    return no_store(response)


@api.get("/usage")
def usage() -> WerkzeugResponse:
    used, quota = services().uploads.usage(current_owner())
    return no_store(jsonify({"bytes": used.bytes, "files": used.files,
                              "quota": {"bytes": quota.bytes, "files": quota.files}}))


@api.get("/uploads")
def list_uploads() -> WerkzeugResponse:
    owner = current_owner()
    uploads = services().uploads
    limit = whole_number(request.args.get("limit", "20"))
    if limit is None:
        raise InvalidRequest("invalid_limit", "limit must be a whole number from 1 to 100.")
    records, cursor = uploads.list_page(owner, limit, request.args.get("cursor"))
    return no_store(jsonify({"items": [render_upload(uploads, r) for r in records],
                              "next_cursor": cursor}))


@api.get("/uploads/<upload_id>/download")
def download_upload(upload_id: str) -> WerkzeugResponse:
    url = services().uploads.download_url(current_owner(), upload_id)
    return no_store(redirect(url, code=302))


@api.delete("/uploads/<upload_id>")
def delete_upload(upload_id: str) -> tuple[str, int]:
    services().uploads.delete(current_owner(), upload_id)
    return "", 204


@api.get("/profiles")
def list_profiles() -> Response:
    return jsonify({"profiles": [p.public_view() for p in services().profiles]})


@api.post("/session")
def create_session() -> tuple[Response, int]:
    """Trade a bearer token for an HttpOnly cookie, for same-origin pages and Uppy."""
    token = bearer_token(request.headers.get("Authorization"))
    identity = verify_token(token)
    response = jsonify({"owner": identity.owner,
                        "expires_at": clock.isoformat(identity.expires_at)})
    response.set_cookie(
        SESSION_COOKIE, token, expires=identity.expires_at, httponly=True, samesite="Lax",
        secure=services().settings.env != "local", path="/",
    )
    return response, 201


@api.delete("/session")
def delete_session() -> Response:
    response = Response(status=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def no_store(response: WerkzeugResponse) -> WerkzeugResponse:
    # Records and download links are per user and short-lived: no shared caching.
    response.headers["Cache-Control"] = "no-store"
    return response
