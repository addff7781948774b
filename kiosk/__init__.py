"""PLUS kiosk: public-service terminals that forget each resident and never leave the allowlist."""

__version__ = "0.1.0"
