"""Leaked credentials: who may report them, and what is done about them."""
