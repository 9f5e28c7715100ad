"""Standard Webhooks signatures: `v1,` + base64 HMAC-SHA256 of `id.timestamp.body`
under each secret (`whsec_` + base64), space-separated, so a receiver rotating its
secret verifies with either."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

PREFIX = "whsec_"


def parse_secret(text: str) -> bytes:
    """The key bytes of a `whsec_…` secret; ValueError when it is not one."""
    if not text.startswith(PREFIX):
        raise ValueError("a webhook secret starts with 'whsec_'")
    try:
        key = base64.b64decode(text.removeprefix(PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a webhook secret is 'whsec_' and base64") from None
    if len(key) < 24:
        raise ValueError("a webhook secret holds at least 24 bytes")
    return key


def signature_header(keys: list[bytes], message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    return " ".join("v1," + base64.b64encode(hmac.new(k, signed, hashlib.sha256).digest())
                    .decode() for k in keys)
