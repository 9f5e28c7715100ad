"""Send a large file in parts through the broker's API, as an app's backend or a
command line tool would: ask for an upload in parts, get part URLs in batches with
each part's SHA-256, PUT the parts, complete, and wait for the verdict.

    BROKER=http://127.0.0.1:8000 TOKEN=$(.venv/bin/broker token alice) \
        .venv/bin/python docs/examples/upload_in_parts.py big.txt \
        --profile document --content-type text/plain
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import requests

BATCH = 100  # part URLs asked for at once (the most the broker signs per call)


def read_part(path: Path, number: int, part_size: int) -> bytes:
    with path.open("rb") as file:
        file.seek((number - 1) * part_size)
        return file.read(part_size)


def upload_in_parts(broker: str, token: str, path: Path, profile: str,
                    content_type: str) -> dict[str, Any]:
    auth = {"Authorization": f"Bearer {token}"}
    created = requests.post(f"{broker}/v1/uploads", headers=auth, timeout=30, json={
        "profile": profile, "filename": path.name, "content_type": content_type,
        "size": path.stat().st_size, "method": "multipart"})
    created.raise_for_status()
    upload_id, plan = created.json()["id"], created.json()["upload"]
    part_size, part_count = plan["part_size"], plan["part_count"]

    # Parts storage already holds (none the first time; after a dropped connection,
    # only the others are sent again).
    held = requests.get(f"{broker}/v1/uploads/{upload_id}/parts", headers=auth, timeout=30)
    held.raise_for_status()
    done = {part["part_number"] for part in held.json()["parts"]}
    missing = [n for n in range(1, part_count + 1) if n not in done]

    for start in range(0, len(missing), BATCH):
        batch = missing[start:start + BATCH]
        hashes = {str(n): base64.b64encode(hashlib.sha256(
            read_part(path, n, part_size)).digest()).decode() for n in batch}
        signed = requests.post(f"{broker}/v1/uploads/{upload_id}/parts", headers=auth,
                               json={"part_numbers": batch, "sha256": hashes}, timeout=30)
        signed.raise_for_status()
        for part in signed.json()["parts"]:
            stored = requests.put(part["url"], headers=part["headers"], timeout=300,
                                  data=read_part(path, part["part_number"], part_size))
            stored.raise_for_status()  # storage refuses a part of another length or hash

    completed = requests.post(f"{broker}/v1/uploads/{upload_id}/complete", headers=auth,
                              json={}, timeout=60)
    completed.raise_for_status()
    upload: dict[str, Any] = completed.json()
    while upload["status"] in ("pending", "processing"):  # judged like any upload
        reply = requests.get(f"{broker}/v1/uploads/{upload_id}", params={"wait": 20},
                             headers=auth, timeout=30)
        reply.raise_for_status()
        upload = reply.json()
    return upload


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--profile", default="video")
    parser.add_argument("--content-type", default="video/mp4")
    args = parser.parse_args()
    upload = upload_in_parts(os.environ["BROKER"], os.environ["TOKEN"], args.file,
                             args.profile, args.content_type)
    print(json.dumps({k: upload[k] for k in ("id", "status", "size", "reason")}))


if __name__ == "__main__":
    main()
