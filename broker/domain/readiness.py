"""Readiness: do the services the broker depends on answer? For load balancers and
orchestrators, which send no traffic to a process that cannot serve it.

A store that answers at all (even 403 or 404 for the probe) is up; no answer, a
timeout or a 5xx is down. The probes read nothing that exists and change nothing.
"""

from __future__ import annotations

from collections.abc import Callable

from broker.common.errors import StorageError
from broker.domain.records import RecordStore
from broker.storage import Storage


def check(storage: Storage, bucket: str, records: RecordStore) -> dict[str, str]:
    """Each dependency's state: "ok", or why it is not."""
    probes: dict[str, Callable[[], None]] = {"storage": lambda: storage.ping(bucket),
                                             "records": records.ping}
    results: dict[str, str] = {}
    for name, probe in probes.items():
        try:
            probe()
            results[name] = "ok"
        except StorageError as exc:
            results[name] = str(exc)[:200]
    return results
