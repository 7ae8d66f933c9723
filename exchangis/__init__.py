"""exchangis: a data exchange execution engine (API, workers, connectors)."""
