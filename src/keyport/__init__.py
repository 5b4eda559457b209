"""Keyport: self-hosted platform API keys compatible with the meetergo v4 model."""

__version__ = "0.1.0"
