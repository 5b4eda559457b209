"""Deciding whether an API request may pass: authentication, its caches and their
invalidation, the per-key budget, the failed-authentication and lookup limits."""
