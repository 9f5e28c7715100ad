"""The ground every layer stands on: clock, errors, reason codes, JSON, logs, metrics."""
