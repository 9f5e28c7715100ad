"""A small client of the API's multipart protocol, as an app's backend or a CLI would
write it: ask for an upload in parts, ask for part URLs in batches, PUT the parts,
list what storage holds, complete."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any

import requests

from tests.samples import auth


@dataclass
class PartsUpload:
    broker: str
    user: str
    id: str
    part_size: int
    part_count: int

    def _url(self, path: str = "") -> str:
        return f"{self.broker}/v1/uploads/{self.id}{path}"

    def sign(self, numbers: list[int], data: bytes | None = None) -> dict[int, Any]:
        """Part URLs; with `data`, each pinned to its part's SHA-256."""
        body: dict[str, Any] = {"part_numbers": numbers}
        if data is not None:
            body["sha256"] = {str(n): base64.b64encode(
                hashlib.sha256(self.part(data, n)).digest()).decode() for n in numbers}
        reply = requests.post(self._url("/parts"), json=body, headers=auth(self.user),
                              timeout=30)
        assert reply.status_code == 200, reply.text
        return {p["part_number"]: p for p in reply.json()["parts"]}

    def part(self, data: bytes, number: int) -> bytes:
        return data[(number - 1) * self.part_size:number * self.part_size]

    def put(self, signed: dict[str, Any], body: bytes) -> requests.Response:
        return requests.put(signed["url"], data=body, headers=signed["headers"], timeout=60)

    def send(self, data: bytes, numbers: list[int] | None = None,
             hashed: bool = True) -> dict[int, str]:
        """PUT these parts (all by default) as planned; their ETags."""
        numbers = numbers or list(range(1, self.part_count + 1))
        signed = self.sign(numbers, data if hashed else None)
        etags = {}
        for n in numbers:
            stored = self.put(signed[n], self.part(data, n))
            assert stored.status_code == 200, stored.text
            etags[n] = stored.headers["ETag"]
        return etags

    def stored(self) -> requests.Response:
        return requests.get(self._url("/parts"), headers=auth(self.user), timeout=30)

    def complete(self, etags: dict[int, str] | None = None) -> requests.Response:
        body: dict[str, Any] = {}
        if etags is not None:
            body["parts"] = [{"part_number": n, "etag": e} for n, e in sorted(etags.items())]
        return requests.post(self._url("/complete"), json=body, headers=auth(self.user),
                             timeout=60)


def start_in_parts(broker: str, user: str, size: int, *, profile: str = "document",
                   filename: str = "big.txt", content_type: str = "text/plain",
                   method: str | None = "multipart") -> PartsUpload:
    body: dict[str, Any] = {"profile": profile, "filename": filename,
                            "content_type": content_type, "size": size}
    if method:
        body["method"] = method
    created = requests.post(f"{broker}/v1/uploads", json=body, headers=auth(user), timeout=30)
    assert created.status_code == 201, created.text
    plan = created.json()["upload"]
    assert plan["method"] == "multipart", plan
    return PartsUpload(broker, user, created.json()["id"], plan["part_size"],
                       plan["part_count"])
