"""Readiness: do the services the broker depends on answer? For load balancers and
orchestrators, which send no traffic to a process that cannot serve it.

A store that answers at all (even 403 or 404 for the probe) is up; no answer, a
timeout or a 5xx is down. The probes read nothing that exists and change nothing.
"""

from __future__ import annotations

from collections.abc import Callable

from botocore.exceptions import BotoCoreError, ClientError

from broker.errors import StorageError
from broker.records import RecordStore
from broker.storage import Storage

PROBE_KEY = "readiness-probe"


def _answered(exc: ClientError) -> bool:
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 500))
    return status < 500


def check(storage: Storage, bucket: str, records: RecordStore) -> dict[str, str]:
    """Each dependency's state: "ok", or why it is not."""
    def storage_probe() -> None:
        storage.client.head_object(Bucket=bucket, Key=PROBE_KEY)

    probes: dict[str, Callable[[], None]] = {"storage": storage_probe,
                                             "records": records.ping}
    results: dict[str, str] = {}
    for name, probe in probes.items():
        try:
            probe()
            results[name] = "ok"
        except ClientError as exc:
            results[name] = "ok" if _answered(exc) else f"error: {exc}"[:200]
        except BotoCoreError as exc:
            results[name] = f"unreachable: {exc}"[:200]
        except StorageError as exc:
            results[name] = str(exc)[:200]
    return results
