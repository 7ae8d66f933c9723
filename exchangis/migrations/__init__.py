"""Alembic migrations of the metadata schema; ``upgrade`` runs them programmatically."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

HERE = Path(__file__).parent


def alembic_config(database_url: str) -> Config:
    """Return an Alembic config pointing at this package's scripts and ``database_url``."""
    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Create or upgrade the metadata schema."""
    command.upgrade(alembic_config(database_url), revision)
