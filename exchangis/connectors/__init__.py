"""Connectors: sources and sinks declared as plug-ins (see registry.py and docs/connectors.md)."""
