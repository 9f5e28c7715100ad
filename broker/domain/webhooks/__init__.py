"""Webhooks (the Standard Webhooks specification): the app around the broker is told
of every verdict and deletion, durably and at least once.

Each event is written to an outbox in the same write as the state change it reports
(`broker.domain.records`), one delivery per configured URL; a deliverer sends what is due,
signs it, and retries with backoff for more than a day before giving it up as dead
(`broker webhooks list|replay`).
"""

