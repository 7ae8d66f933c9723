"""PostgreSQL: named (server-side) cursor source, ``COPY FROM STDIN`` sink (psycopg 3).

The connector is a package, one idea a module: :mod:`.connection` (libpq params, sessions, error
classes), :mod:`.adbc` (the process's ADBC database objects), :mod:`.dialect` (SQL),
:mod:`.types` (type OIDs and Arrow types), :mod:`.source`, :mod:`.ingest` (the ADBC write plan)
and :mod:`.sink`. This module declares the data source type and re-exports the names other code
uses.
"""

from __future__ import annotations

from exchangis.connectors.base import DataSourceType, ParamSpec, check_host
from exchangis.connectors.postgres.adbc import ADBC_DATABASES, AdbcDatabases
from exchangis.connectors.postgres.connection import (
    IDLE_IN_TRANSACTION_SECONDS,
    NAME,
    NO_PASSFILE,
    adbc_uri,
    classify,
    libpq_params,
    open_connection,
    test_connection,
)
from exchangis.connectors.postgres.dialect import DIALECT, PostgresDialect
from exchangis.connectors.postgres.sink import PostgresSink
from exchangis.connectors.postgres.source import PostgresSource

__all__ = [
    "ADBC_DATABASES",
    "DIALECT",
    "IDLE_IN_TRANSACTION_SECONDS",
    "NAME",
    "NO_PASSFILE",
    "PARAMS",
    "TYPE",
    "AdbcDatabases",
    "PostgresDialect",
    "PostgresSink",
    "PostgresSource",
    "adbc_uri",
    "classify",
    "libpq_params",
    "open_connection",
    "test_connection",
]

PARAMS = (
    ParamSpec("host", check=check_host),
    ParamSpec("port", int, required=False, default=5432),
    ParamSpec("username"),
    ParamSpec("password", secret=True, required=False, default=""),
    ParamSpec("database"),
    ParamSpec("params", dict, required=False, default=None),
)


TYPE = DataSourceType(
    NAME, PARAMS, "PostgreSQL", tester=test_connection, source=PostgresSource, sink=PostgresSink
)
"""The PostgreSQL connector (listed in :data:`exchangis.connectors.registry.MODULES`)."""
