"""Standard Webhooks signatures: `v1,` + base64 HMAC-SHA256 of `id.timestamp.body`
under each key (from `whsec_` secrets, parsed with the settings), space-separated, so a
receiver rotating its secret verifies with either."""

from __future__ import annotations

import base64
import hashlib
import hmac


def signature_header(keys: list[bytes], message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    return " ".join("v1," + base64.b64encode(hmac.new(k, signed, hashlib.sha256).digest())
                    .decode() for k in keys)
