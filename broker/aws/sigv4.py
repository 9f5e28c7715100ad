"""AWS Signature Version 4 for the broker's hot path: request headers, POST policies and
presigned part URLs.

botocore signs correctly but re-derives the signing key and walks its event machinery
on every call; the broker signs one POST policy and one records write per upload, so
it keeps the day's key per credentials and signs with one HMAC. Everything else
(endpoints, retries of cold paths, presigned GETs) stays with botocore.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

from botocore.exceptions import NoCredentialsError

ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"


def _uri_encode(text: str) -> str:
    return quote(text, safe="-_.~")


class CredentialSource(Protocol):
    """botocore's Credentials (static or refreshing)."""

    def get_frozen_credentials(self) -> Any: ...


@dataclass(frozen=True)
class Stamp:
    """One signing moment: the request's timestamp, its day and its credential scope."""

    amz_date: str  # 20261201T161119Z
    day: str  # 20261201
    scope: str  # 20261201/us-east-1/dynamodb/aws4_request
    access_key: str
    token: str | None
    key: bytes

    @property
    def credential(self) -> str:
        return f"{self.access_key}/{self.scope}"

    def sign(self, string_to_sign: str) -> str:
        return hmac.new(self.key, string_to_sign.encode(), hashlib.sha256).hexdigest()

    def sign_request(self, method: str, path: str, query: str, headers: dict[str, str],
                     payload_hash: str) -> str:
        """The signature of a request's canonical form, every header in `headers` signed."""
        names = sorted(headers)
        canonical = "\n".join([
            method, path, query,
            *(f"{name}:{' '.join(headers[name].split())}" for name in names), "",
            ";".join(names), payload_hash,
        ])
        return self.sign("\n".join([ALGORITHM, self.amz_date, self.scope,
                                    hashlib.sha256(canonical.encode()).hexdigest()]))


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


class Signer:
    """Signs for one service in one region; the derived key is kept for its day (a key
    is valid for the date in its scope, so reusing it within that day is within the
    rules) and derived again when the day or the credentials change."""

    def __init__(self, credentials: CredentialSource | None, region: str,
                 service: str) -> None:
        self.credentials = credentials
        self.region = region
        self.service = service
        self._keys: dict[tuple[str, str], bytes] = {}

    def stamp(self, now: float | None = None) -> Stamp:
        if self.credentials is None:
            raise NoCredentialsError()  # as botocore would: an outage, not a bad request
        frozen = self.credentials.get_frozen_credentials()
        moment = time.gmtime(time.time() if now is None else now)
        amz_date = time.strftime("%Y%m%dT%H%M%SZ", moment)
        day = amz_date[:8]
        key = self._keys.get((frozen.secret_key, day))
        if key is None:
            key = _hmac(_hmac(_hmac(_hmac(("AWS4" + frozen.secret_key).encode(), day),
                                    self.region), self.service), "aws4_request")
            self._keys = {(frozen.secret_key, day): key}  # only today's, for the latest keys
        return Stamp(amz_date, day, f"{day}/{self.region}/{self.service}/aws4_request",
                     frozen.access_key, frozen.token, key)

    def sign_headers(self, method: str, host: str, path: str, headers: dict[str, str],
                     body: bytes, now: float | None = None, *, query: str = "",
                     payload_hash: str | None = None) -> dict[str, str]:
        """`headers` (lower-case names) plus Host, X-Amz-Date, the session token and
        Authorization, signing every header given. `path` and `query` as sent, already
        in canonical form (encoded, parameters sorted)."""
        stamp = self.stamp(now)
        signed = {**headers, "host": host, "x-amz-date": stamp.amz_date}
        if stamp.token:
            signed["x-amz-security-token"] = stamp.token
        payload_hash = payload_hash or hashlib.sha256(body).hexdigest()
        signature = stamp.sign_request(method, path, query, signed, payload_hash)
        signed["authorization"] = (f"{ALGORITHM} Credential={stamp.credential}, "
                                   f"SignedHeaders={';'.join(sorted(signed))}, "
                                   f"Signature={signature}")
        return signed

    def post_policy(self, fields: dict[str, str], conditions: list[Any], expires_in: int,
                    now: float | None = None) -> dict[str, str]:
        """The form fields of a browser POST upload (S3's POST policy): `fields`, then
        the signing fields, the base64 policy and its signature. `conditions` must
        already name the bucket and the key."""
        now = time.time() if now is None else now
        stamp = self.stamp(now)
        signing = {"x-amz-algorithm": ALGORITHM, "x-amz-credential": stamp.credential,
                   "x-amz-date": stamp.amz_date}
        if stamp.token:
            signing["x-amz-security-token"] = stamp.token
        policy = {
            "expiration": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + expires_in)),
            "conditions": [*conditions, *({name: value} for name, value in signing.items())],
        }
        encoded = base64.b64encode(json.dumps(policy).encode()).decode()
        return {**fields, **signing, "policy": encoded, "x-amz-signature": stamp.sign(encoded)}

    def presign_url(self, method: str, url: str, query: dict[str, str],
                    headers: dict[str, str], expires_in: int,
                    payload_hash: str = UNSIGNED_PAYLOAD, now: float | None = None) -> str:
        """`url` (already path-encoded) with `query` and the signing parameters, signed
        for `headers` (lower-case names; Host is added): the client must send exactly
        those. `payload_hash` is the hex SHA-256 the body must have, or unsigned."""
        stamp = self.stamp(now)
        parts = urlsplit(url)
        signed = {**headers, "host": parts.netloc}
        params = {**query, "X-Amz-Algorithm": ALGORITHM, "X-Amz-Credential": stamp.credential,
                  "X-Amz-Date": stamp.amz_date, "X-Amz-Expires": str(expires_in),
                  "X-Amz-SignedHeaders": ";".join(sorted(signed))}
        if stamp.token:
            params["X-Amz-Security-Token"] = stamp.token
        canonical_query = "&".join(f"{_uri_encode(k)}={_uri_encode(v)}"
                                   for k, v in sorted(params.items()))
        signature = stamp.sign_request(method, parts.path or "/", canonical_query, signed,
                                       payload_hash)
        return f"{parts.scheme}://{parts.netloc}{parts.path}?{canonical_query}" \
               f"&X-Amz-Signature={signature}"
