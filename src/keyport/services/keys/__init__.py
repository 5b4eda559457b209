"""API keys: their lifecycle, the dashboard's and the management API's use cases, expiry
reminders."""
