"""The v4 API routes."""
