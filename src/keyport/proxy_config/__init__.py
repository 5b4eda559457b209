"""`keyport proxy-config`: complete nginx and Caddy configurations that put Keyport's
`/v1/authorize` in front of an operator's own service (DESIGN.md §6, docs/gateway.md)."""
