"""Alembic migrations create the metadata schema on SQLite and PostgreSQL; the API runs on it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import create_engine, inspect

from exchangis.app import create_app
from exchangis.migrations import upgrade
from exchangis.settings import load_settings
from tests.helpers import ok
from tests.services import postgres_params, redis_url

TABLES = {"exg_datasource", "exg_job", "exg_job_execution", "exg_task_execution", "alembic_version"}


@pytest.fixture
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for the metadata schema, dropped afterwards."""
    p = postgres_params()
    name = f"exg_meta_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(
        host=p["host"], port=p["port"], user=p["username"], dbname=p["database"], autocommit=True
    ) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+psycopg://{p['username']}@{p['host']}:{p['port']}/{name}"
    yield url
    with psycopg.connect(
        host=p["host"], port=p["port"], user=p["username"], dbname=p["database"], autocommit=True
    ) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_creates_the_schema_on_sqlite_and_is_idempotent(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'meta.db'}"
    upgrade(url)
    upgrade(url)
    assert _tables(url) >= TABLES


def test_upgrade_creates_the_schema_on_postgresql_and_the_api_uses_it(
    postgres_database: str, tmp_path: Path
) -> None:
    upgrade(postgres_database)
    assert _tables(postgres_database) >= TABLES
    app = create_app(
        load_settings(
            {
                "database_url": postgres_database,
                "redis_url": redis_url(),
                "redis_prefix": f"exgmig-{uuid.uuid4().hex[:6]}:",
            },
            environ={},
        )
    )
    client = app.test_client()
    created = ok(
        client,
        "POST",
        "/datasources",
        {"name": "pg-meta", "type": "SQLITE", "connectParams": {"path": str(tmp_path / "x.db")}},
        expect=201,
    )
    assert ok(client, "GET", f"/datasources/{created['id']}")["name"] == "pg-meta"
    app.extensions["exchangis"].close()
