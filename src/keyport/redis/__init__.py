"""Adapters on Redis: rate-limit buckets and leases, dashboard sessions, the invalidation push
channel."""
