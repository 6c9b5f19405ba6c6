"""Shared plumbing: configuration, database, errors, logging, keys and JOSE."""
