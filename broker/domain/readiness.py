"""Readiness: do the services the broker depends on answer? For load balancers and
orchestrators, which send no traffic to a process that cannot serve it.

A store that answers at all (even 403 or 404 for the probe) is up; no answer, a
timeout or a 5xx is down. The probes read nothing that exists and change nothing.
With a malware scanner, it must answer and its signatures must be recent: a
database that stopped updating fails readiness rather than scanning with old
signatures unnoticed.
"""

from __future__ import annotations

from collections.abc import Callable

from broker.common import clock, metrics
from broker.common.errors import StorageError
from broker.domain.inspection.scanner import Scanner, ScannerUnavailable
from broker.domain.records import RecordStore
from broker.storage import Storage


class Stale(Exception):
    """A dependency answers, but with what it should not serve with."""


def check(storage: Storage, bucket: str, records: RecordStore, scanner: Scanner | None = None,
          max_signature_age_hours: float = 72.0) -> dict[str, str]:
    """Each dependency's state: "ok", or why it is not."""
    probes: dict[str, Callable[[], None]] = {"storage": lambda: storage.ping(bucket),
                                             "records": records.ping}
    if scanner is not None:
        probes["scanner"] = lambda: _signatures_recent(scanner, max_signature_age_hours)
    results: dict[str, str] = {}
    for name, probe in probes.items():
        try:
            probe()
            results[name] = "ok"
        except (StorageError, ScannerUnavailable, Stale) as exc:
            results[name] = str(exc)[:200]
    return results


def _signatures_recent(scanner: Scanner, max_age_hours: float) -> None:
    version = scanner.version()
    age = version.age_seconds(clock.now()) if version else None
    if age is None:
        return  # a database of one's own, with no date: nothing to compare
    metrics.SIGNATURE_AGE_SECONDS.set(age)
    if age > max_age_hours * 3600:
        raise Stale(f"{version}: the signatures are {age / 3600:.0f} h old, over "
                    f"BROKER_SCANNER_MAX_SIGNATURE_AGE ({max_age_hours:g} h); is freshclam "
                    "updating them?")
