"""The ASGI application: v4 API, admin dashboard, operations endpoints."""
