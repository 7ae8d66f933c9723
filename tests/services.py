"""Reach the real servers the tests use; skip when one is missing, fail when they are required.

``EXCHANGIS_REQUIRE_SERVICES=1`` (set by ``.ci/run``) turns every skip into a failure.
"""

from __future__ import annotations

import os
import socket
from typing import Any

import pytest

MYSQL = {"host": "127.0.0.1", "port": 3306, "username": "root", "password": "", "database": "test"}
POSTGRES = {
    "host": "127.0.0.1",
    "port": 5432,
    "username": "postgres",
    "password": "",
    "database": "test",
}
REDIS_URL = os.environ.get("EXCHANGIS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require(name: str, host: str, port: int) -> None:
    """Skip (or fail under EXCHANGIS_REQUIRE_SERVICES=1) unless host:port accepts connections."""
    if _reachable(host, port):
        return
    message = f"{name} is not reachable on {host}:{port}"
    if os.environ.get("EXCHANGIS_REQUIRE_SERVICES") == "1":
        pytest.fail(message + " and EXCHANGIS_REQUIRE_SERVICES=1", pytrace=False)
    pytest.skip(message)


def mysql_params() -> dict[str, Any]:
    """Return connect params for the local MariaDB ``test`` database (skips when down)."""
    require("MariaDB", MYSQL["host"], int(MYSQL["port"]))
    return dict(MYSQL)


def postgres_params() -> dict[str, Any]:
    """Return connect params for the local PostgreSQL ``test`` database (skips when down)."""
    require("PostgreSQL", POSTGRES["host"], int(POSTGRES["port"]))
    return dict(POSTGRES)


def redis_url() -> str:
    """Return the URL of the local Redis (skips when down)."""
    require("Redis", "127.0.0.1", 6379)
    return REDIS_URL
