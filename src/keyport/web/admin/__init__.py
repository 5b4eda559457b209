"""The admin dashboard: server-rendered pages under /admin for owners and admins."""
