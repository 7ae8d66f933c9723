"""Alembic migrations create the metadata schema on SQLite and PostgreSQL; the API runs on it."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from exchangis.app import create_app
from exchangis.db import Base
from exchangis.migrations import upgrade
from exchangis.services import user as users
from exchangis.settings import load_settings
from tests.helpers import ok, signed_in
from tests.services import postgres_params, redis_url

TABLES = {
    "exg_datasource",
    "exg_job",
    "exg_job_execution",
    "exg_task_execution",
    "exg_log_line",
    "exg_user",
    "exg_token",
    "exg_project",
    "exg_project_member",
    "exg_schedule",
    "exg_schedule_item",
    "exg_schedule_context",
    "alembic_version",
}


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


def _drift(url: str) -> list[object]:
    """Return what differs between the migrated schema and the models."""
    import exchangis.models  # noqa: F401  (registers every table on Base.metadata)

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return list(compare_metadata(MigrationContext.configure(conn), Base.metadata))
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_migrations_build_exactly_the_models_schema(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = (
        f"sqlite:///{tmp_path / 'meta.db'}"
        if backend == "sqlite"
        else request.getfixturevalue("postgres_database")
    )
    upgrade(url)
    assert _drift(url) == []


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
                "file_roots": str(tmp_path),
            },
            environ={},
        )
    )
    rt = app.extensions["exchangis"]
    users.create_user(rt, "root", "a-long-password", admin=True)
    client = signed_in(app, users.issue_token(rt, "root")["token"])
    created = ok(
        client,
        "POST",
        "/datasources",
        {"name": "pg-meta", "type": "SQLITE", "connectParams": {"path": str(tmp_path / "x.db")}},
        expect=201,
    )
    assert ok(client, "GET", f"/datasources/{created['id']}")["name"] == "pg-meta"
    app.extensions["exchangis"].close()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_existing_project_names_become_projects_and_data_sources_follow_their_jobs(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
    else:
        url = request.getfixturevalue("postgres_database")
    json_value = "CAST(:content AS JSON)" if backend == "postgresql" else ":content"
    upgrade(url, "0003")
    engine = create_engine(url)
    sub = {
        "subJobName": "s",
        "dataSources": {
            "source": {"type": "SQLITE", "id": 1, "table": "a"},
            "sink": {"type": "SQLITE", "id": 2, "table": "b"},
        },
    }
    shared = {
        **sub,
        "dataSources": {"source": {"id": 3, "table": "a"}, "sink": {"id": 2, "table": "c"}},
    }
    with engine.begin() as conn:
        for ds_id in (1, 2, 3):
            conn.execute(
                text(
                    "INSERT INTO exg_datasource (id, name, type, description, connect_params,"
                    " create_user, create_time, update_time) VALUES (:id, :name, 'SQLITE', '',"
                    " '{}', 'carol', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                ),
                {"id": ds_id, "name": f"ds{ds_id}"},
            )
        for job_id, project, creator, content in (
            (1, "sales", "carol", [sub]),
            (2, "sales", "dave", [sub]),
            (3, "ops", "erin", [shared]),
        ):
            conn.execute(
                text(
                    "INSERT INTO exg_job (id, job_name, job_desc, project_name, engine_type,"
                    " job_params, content, create_user, create_time, update_time) VALUES (:id,"
                    f" 'j', '', :project, 'EXCHANGIS', '{{}}', {json_value}, :creator,"
                    " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                ),
                {
                    "id": job_id,
                    "project": project,
                    "creator": creator,
                    "content": json.dumps(content),
                },
            )
    if backend == "postgresql":  # rows made through the sequence would have moved it on
        with engine.begin() as conn:
            for table in ("exg_datasource", "exg_job"):
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), 3)"))
    upgrade(url)
    with engine.connect() as conn:
        projects = dict(conn.execute(text("SELECT name, owner FROM exg_project")).all())
        homes = dict(conn.execute(text("SELECT id, project_name FROM exg_datasource")).all())
        names = dict(conn.execute(text("SELECT id, name FROM exg_datasource")).all())
        members = conn.execute(
            text(
                "SELECT p.name, m.user_name, m.can_edit, m.can_execute FROM exg_project_member m"
                " JOIN exg_project p ON p.id = m.project_id"
            )
        ).all()
        contents = {
            job_id: json.loads(content) if isinstance(content, str) else content
            for job_id, content in conn.execute(text("SELECT id, content FROM exg_job"))
        }
    engine.dispose()
    assert projects == {"default": "admin", "sales": "carol", "ops": "erin"}
    # the creator of the other job of sales
    assert [tuple(m) for m in members] == [("sales", "dave", True, True)]
    # ds1 serves sales only, ds3 ops only; ds2 serves both: it goes to ops (first by name) and
    # a copy (id 4) to sales, whose jobs now use the copy
    assert homes == {1: "sales", 2: "ops", 3: "ops", 4: "sales"} and names[4] == "ds2"
    ids = {
        j: [c["dataSources"][s]["id"] for c in contents[j] for s in ("source", "sink")]
        for j in contents
    }
    assert ids == {1: [1, 4], 2: [1, 4], 3: [3, 2]}
