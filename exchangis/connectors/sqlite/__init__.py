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
from exchangis.connectors.sqlite.connection import NAME, classify, open_connection, test_connection
from exchangis.connectors.sqlite.dialect import DIALECT, SqliteDialect
from exchangis.connectors.sqlite.sink import SqliteSink
from exchangis.connectors.sqlite.source import SqliteSource
from exchangis.connectors.sqlite.types import arrow_type, converter

__all__ = [
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

TYPE = DataSourceType(
    NAME,
    PARAMS,
    "SQLite database file",
    tester=test_connection,
    source=SqliteSource,
    sink=SqliteSink,
)
"""The sqlite connector's declaration (listed in :data:`exchangis.connectors.registry.MODULES`)."""
