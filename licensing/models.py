"""Licensing tables (filled in by the licensing domain)."""
