"""MySQL and MariaDB: streaming SELECT with pymysql's SSCursor, ``LOAD DATA LOCAL`` sink.

The connector is a package, one idea a module: :mod:`.connection` (sessions, local files, error
classes), :mod:`.dialect` (SQL), :mod:`.types` (Arrow types and value converters),
:mod:`.source` and :mod:`.sink` (``LOAD DATA`` written behind the reads:
:mod:`exchangis.connectors.behind`). This module declares the data source type and re-exports
the names other code uses.
"""

from __future__ import annotations

from exchangis.connectors.base import DataSourceType, ParamSpec, check_host, connect_timeout
from exchangis.connectors.mysql.connection import (
    NAME,
    load_local,
    open_connection,
    stream_local,
    test_connection,
)
from exchangis.connectors.mysql.dialect import DIALECT
from exchangis.connectors.mysql.sink import LOADER_THREAD, MySqlSink
from exchangis.connectors.mysql.source import MySqlSource

__all__ = [
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


TYPE = DataSourceType(
    NAME, PARAMS, "MySQL / MariaDB", tester=test_connection, source=MySqlSource, sink=MySqlSink
)
"""The mysql connector's declaration (listed in :data:`exchangis.connectors.registry.MODULES`)."""
