"""Cross-worker plumbing: registry, heartbeats, control subscriptions, admission, drain."""
