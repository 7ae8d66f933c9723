"""SQLite database files: the path of a data source, read-only and read-write sqlite3
connections (autocommit, busy timeout), the connection test, and the error classes of sqlite3
exceptions."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from exchangis.connectors.driver import translate_errors
from exchangis.errors import (
    ConnectorError,
    RecordError,
    TerminalConnectorError,
    TransientConnectorError,
)

NAME = "SQLITE"
_BUSY_TIMEOUT = 30.0


def classify(exc: BaseException) -> type[ConnectorError] | None:
    """Return the connector error class for a sqlite3 exception (None: not a driver error)."""
    import sqlite3

    if isinstance(exc, sqlite3.OperationalError):
        text = str(exc).lower()
        if "locked" in text or "busy" in text:
            return TransientConnectorError
        return TerminalConnectorError
    if isinstance(exc, sqlite3.IntegrityError | OverflowError):
        return RecordError
    if isinstance(exc, sqlite3.Error):
        return TerminalConnectorError
    return None


def _path(connect: Mapping[str, Any]) -> Path:
    value = connect.get("path")
    if not value or not isinstance(value, str):
        raise TerminalConnectorError("sqlite data source has no path")
    return Path(value).expanduser()


def open_connection(connect: Mapping[str, Any], *, read_only: bool) -> Any:
    """Return a sqlite3 connection in autocommit mode (transactions are explicit)."""
    import sqlite3

    path = _path(connect)
    if read_only:
        if not path.is_file():
            raise TerminalConnectorError(f"sqlite database {path} does not exist")
        target, uri = f"{path.resolve().as_uri()}?mode=ro", True
    else:
        target, uri = str(path), False
    return sqlite3.connect(
        target, uri=uri, isolation_level=None, timeout=_BUSY_TIMEOUT, check_same_thread=False
    )


def test_connection(connect: Mapping[str, Any]) -> None:
    """Open the database file read-only, or check its directory when it does not exist yet.

    Raises:
        ConnectorError: the file is not a SQLite database or the directory is missing.
    """
    path = _path(connect)
    if not path.exists():
        if not path.parent.is_dir() or not os.access(path.parent, os.W_OK):
            raise TerminalConnectorError(f"directory of sqlite database {path} is not writable")
        return
    with translate_errors(classify, connect, f"open sqlite {path}"):
        conn = open_connection(connect, read_only=True)
        try:
            conn.execute("PRAGMA schema_version").fetchall()
        finally:
            conn.close()
