"""What drives the validator and the broker: the SQS worker, the push receiver, gunicorn."""
