"""SQLite (stdlib ``sqlite3``): typed by declared column types, one ``BEGIN IMMEDIATE`` per sink.

SQLite stores dates and timestamps as ISO text and decimals as the exact text of the value; the
sink declares column types (``DECIMAL TEXT(p,s)``, ``TIMESTAMP``, ``BOOLEAN``...) that the
source maps back to the same Arrow types.

The connector is a package, one idea a module: :mod:`.connection` (database files, sessions,
error classes), :mod:`.dialect` (SQL), :mod:`.types` (declared types, value converters and
storage forms), :mod:`.source` and :mod:`.sink`. This module declares the data source type and
re-exports the names other code uses.
"""

from __future__ import annotations

from exchangis.connectors.base import DataSourceType, ParamSpec
from exchangis.connectors.catalog import SqlCatalog
from exchangis.connectors.sqlite.connection import NAME, classify, open_connection, test_connection
from exchangis.connectors.sqlite.dialect import DIALECT, SqliteDialect
from exchangis.connectors.sqlite.sink import SqliteSink
from exchangis.connectors.sqlite.source import SqliteSource
from exchangis.connectors.sqlite.types import arrow_type, converter

__all__ = [
    "CATALOG",
    "DIALECT",
    "NAME",
    "PARAMS",
    "TYPE",
    "SqliteDialect",
    "SqliteSink",
    "SqliteSource",
    "arrow_type",
    "classify",
    "converter",
    "open_connection",
    "test_connection",
]

PARAMS = (ParamSpec("path", local_path=True),)

CATALOG = SqlCatalog(
    "sqlite",
    lambda connect, _db: open_connection(connect, read_only=True),
    classify,
    databases="SELECT 'main'",
    tables="SELECT name FROM sqlite_master WHERE type IN ('table', 'view')"
    " AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
    columns='SELECT name, type, "notnull" = 0 AND pk = 0, pk > 0'
    " FROM pragma_table_info(?) ORDER BY cid",
)
"""One database, ``main``; SQLite's own tables left out."""

TYPE = DataSourceType(
    NAME,
    PARAMS,
    "SQLite database file",
    tester=test_connection,
    source=SqliteSource,
    sink=SqliteSink,
    catalog=CATALOG,
)
"""The sqlite connector's declaration (listed in :data:`exchangis.connectors.registry.MODULES`)."""
