"""Connector tests against the real backends."""
