"""Sending one webhook: no redirects, tight timeouts, and never to loopback, private or
link-local addresses unless the deployment allows them (`make run` does).

The receiver's name is resolved once and the connection made to the address that was
checked, so a name that resolves elsewhere the second time cannot slip past the check.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from broker.domain.webhooks.signing import signature_header

CONNECT_TIMEOUT = 3.0
READ_TIMEOUT = 10.0
USER_AGENT = "upload-broker-webhooks/1"


class RefusedAddress(Exception):
    """The receiver's address is one the deployment does not send to."""


@dataclass(frozen=True)
class Answer:
    ok: bool
    detail: str  # the status, or why there was none


def _checked_address(host: str, port: int, allow_private: bool) -> str:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise RefusedAddress(f"{host} does not resolve: {exc}") from None
    address = str(infos[0][4][0])
    for info in infos:
        ip = ipaddress.ip_address(info[4][0])
        if not allow_private and not ip.is_global:
            raise RefusedAddress(f"{host} resolves to {ip}, a loopback, private or "
                                 "link-local address (BROKER_WEBHOOK_ALLOW_PRIVATE allows it)")
    return address


class _PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to a checked address, verifying the certificate for the URL's name."""

    def __init__(self, host: str, address: str, port: int, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), CONNECT_TIMEOUT)
        raw.settimeout(self.timeout)
        self.sock = self._context.wrap_socket(raw, server_hostname=self.host)  # type: ignore[attr-defined]


def send(url: str, keys: list[bytes], message_id: str, payload: dict[str, object],
         allow_private: bool, timeout: float = READ_TIMEOUT) -> Answer:
    """POST one signed event; its answer (2xx is ok; a redirect is not followed)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return Answer(False, f"not an http(s) URL: {url!r}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        address = _checked_address(parts.hostname, port, allow_private)
    except RefusedAddress as exc:
        return Answer(False, str(exc))
    body = json.dumps(payload, separators=(",", ":")).encode()
    timestamp = int(time.time())
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT,
               "Host": parts.netloc, "webhook-id": message_id,
               "webhook-timestamp": str(timestamp),
               "webhook-signature": signature_header(keys, message_id, timestamp, body)}
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        connection = _PinnedHTTPS(parts.hostname, address, port, timeout)
    else:
        connection = http.client.HTTPConnection(address, port, timeout=timeout)
    try:
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connection.request("POST", target, body, headers)
        status = connection.getresponse().status
    except (OSError, http.client.HTTPException) as exc:
        return Answer(False, f"{type(exc).__name__}: {exc}")
    finally:
        connection.close()
    return Answer(200 <= status < 300, f"HTTP {status}")
