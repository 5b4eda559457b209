"""What watches the request path: the request record, usage, metrics, the request log."""
