"""How much each user may store: the deployment's quota, a profile's own, and usage."""

from __future__ import annotations

from dataclasses import dataclass

from broker.settings import Settings


@dataclass(frozen=True)
class Usage:
    """What an owner stores: the bytes and files of their ready uploads."""

    bytes: int = 0
    files: int = 0


@dataclass(frozen=True)
class Quota:
    """At most this much stored (None: no limit)."""

    bytes: int | None = None
    files: int | None = None

    def allows(self, usage: Usage, more_bytes: int, more_files: int = 1) -> bool:
        return (self.bytes is None or usage.bytes + more_bytes <= self.bytes) and \
            (self.files is None or usage.files + more_files <= self.files)


class QuotaExceeded(Exception):
    """Storing this upload would take its owner over their quota."""


def deployment_quota(settings: Settings) -> Quota:
    """The deployment's storage quota per user (BROKER_QUOTA_*; profiles may set their own)."""
    return Quota(settings.quota_bytes, settings.quota_files)
