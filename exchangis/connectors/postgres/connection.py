"""PostgreSQL sessions: the libpq params of a data source (keepalives, idle-transaction limit,
UTC, no password file), psycopg and ADBC connection strings, the connection test, and the
error classes of psycopg and ADBC exceptions."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

from exchangis.connectors import bulk
from exchangis.connectors.base import check_host, connect_timeout
from exchangis.connectors.driver import probe_server
from exchangis.errors import (
    ConnectorError,
    RecordError,
    TerminalConnectorError,
    TransientConnectorError,
)

log = logging.getLogger(__name__)

NAME = "POSTGRESQL"

# SQLSTATE classes/codes worth a retry: connection, serialization, deadlock, resources, shutdown,
# a session ended for idling in its transaction (25P03: the connection is gone, as with ADBC).
_TRANSIENT_CLASSES = ("08", "53", "57P")
_TRANSIENT_STATES = frozenset({"40001", "40P01", "55P03", "57014", "25P03"})
# SQLSTATE classes of a row's own fault: data exception (22), integrity constraint (23).
_RECORD_CLASSES = ("22", "23")


def classify(exc: BaseException) -> type[ConnectorError] | None:
    """Return the connector error class for a psycopg or ADBC exception (None: neither)."""
    import psycopg

    if isinstance(exc, psycopg.Error):
        state = getattr(exc, "sqlstate", None)
        lost = isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)
    elif bulk.available("adbc_driver_manager") and _is_adbc_error(exc):
        state = getattr(exc, "sqlstate", None) or None
        lost = type(exc).__name__ in ("OperationalError", "InterfaceError")
    else:
        return None
    if state is None:
        # No SQLSTATE: the failure happened before or outside the server (refused, lost, DNS).
        return TransientConnectorError if lost else TerminalConnectorError
    if state in _TRANSIENT_STATES or state.startswith(_TRANSIENT_CLASSES):
        return TransientConnectorError
    if state.startswith(_RECORD_CLASSES):
        return RecordError
    return TerminalConnectorError


def _is_adbc_error(exc: BaseException) -> bool:
    import adbc_driver_manager

    return isinstance(exc, adbc_driver_manager.Error)


_PASSTHROUGH = frozenset(
    {"connect_timeout", "sslmode", "gssencmode", "application_name", "target_session_attrs"}
    | {"keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count", "options"}
    | {"tcp_user_timeout"}
)
"""Extra connect params passed to libpq. Others are ignored on purpose: ``hostaddr``,
``passfile`` and ``service`` would send a password the worker keeps for another server,
``sslcert``/``sslkey`` would borrow its client certificate, ``sslkeylogfile`` write its files."""


IDLE_IN_TRANSACTION_SECONDS = 1800
"""A session of ours idle inside a transaction this long is ended by the server (the
transaction rolled back, its locks released), so that the sessions of a worker host that
vanished or stopped mid-task do not hold a table's rows against a retry. A task's sessions go
that idle only while the other end of the transfer is busy (one batch, or a wait for a lock),
which takes far less; a data source may set another value in ``params.options``."""
KEEPALIVE_IDLE, KEEPALIVE_INTERVAL, KEEPALIVE_COUNT = 60, 10, 6
"""TCP keepalives, asked of libpq (the worker's end) and of the server (its end): a peer
silent 60 s is probed every 10 s and given up after 6 unanswered probes (about 2 min), so a
host that vanished mid-statement (no idle transaction) is noticed too."""


def session_options(idle_seconds: int = IDLE_IN_TRANSACTION_SECONDS) -> str:
    """Return the server settings every session of ours starts with (libpq ``options``)."""
    return (
        f"-c idle_in_transaction_session_timeout={int(idle_seconds)}s"
        f" -c tcp_keepalives_idle={KEEPALIVE_IDLE}"
        f" -c tcp_keepalives_interval={KEEPALIVE_INTERVAL}"
        f" -c tcp_keepalives_count={KEEPALIVE_COUNT}"
    )


NO_PASSFILE = os.path.join(os.devnull, "exchangis-no-passfile")
"""libpq's ``passfile``: a path below the null device, which no one can create (its parent is
not a directory), so libpq finds no password file and says nothing. Without the param libpq
would read ``~/.pgpass`` (a password the worker keeps for another server); ``os.devnull``
itself exists but is not a plain file, and libpq warns about it on stderr at every connect."""


def libpq_params(
    connect: Mapping[str, Any], idle_seconds: int = IDLE_IN_TRANSACTION_SECONDS
) -> dict[str, str]:
    """Return the extra libpq params of a data source (allowed ones over our keepalives and
    session settings; UTC session; no passfile, so a password is never looked up on the
    worker)."""
    extra = {str(k): str(v) for k, v in dict(connect.get("params") or {}).items()}
    ignored = sorted(set(extra) - _PASSTHROUGH)
    if ignored:
        log.info("postgresql connect params ignored names=%s", ",".join(ignored))
    params = {
        "keepalives": "1",
        "keepalives_idle": str(KEEPALIVE_IDLE),
        "keepalives_interval": str(KEEPALIVE_INTERVAL),
        "keepalives_count": str(KEEPALIVE_COUNT),
    }
    params.update((k, v) for k, v in extra.items() if k in _PASSTHROUGH)
    params["connect_timeout"] = str(connect_timeout(params.get("connect_timeout")))
    # a later -c wins: the data source's own options over ours, and UTC over everything
    own = params.get("options", "")
    params["options"] = " ".join(
        filter(None, [session_options(idle_seconds), own, "-c TimeZone=UTC"])
    )
    params["passfile"] = NO_PASSFILE
    return params


def open_connection(
    connect: Mapping[str, Any],
    database: str | None = None,
    idle_seconds: int = IDLE_IN_TRANSACTION_SECONDS,
) -> Any:
    """Return a psycopg connection (autocommit off, UTC session time zone, keepalives, idle
    transactions ended after ``idle_seconds``)."""
    import psycopg

    kwargs: dict[str, Any] = libpq_params(connect, idle_seconds)
    password = connect.get("password")
    if password:
        kwargs["password"] = str(password)
    return psycopg.connect(
        host=check_host(str(connect.get("host") or "localhost")),
        port=int(connect.get("port") or 5432),
        user=connect.get("username"),
        dbname=database or connect.get("database"),
        autocommit=False,
        **kwargs,
    )


def test_connection(connect: Mapping[str, Any]) -> None:
    """Connect and run ``SELECT 1``; raise ConnectorError (no password) when that fails."""
    probe_server(connect, "postgresql", 5432, open_connection, classify)


def adbc_uri(
    connect: Mapping[str, Any], db: str | None, idle_seconds: int = IDLE_IN_TRANSACTION_SECONDS
) -> str:
    """Return the libpq URI of ADBC's connection (the params of :func:`libpq_params`)."""
    params = libpq_params(connect, idle_seconds)
    return bulk.url("postgresql", connect, 5432, db) + "?" + urlencode(params, quote_via=quote)
