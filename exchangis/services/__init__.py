"""Business logic; the only layer that commits."""
