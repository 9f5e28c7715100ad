"""The OpenAPI 3.1 document, generated from the request and response models."""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from broker.domain.schemas import (
    CompanionParams,
    CompleteUpload,
    CreateUpload,
    PartUrls,
    Problem,
    ProfileList,
    SessionCreated,
    SignParts,
    StoredParts,
    UploadCreated,
    UploadPage,
    UploadView,
    UsageView,
)
from broker.domain.uploads import MAX_WAIT

REF = "#/components/schemas/{model}"
_ERRORS = {
    "400": "The body cannot be read (malformed_json)",
    "401": "Missing, invalid or expired token",
    "403": "A session-cookie request from an origin that may not use it",
    "404": "No such upload for this caller",
    "409": "The upload is not in a state that allows this",
    "413": "The body is larger than 1 MiB",
    "415": "The body is not JSON",
    "422": "A rule the client can fix; `code` says which",
    "429": "Over the caller's limit; retry after `retry_after` seconds (also Retry-After)",
    "503": "A store is unavailable; retry after `retry_after` seconds (also Retry-After)",
}
# Every authenticated call can meet these: no or bad credentials, a store outage.
_AUTHENTICATED = ("401", "503")
# A change authenticated by the session cookie is refused from another origin.
_CHANGE = (*_AUTHENTICATED, "403")


def _json(model: str, description: str) -> dict[str, Any]:
    media = "application/problem+json" if model == "Problem" else "application/json"
    return {"description": description,
            "content": {media: {"schema": {"$ref": REF.format(model=model)}}}}


def _op(summary: str, ok: dict[str, Any], *errors: str, body: str | None = None,
        auth: bool = True) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": dict(ok)}
    for status in errors:
        op["responses"][status] = _json("Problem", _ERRORS.get(status, "See `code`"))
    if body:
        op["requestBody"] = {"required": True, "content": {
            "application/json": {"schema": {"$ref": REF.format(model=body)}}}}
    if not auth:
        op["security"] = []
    return op


_ID = [{"name": "upload_id", "in": "path", "required": True, "schema": {"type": "string"}}]


@cache
def openapi_document() -> dict[str, Any]:
    models: list[type[BaseModel]] = [CreateUpload, UploadCreated, UploadView, UploadPage,
                                     ProfileList, SessionCreated, Problem, CompanionParams,
                                     UsageView, SignParts, PartUrls, StoredParts,
                                     CompleteUpload]
    _, defs = models_json_schema([(m, "validation") for m in models], ref_template=REF)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Direct-upload broker", "version": "1"},
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "session": {"type": "apiKey", "in": "cookie", "name": "broker_session"},
            },
        },
        "security": [{"bearer": []}, {"session": []}],
        "paths": {
            "/v1/uploads": {
                "post": _op("Ask to upload a file; returns a presigned POST (or PUT), or "
                            "the plan of its parts (multipart)",
                            {"201": _json("UploadCreated", "Upload recorded; POST the file")},
                            "400", *_CHANGE, "415", "422", "429", body="CreateUpload"),
                "get": _op("The caller's uploads, newest first",
                           {"200": _json("UploadPage", "One page")}, *_AUTHENTICATED, "422")
                | {"parameters": [
                    {"name": "limit", "in": "query", "schema": {
                        "type": "integer", "minimum": 1, "maximum": 100, "default": 20}},
                    {"name": "cursor", "in": "query", "schema": {"type": "string"}}]},
            },
            "/v1/uploads/{upload_id}": {
                "parameters": _ID,
                "get": _op("One upload; with `wait`, answered once its status changes (a "
                           "long poll)", {"200": _json("UploadView", "The upload")},
                           *_AUTHENTICATED, "404", "422")
                | {"parameters": [
                    {"name": "wait", "in": "query", "description": "Seconds to wait for the "
                     "status to change before answering; answered at once when settled.",
                     "schema": {"type": "integer", "minimum": 0, "maximum": MAX_WAIT}}]},
                "delete": _op("Delete an upload and its stored file",
                              {"204": {"description": "Deleted"}}, *_CHANGE, "404", "409"),
            },
            "/v1/uploads/{upload_id}/parts": {
                "parameters": _ID,
                "post": _op("URLs for some parts of a multipart upload, each signed for the "
                            "part's planned length (and SHA-256, when sent)",
                            {"200": _json("PartUrls", "PUT each part to its URL")},
                            "400", *_CHANGE, "404", "409", "415", "422", body="SignParts"),
                "get": _op("The parts storage already holds (to resume)",
                           {"200": _json("StoredParts", "Send the others, then complete")},
                           *_AUTHENTICATED, "404", "409"),
            },
            "/v1/uploads/{upload_id}/complete": {
                "parameters": _ID,
                "post": _op("Complete a multipart upload once storage holds every planned "
                            "part at its planned size (else 422 parts_missing, "
                            "part_size_mismatch, part_etag_mismatch; the upload stays open)",
                            {"200": _json("UploadView", "The upload, now judged like any "
                                          "other")},
                            "400", *_CHANGE, "404", "409", "413", "415", "422",
                            body="CompleteUpload"),
            },
            "/v1/uploads/{upload_id}/events": {
                "parameters": _ID,
                "get": _op("Server-sent events: the upload now, then each change until it "
                           "settles", {"200": {"description": "`event: status` lines whose "
                                               "data is the upload as GET shows it",
                                               "content": {"text/event-stream": {
                                                   "schema": {"type": "string"}}}}},
                           *_AUTHENTICATED, "404"),
            },
            "/v1/uploads/{upload_id}/download": {
                "parameters": _ID,
                "get": _op("Redirect to the file",
                           {"302": {"description": "To a presigned GET or the CDN URL"}},
                           *_AUTHENTICATED, "404", "409"),
            },
            "/v1/profiles": {"get": _op(
                "Upload profiles and their limits",
                {"200": _json("ProfileList", "The profiles")}, auth=False)},
            "/v1/usage": {"get": _op(
                "What the caller stores against their storage quota",
                {"200": _json("UsageView", "Usage and limits")}, *_AUTHENTICATED)},
            "/v1/session": {
                "post": _op("Exchange a bearer token for a session cookie",
                            {"201": _json("SessionCreated", "Cookie set")}, "401"),
                "delete": _op("Clear the session cookie", {"204": {"description": "Cleared"}},
                              auth=False),
            },
            "/s3/params": {"get": _op(
                "Uppy Companion's S3 protocol: a presigned POST for one file",
                {"200": _json("CompanionParams", "Companion's answer")},
                *_CHANGE, "422", "429") | {"parameters": [
                    {"name": "filename", "in": "query", "required": True,
                     "schema": {"type": "string"}},
                    {"name": "type", "in": "query", "required": True,
                     "schema": {"type": "string"}},
                    {"name": "metadata[profile]", "in": "query", "required": True,
                     "schema": {"type": "string"}, "description": "The upload profile."},
                    {"name": "metadata[size]", "in": "query",
                     "schema": {"type": "string", "pattern": "^[0-9]+$"},
                     "description": "The file's size in bytes, when known: pinned exactly."},
                ]}},
            "/healthz": {"get": _op("Health", {"200": {"description": "Healthy"}}, auth=False)},
            "/readyz": {"get": _op(
                "Readiness: storage and records answer",
                {"200": {"description": "Ready; `checks` names each dependency"},
                 "503": {"description": "A dependency does not answer; `checks` says which"}},
                auth=False)},
        },
    }
