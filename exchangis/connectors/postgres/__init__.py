"""PostgreSQL: named (server-side) cursor source, ``COPY FROM STDIN`` sink (psycopg 3).

The connector is a package, one idea a module: :mod:`.connection` (libpq params, sessions, error
classes), :mod:`.adbc` (the process's ADBC database objects), :mod:`.dialect` (SQL),
:mod:`.types` (type OIDs and Arrow types), :mod:`.source`, :mod:`.ingest` (the ADBC write plan)
and :mod:`.sink`. This module declares the data source type and re-exports the names other code
uses.
"""

from __future__ import annotations

from exchangis.connectors.base import DataSourceType, ParamSpec, check_host
from exchangis.connectors.catalog import STATEMENT_SECONDS, SqlCatalog
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
    "CATALOG",
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


CATALOG = SqlCatalog(
    "postgresql",
    open_connection,
    classify,
    session=(f"SET statement_timeout = '{STATEMENT_SECONDS}s'",),
    databases="SELECT datname FROM pg_database WHERE NOT datistemplate AND datallowconn"
    " AND has_database_privilege(datname, 'CONNECT')",
    tables="SELECT CASE WHEN table_schema = 'public' THEN table_name"
    " ELSE table_schema || '.' || table_name END FROM information_schema.tables"
    " WHERE table_schema NOT IN ('pg_catalog', 'information_schema')",
    columns="SELECT a.attname, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull,"
    " COALESCE(a.attnum = ANY(i.indkey), false) FROM pg_attribute a"
    " LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary"
    " WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped"
    " ORDER BY a.attnum",
    table_param=DIALECT.quote_table,
)
"""Databases are the server's databases the account may connect to; tables outside ``public``
are named ``schema.table``."""

TYPE = DataSourceType(
    NAME,
    PARAMS,
    "PostgreSQL",
    tester=test_connection,
    source=PostgresSource,
    sink=PostgresSink,
    catalog=CATALOG,
)
"""The PostgreSQL connector (listed in :data:`exchangis.connectors.registry.MODULES`)."""
