"""Verification tables (filled in by the verification domain)."""
