"""Mandate: two-factor enforcement for account trees."""
