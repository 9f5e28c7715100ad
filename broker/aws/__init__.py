"""AWS-protocol plumbing: the one client factory, the SQS queue, signing, DynamoDB's wire."""
