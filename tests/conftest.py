"""Fixtures: settings on real Redis, a migrated SQLite metadata file, the app, real workers."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis

from exchangis.app import create_app
from exchangis.embedded import free_port
from exchangis.migrations import upgrade
from exchangis.runtime import Runtime
from exchangis.services import user as users
from exchangis.settings import Settings, load_settings
from tests import data, metadata
from tests.helpers import API, datasource, signed_in
from tests.services import mysql_params, postgres_params, redis_url

ROOT = Path(__file__).resolve().parent.parent


METADATA_ENV = "EXCHANGIS_TEST_METADATA"
"""Names the session's metadata database: ``sqlite`` (the default) or ``postgresql``."""


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings for this test session: own key prefix, queue and metadata database; fast timers.

    The metadata database is what ``EXCHANGIS_TEST_METADATA`` names: a SQLite file (default),
    or a PostgreSQL database of its own (``exgtest_<run>``, dropped at the session's end).
    """
    kind = os.environ.get(METADATA_ENV, "sqlite")
    if kind not in metadata.KINDS:
        raise pytest.UsageError(f"{METADATA_ENV}={kind!r}: expected one of {metadata.KINDS}")
    run = uuid.uuid4().hex[:8]
    base = tmp_path_factory.mktemp("exchangis")
    database = f"exgtest_{run}"
    url = (
        metadata.metadata_database(database)
        if kind == "postgresql"
        else f"sqlite:///{base / 'meta.db'}"
    )
    try:
        yield load_settings(
            {
                "redis_url": redis_url(),
                "redis_prefix": f"exgtest-{run}:",
                "broker_db": 1,
                "task_queue": f"exchangis-test-{run}",
                "queues": f"routed-{run}",
                "database_url": url,
                "data_dir": str(base / "var"),
                "heartbeat_seconds": 0.5,
                "heartbeat_timeout_seconds": 6,
                "reaper_interval_seconds": 0.5,
                "kill_grace_seconds": 2,
                "retry_backoff_seconds": 0.2,
                "resend_after_seconds": 3,
                "progress_interval_seconds": 0.2,
                "enable_memory_connector": True,
                "worker_concurrency": 2,
                "live_ttl_seconds": 3600,
                "login_rate_limit": "1000/minute",  # tests sign in often from 127.0.0.1
                # every deployment of a session shares one metadata database: a schedule test
                # runs its schedulers in a deployment of its own (tests/test_e2e_schedules.py)
                "scheduler_enabled": False,
                "file_roots": str(tmp_path_factory.getbasetemp()),  # every test's tmp_path
            },
            environ={},
        )
    finally:
        if kind == "postgresql":  # after every fixture that used it (workers, runtimes) ended
            metadata.drop_database(database)


@pytest.fixture(scope="session")
def migrated(settings: Settings) -> Settings:
    """Settings whose metadata database has the schema."""
    upgrade(settings.database_url)
    return settings


@pytest.fixture(scope="session")
def rt(migrated: Settings) -> Iterator[Runtime]:
    """A runtime on the test settings; removes every key under the prefix at the end."""
    runtime = Runtime(migrated)
    yield runtime
    for key in runtime.redis.scan_iter(runtime.keys.pattern(), count=1000):
        runtime.redis.delete(key)
    broker = Redis.from_url(migrated.broker())
    broker.delete(migrated.task_queue, *migrated.queues)
    runtime.close()


@pytest.fixture(scope="session")
def app(migrated: Settings, rt: Runtime) -> Flask:
    """The API app on the test settings."""
    application = create_app(migrated)
    application.config["TESTING"] = True
    return application


ADMIN = "admin"


@pytest.fixture(scope="session")
def admin_token(rt: Runtime) -> str:
    """A bearer token of the session's admin (created in the fresh metadata database)."""
    users.create_user(rt, ADMIN, "admin-password-" + uuid.uuid4().hex[:8], admin=True)
    return str(users.issue_token(rt, ADMIN)["token"])


@pytest.fixture
def client(app: Flask, admin_token: str) -> FlaskClient:
    """A test client of the API, signed in as the admin."""
    return signed_in(app, admin_token)


def settings_file(settings: Settings, path: Path) -> Path:
    """Write ``settings`` as the JSON file a worker process reads via EXCHANGIS_CONFIG."""
    data: dict[str, Any] = {
        name: list(value) if isinstance(value, tuple) else value
        for name, value in settings.__dict__.items()
    }
    path.write_text(json.dumps(data))
    return path


@contextlib.contextmanager
def api_process(settings: Settings, workdir: Path) -> Iterator[str]:
    """Run the API as a process of its own (``exchangis api``) on ``settings`` and a free
    port; yield its URL once it answers; stop it at the end."""
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    config = settings_file(settings.with_overrides({"port": port}), workdir / "api.json")
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXCHANGIS_")}
    with (workdir / "api.log").open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "exchangis.cli", "api"],
            cwd=ROOT,
            env={**env, "EXCHANGIS_CONFIG": str(config)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(f"{url}{API}/openapi.json", timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("the API process did not answer") from None
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(10)


class WorkerProcess:
    """A real Celery worker process (prefork pool) started with the test settings."""

    def __init__(
        self,
        settings: Settings,
        workdir: Path,
        wrapper: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.config = settings_file(settings, workdir / "settings.json")
        self.logfile = workdir / "worker.log"
        self.wrapper = list(wrapper)
        """A command the worker runs under (e.g. ``faketime -f +120s``)."""
        self.extra_env = dict(env or {})
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> None:
        """Start the worker and wait until it reports ready."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("EXCHANGIS_")}
        env["EXCHANGIS_CONFIG"] = str(self.config)
        env.update(self.extra_env)
        self.out = self.logfile.open("ab")
        self.process = subprocess.Popen(
            [*self.wrapper, sys.executable, "-m", "exchangis.cli", "worker"],
            start_new_session=True,  # its own process group: stop() can end every process
            cwd=ROOT,
            env=env,
            stdout=self.out,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.stop()  # its children too: nothing of a failed start stays running
                raise RuntimeError("worker exited:\n" + self.logfile.read_text()[-3000:])
            if " ready." in self.logfile.read_text(errors="replace"):
                return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("worker not ready:\n" + self.logfile.read_text()[-3000:])

    def stop(self) -> None:
        """Stop the worker (warm shutdown, then kill)."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process:  # the supervisor's Celery child and its pool, whatever happened above
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        self.out.close()


@pytest.fixture(scope="session")
def worker(
    migrated: Settings, rt: Runtime, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    """One real worker process for the session."""
    process = WorkerProcess(migrated, tmp_path_factory.mktemp("worker"))
    process.start()
    yield process
    process.stop()


class OwnDeployment:
    """The session's metadata database under a Redis prefix and a queue of its own, with its
    own API app and workers (a test that kills, limits or counts workers needs its own)."""

    def __init__(self, settings: Settings, token: str, workdir: Path) -> None:
        self.settings = settings
        self.client = signed_in(create_app(settings), token)
        self.workdir = workdir
        self.workers: list[WorkerProcess] = []

    @property
    def rt(self) -> Runtime:
        """Return the API app's runtime (live state under this deployment's prefix)."""
        runtime: Runtime = self.client.application.extensions["exchangis"]
        return runtime

    def worker(self) -> WorkerProcess:
        """Start one more worker process of this deployment; return it once ready."""
        process = WorkerProcess(self.settings, self.workdir / f"worker-{len(self.workers)}")
        self.workers.append(process)
        process.start()
        return process

    def close(self) -> None:
        """Stop the workers; remove this deployment's Redis keys and queued messages."""
        for process in self.workers:
            process.stop()
        for key in self.rt.redis.scan_iter(self.rt.keys.pattern(), count=1000):
            self.rt.redis.delete(key)
        broker = Redis.from_url(self.settings.broker())
        queue = self.settings.task_queue  # and the bindings kombu keeps of it
        broker.delete(queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")
        broker.close()
        self.rt.close()


@pytest.fixture
def own_deployment(
    migrated: Settings, admin_token: str, tmp_path: Path
) -> Iterator[Callable[..., OwnDeployment]]:
    """Make a deployment of its own (settings overrides as keyword arguments; no worker yet);
    tear it down after the test."""
    made: list[OwnDeployment] = []

    def make(**overrides: Any) -> OwnDeployment:
        run = uuid.uuid4().hex[:8]
        settings = migrated.with_overrides(
            {
                "redis_prefix": f"exgown-{run}:",
                "task_queue": f"own-{run}",
                "queues": (),
                **overrides,
            }
        )
        made.append(OwnDeployment(settings, admin_token, tmp_path / f"deployment-{run}"))
        return made[-1]

    yield make
    for deployment in made:
        deployment.close()


@pytest.fixture
def run_id() -> str:
    """A short id that makes names unique per test."""
    return uuid.uuid4().hex[:8]


@pytest.fixture
def sources(client: FlaskClient, tmp_path: Path, run_id: str) -> dict[str, int]:
    """Data sources on every backend (MariaDB, PostgreSQL, FILE, SQLite, MEMORY)."""
    root = tmp_path / "files"
    root.mkdir()
    return {
        "MYSQL": datasource(client, f"my-{run_id}", "MYSQL", mysql_params()),
        "POSTGRESQL": datasource(client, f"pg-{run_id}", "POSTGRESQL", postgres_params()),
        "FILE": datasource(client, f"files-{run_id}", "FILE", {"root": str(root)}),
        "SQLITE": datasource(
            client, f"lite-{run_id}", "SQLITE", {"path": str(tmp_path / "lite.db")}
        ),
        "MEMORY": datasource(client, f"mem-{run_id}", "MEMORY", {}),
    }


@pytest.fixture
def tables(run_id: str) -> Iterator[dict[str, str]]:
    """Names of MariaDB/PostgreSQL tables for one test, dropped afterwards."""
    names = {k: f"e2e_{k}_{run_id}" for k in ("my_src", "my_dst", "pg_src", "pg_dst")}
    yield names
    data.drop([names["my_src"], names["my_dst"]], [names["pg_src"], names["pg_dst"]])


@pytest.fixture
def files(client: FlaskClient, tmp_path: Path) -> int:
    """Return a FILE data source whose root holds ``in.csv`` (id,name / 1,a)."""
    root = tmp_path / "files"
    root.mkdir()
    (root / "in.csv").write_text("id,name\n1,a\n")
    return datasource(client, f"files-{uuid.uuid4().hex[:8]}", "FILE", {"root": str(root)})


@pytest.fixture
def lite(client: FlaskClient, tmp_path: Path) -> int:
    return datasource(
        client, f"lite-{uuid.uuid4().hex[:8]}", "SQLITE", {"path": str(tmp_path / "x.db")}
    )
