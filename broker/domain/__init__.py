"""The product's rules, knowing no web framework or runtime: profiles, uploads,
presigning, records, inspection, webhooks."""
