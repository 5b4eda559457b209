"""Adapters for what Keyport sends out over the network (webhooks)."""
