"""MySQL and MariaDB: streaming SELECT with pymysql's SSCursor, ``LOAD DATA LOCAL`` sink.

The connector is a package, one idea a module: :mod:`.connection` (sessions, local files, error
classes), :mod:`.dialect` (SQL), :mod:`.types` (Arrow types and value converters),
:mod:`.source` and :mod:`.sink` (``LOAD DATA`` written behind the reads:
:mod:`exchangis.connectors.behind`). This module declares the data source type and re-exports
the names other code uses.
"""

from __future__ import annotations

from exchangis.connectors.base import DataSourceType, ParamSpec, check_host, connect_timeout
from exchangis.connectors.catalog import STATEMENT_SECONDS, SqlCatalog
from exchangis.connectors.mysql.connection import (
    NAME,
    classify,
    load_local,
    open_connection,
    stream_local,
    test_connection,
)
from exchangis.connectors.mysql.dialect import DIALECT
from exchangis.connectors.mysql.sink import LOADER_THREAD, MySqlSink
from exchangis.connectors.mysql.source import MySqlSource

__all__ = [
    "CATALOG",
    "DIALECT",
    "LOADER_THREAD",
    "NAME",
    "PARAMS",
    "TYPE",
    "MySqlSink",
    "MySqlSource",
    "connect_timeout",
    "load_local",
    "open_connection",
    "stream_local",
    "test_connection",
]

PARAMS = (
    ParamSpec("host", check=check_host),
    ParamSpec("port", int, required=False, default=3306),
    ParamSpec("username"),
    ParamSpec("password", secret=True, required=False, default=""),
    ParamSpec("database"),
    ParamSpec("params", dict, required=False, default=None),
)


CATALOG = SqlCatalog(
    "mysql",
    open_connection,
    classify,
    per_db=True,
    session=(f"/*M! SET SESSION max_statement_time = {STATEMENT_SECONDS} */",),  # MariaDB only
    databases="SELECT schema_name FROM information_schema.schemata WHERE schema_name NOT IN"
    " ('information_schema', 'mysql', 'performance_schema', 'sys')",
    tables="SELECT table_name FROM information_schema.tables"
    " WHERE table_schema = COALESCE(%s, DATABASE())",
    columns="SELECT column_name, column_type, is_nullable = 'YES', column_key = 'PRI'"
    " FROM information_schema.columns WHERE table_schema = COALESCE(%s, DATABASE())"
    " AND table_name = %s ORDER BY ordinal_position",
)
"""Databases are the account's schemas (the server's own left out)."""

TYPE = DataSourceType(
    NAME,
    PARAMS,
    "MySQL / MariaDB",
    tester=test_connection,
    source=MySqlSource,
    sink=MySqlSink,
    catalog=CATALOG,
)
"""The mysql connector's declaration (listed in :data:`exchangis.connectors.registry.MODULES`)."""
