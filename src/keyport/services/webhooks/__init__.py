"""Webhook endpoints, the event outbox, and delivery."""
