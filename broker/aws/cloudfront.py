"""CloudFront invalidations: what the CDN must stop serving from its cache."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def invalidator(client: Any, distribution_id: str) -> Callable[[list[str], str], None]:
    """Invalidate paths on one distribution; `reference` makes a retry idempotent."""
    def invalidate(paths: list[str], reference: str) -> None:
        client.create_invalidation(DistributionId=distribution_id, InvalidationBatch={
            "Paths": {"Quantity": len(paths), "Items": paths},
            "CallerReference": reference})
    return invalidate
