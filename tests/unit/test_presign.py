"""moto does not enforce POST policies, so the policy itself is what these tests check."""

import base64
import json
from datetime import UTC, datetime
from typing import Any

from flask.testing import FlaskClient

from tests.samples import auth


def create(client: FlaskClient, **body: Any) -> Any:
    payload = {"profile": "avatar", "filename": "me.png", "content_type": "image/png",
               "size": 1234} | body
    return client.post("/v1/uploads", json=payload, headers=auth("alice"))


def decoded_policy(fields: dict[str, str]) -> dict[str, Any]:
    policy: dict[str, Any] = json.loads(base64.b64decode(fields["policy"]))
    return policy


def test_policy_pins_key_type_size_metadata_status_and_bucket(client: FlaskClient) -> None:
    reply = create(client).get_json()
    fields = reply["upload"]["fields"]
    conditions = decoded_policy(fields)["conditions"]
    assert {"bucket": "uploads-incoming"} in conditions
    assert {"key": f"incoming/{reply['id']}"} in conditions
    assert {"Content-Type": "image/png"} in conditions
    assert ["content-length-range", 1234, 1234] in conditions
    assert {"x-amz-meta-upload-id": reply["id"]} in conditions
    assert {"success_action_status": "201"} in conditions
    assert fields["key"] == f"incoming/{reply['id']}"
    assert fields["Content-Type"] == "image/png"
    assert fields["x-amz-meta-upload-id"] == reply["id"]


def test_policy_is_signed_with_sigv4(client: FlaskClient) -> None:
    fields = create(client).get_json()["upload"]["fields"]
    assert fields["x-amz-algorithm"] == "AWS4-HMAC-SHA256"
    conditions = decoded_policy(fields)["conditions"]
    assert {"x-amz-algorithm": "AWS4-HMAC-SHA256"} in conditions


def test_policy_expires_after_five_minutes(client: FlaskClient) -> None:
    before = datetime.now(UTC)
    reply = create(client).get_json()
    expiration = decoded_policy(reply["upload"]["fields"])["expiration"]
    expires = datetime.strptime(expiration, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert 295 <= (expires - before).total_seconds() <= 302
    assert reply["expires_at"] <= expiration


def test_client_filename_never_reaches_the_key(client: FlaskClient) -> None:
    reply = create(client, filename="../../public/evil.png").get_json()
    assert "evil" not in reply["upload"]["fields"]["key"]
    assert "evil" not in json.dumps(decoded_policy(reply["upload"]["fields"]))


def test_every_presign_builds_its_own_conditions(client: FlaskClient) -> None:
    first = create(client, size=10).get_json()
    second = create(client, size=20).get_json()
    second_conditions = decoded_policy(second["upload"]["fields"])["conditions"]
    assert ["content-length-range", 20, 20] in second_conditions
    assert ["content-length-range", 10, 10] not in second_conditions
    assert len(second_conditions) == len(decoded_policy(first["upload"]["fields"])["conditions"])
