"""The audit trail of one thing, and a company's audit log."""
