"""Uppy Companion's S3 protocol, so Uppy's AwsS3 plugin works unchanged.

`GET /s3/params?filename=…&type=…&metadata[profile]=…` answers
`{method, url, fields, expires}` like Companion; Uppy posts the form and takes
`url + fields.key` as the location, so `url` ends with a slash. Large files go
through `/s3/multipart…` with Companion's JSON: start, list parts, sign a part or a
batch, complete, abort. Uppy sends these
calls as plain same-origin fetches: the session cookie authenticates them
(bearer tokens from `companionHeaders` work too).
"""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from werkzeug.wrappers import Response as WerkzeugResponse

from broker.common.errors import InvalidRequest, MalformedRequest, NotFound
from broker.common.parsing import whole_number
from broker.domain.keys import upload_id_from_key
from broker.domain.presign import PresignedUpload
from broker.web.api import no_store
from broker.web.services import bounded_and_named, services
from broker.web.session import current_owner

companion = Blueprint("companion", __name__, url_prefix="/s3")
companion.before_request(bounded_and_named)


def _metadata(name: str) -> str | None:
    return request.args.get(f"metadata[{name}]")


@companion.get("/params")
def params() -> WerkzeugResponse:
    owner = current_owner(changes=True)  # it creates an upload, though it is a GET
    services().rate_limit.check(owner)
    profile = _metadata("profile")
    if not profile:
        raise InvalidRequest("unknown_profile",
                             "Set the upload profile in Uppy's meta: metadata[profile].")
    size = _declared_size(_metadata("size"), "metadata[size]")
    new = services().uploads.create(
        owner, profile, request.args.get("filename", ""), request.args.get("type", ""), size,
        "POST")
    assert isinstance(new.post, PresignedUpload)
    return no_store(jsonify({
        "method": "POST",
        "url": new.post.url.rstrip("/") + "/",
        "fields": new.post.fields,
        "expires": services().settings.presign_ttl,
    }))


# -- multipart, for files Uppy sends in parts (over 100 MiB by default) ----------------
# Uppy sizes its parts itself and declares no size: the profile's maximum bounds what
# is signed and completed, and the validator judges what was assembled.

@companion.post("/multipart")
def create_multipart() -> WerkzeugResponse:
    owner = current_owner()
    services().rate_limit.check(owner)
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("filename"), str) \
            or not isinstance(body.get("type"), str):
        raise MalformedRequest("Send {filename, type, metadata} as JSON.",
                               code="malformed_json")
    metadata = body.get("metadata") or {}
    if not isinstance(metadata, dict) or not metadata.get("profile"):
        raise InvalidRequest("unknown_profile",
                             "Set the upload profile in Uppy's meta: metadata.profile.")
    size = _declared_size(metadata.get("size"), "metadata.size")
    new = services().uploads.create(owner, str(metadata["profile"]), body["filename"],
                                    body["type"], size, "multipart", planned=False)
    return no_store(jsonify({"key": new.record.incoming_key,
                              "uploadId": new.record.multipart_id,
                              "bucket": services().settings.incoming_bucket}))


@companion.get("/multipart/<multipart_id>")
def list_parts(multipart_id: str) -> WerkzeugResponse:
    owner, upload_id = _upload_of(multipart_id)
    _, parts = services().multipart.stored(owner, upload_id)
    return no_store(jsonify([{"PartNumber": p.part_number, "Size": p.size, "ETag": p.etag}
                              for p in parts]))


@companion.get("/multipart/<multipart_id>/batch")
def sign_batch(multipart_id: str) -> WerkzeugResponse:
    owner, upload_id = _upload_of(multipart_id, changes=True)
    numbers = [whole_number(n) for n in request.args.get("partNumbers", "").split(",")]
    if not numbers or None in numbers:
        raise InvalidRequest("invalid_part_numbers",
                             "partNumbers must be part numbers separated by commas.")
    signed = services().multipart.sign(owner, upload_id, [n for n in numbers if n], {})
    return no_store(jsonify({"presignedUrls": {str(p.part_number): p.url
                                                for p in signed.parts}}))


@companion.get("/multipart/<multipart_id>/<part_number>")
def sign_part(multipart_id: str, part_number: str) -> WerkzeugResponse:
    owner, upload_id = _upload_of(multipart_id, changes=True)
    number = whole_number(part_number)
    if number is None:
        raise InvalidRequest("invalid_part_numbers", "The part number must be 1 to 10000.")
    signed = services().multipart.sign(owner, upload_id, [number], {})
    return no_store(jsonify({"url": signed.parts[0].url,
                              "expires": services().settings.presign_ttl}))


@companion.post("/multipart/<multipart_id>/complete")
def complete_multipart(multipart_id: str) -> WerkzeugResponse:
    owner, upload_id = _upload_of(multipart_id)
    body = request.get_json(silent=True)
    parts = body.get("parts") if isinstance(body, dict) else None
    if not isinstance(parts, list) or not all(
            isinstance(p, dict) and type(p.get("PartNumber")) is int
            and isinstance(p.get("ETag"), str) for p in parts):
        raise MalformedRequest("`parts` must be an array of {ETag, PartNumber} objects.",
                               code="malformed_json")
    claimed = {p["PartNumber"]: p["ETag"] for p in parts}
    record = services().multipart.complete(owner, upload_id, claimed)
    signer = services().uploads.post_signer
    bucket = services().settings.incoming_bucket
    return no_store(jsonify({"location": signer.object_url(bucket, record.incoming_key),
                              "key": record.incoming_key, "bucket": bucket}))


@companion.delete("/multipart/<multipart_id>")
def abort_multipart(multipart_id: str) -> WerkzeugResponse:
    owner, upload_id = _upload_of(multipart_id)
    services().uploads.delete(owner, upload_id)  # the record, and the parts with it
    return no_store(jsonify({}))


def _upload_of(multipart_id: str, changes: bool = False) -> tuple[str, str]:
    """The caller and the upload that `?key=` and the multipart id name together; a
    key or an id that is not the caller's is 404, like any other upload."""
    owner = current_owner(changes=changes)
    key = request.args.get("key")
    if key is None:
        raise MalformedRequest("Pass the object key as ?key=.", code="missing_key")
    upload_id = upload_id_from_key(services().settings.incoming_prefix, key) or ""
    record = services().uploads.get(owner, upload_id)
    if record.multipart_id != multipart_id or record.incoming_key != key:
        raise NotFound("There is no such multipart upload.")
    return owner, upload_id


def _declared_size(value: object, name: str) -> int | None:
    """The size Uppy's metadata declares, if any: a whole number of bytes."""
    if value is None:
        return None
    size = value if type(value) is int else whole_number(str(value))
    if size is None or size < 0:
        raise InvalidRequest("validation_error",
                             f"{name} must be a whole number of bytes (digits 0-9).")
    return size
