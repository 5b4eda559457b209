"""`keyport proxy-config`: complete nginx and Caddy configurations that put Keyport's
`/v1/authorize` in front of an operator's own service (docs/contract.md §7, docs/gateway.md)."""
