"""The operators' edge: the quarantine reviewed through the API and a page, and owners
erased. Only the owners named in BROKER_OPERATORS see any of it; to everyone else
(signed in or not) it does not exist: 404.

- GET /operator: the review page (a sign-in box first, without a session)
- GET /v1/operator/quarantine: refused and withdrawn uploads, with reasons
- GET /v1/operator/quarantine/{id}/file: the quarantined file, as an attachment
- POST /v1/operator/quarantine/{id}/release {"reason"}: serve it as accepted
- POST /v1/operator/quarantine/{id}/purge: remove its file for good
- POST /v1/operator/owners/{owner}/erase {"confirm": owner}: erase every upload
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, redirect, render_template, request
from werkzeug.wrappers.response import Response as WerkzeugResponse

from broker.common.errors import InvalidRequest, NotAuthenticated, NotFound
from broker.domain.erasure import erase_owner
from broker.domain.records import UploadRecord
from broker.validator.quarantine import Quarantine
from broker.web.services import bounded_and_named, services
from broker.web.session import SESSION_COOKIE, current_owner

operator = Blueprint("operator", __name__)
operator.before_request(bounded_and_named)
QUARANTINE = "broker-quarantine"  # the app's Quarantine, in app.extensions


def _operator(changes: bool = False) -> str:
    """The signed-in operator; NotFound for anyone else, as if nothing were here."""
    try:
        owner = current_owner(changes)
    except NotAuthenticated:
        raise NotFound("There is nothing here.") from None
    if owner not in services().settings.operators:
        raise NotFound("There is nothing here.")
    return f"operator:{owner}"


def _quarantine() -> Quarantine:
    found: Quarantine = current_app.extensions[QUARANTINE]
    return found


def _item(record: UploadRecord) -> dict[str, object]:
    return {"id": record.id, "owner": record.owner, "profile": record.profile,
            "status": record.status, "filename": record.filename,
            "content_type": record.content_type or record.declared_type,
            "reason": record.reason.as_dict() if record.reason else None,
            "detail": record.reason_detail, "judged_by": record.judged_by,
            "reviewed_by": record.reviewed_by, "review_note": record.review_note,
            "updated_at": record.updated_at}


@operator.get("/operator")
def page() -> str:
    if not request.cookies.get(SESSION_COOKIE) and "Authorization" not in request.headers:
        return render_template("operator.html", signed_in=False)
    _operator()
    return render_template("operator.html", signed_in=True)


@operator.get("/v1/operator/quarantine")
def quarantine_list() -> Response:
    _operator()
    return jsonify({"items": [_item(r) for r in _quarantine().items()]})


@operator.get("/v1/operator/quarantine/<upload_id>/file")
def quarantine_file(upload_id: str) -> WerkzeugResponse:
    _operator()
    return redirect(_quarantine().file_link(upload_id), code=302)


@operator.post("/v1/operator/quarantine/<upload_id>/release")
def quarantine_release(upload_id: str) -> Response:
    actor = _operator(changes=True)
    reason = (request.get_json(silent=True) or {}).get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidRequest("reason_required", "Say why the file is released: "
                                                '{"reason": "…"}.')
    return jsonify(_item(_quarantine().release(upload_id, actor, reason.strip())))


@operator.post("/v1/operator/quarantine/<upload_id>/purge")
def quarantine_purge(upload_id: str) -> Response:
    actor = _operator(changes=True)
    return jsonify(_item(_quarantine().purge(upload_id, actor)))


@operator.post("/v1/operator/owners/<owner>/erase")
def erase(owner: str) -> Response:
    _operator(changes=True)
    if (request.get_json(silent=True) or {}).get("confirm") != owner:
        raise InvalidRequest("confirmation_required",
                             f'Confirm by sending {{"confirm": "{owner}"}}.')
    return jsonify(erase_owner(services().uploads, owner).as_dict())
