"""PostgreSQL metadata databases of test deployments: each its own database on the local
server, created for it and dropped afterwards."""

from __future__ import annotations

from typing import Any

import psycopg

from tests.services import postgres_params

KINDS = ("sqlite", "postgresql")
"""The metadata databases the end-to-end suite runs on (``EXCHANGIS_TEST_METADATA``)."""


def _admin() -> psycopg.Connection[tuple[Any, ...]]:
    params = postgres_params()
    return psycopg.connect(
        host=params["host"], port=params["port"], user=params["username"], autocommit=True
    )


def metadata_database(name: str) -> str:
    """Create the PostgreSQL database ``name`` on the local server; return its SQLAlchemy URL."""
    params = postgres_params()
    with _admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql+psycopg://{params['username']}@{params['host']}:{params['port']}/{name}"


def drop_database(name: str) -> None:
    """Drop the PostgreSQL database ``name`` (ending the sessions still connected to it)."""
    with _admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
