"""What a data source holds: its databases, their tables, a table's columns.

A connector declares its catalog on its :class:`~exchangis.connectors.base.DataSourceType`
(``catalog``); a type without one cannot be browsed. Only workers run a catalog (it needs the
data source's secrets): the API asks through :mod:`exchangis.engine.calls`. Each call opens one
session, runs one bounded query and closes it; a statement that runs past
:data:`STATEMENT_SECONDS` is cancelled by the server.

SQL catalogs share :class:`SqlCatalog` and differ only in their three queries and how they open
a session; the engine's own ledger table (``exg_ledger``) is not listed. MySQL/MariaDB
databases are schemas; PostgreSQL databases are databases, and a table outside ``public`` is
named ``schema.table`` (as a sub-job names it); SQLite has one database, ``main``. The files
connector's one "database" is its root (``.``), its tables are the files below it whose name
tells their format, and their columns are what the format reader sees.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from exchangis.connectors.driver import Classifier, translate_errors
from exchangis.connectors.ledger import TABLE as LEDGER_TABLE
from exchangis.errors import NotFoundError

STATEMENT_SECONDS = 10
"""Longest catalog statement a server runs before it cancels it."""


@dataclass(frozen=True)
class Column:
    """One column of a table as its data source declares it."""

    name: str
    type: str
    """The data source's own type text (``varchar(20)``, ``numeric(12,2)``, ``double``...)."""
    nullable: bool
    key: bool
    """Part of the primary key."""

    def as_dict(self) -> dict[str, Any]:
        """Return the column as the API answers it."""
        return {"name": self.name, "type": self.type, "nullable": self.nullable, "key": self.key}


class Catalog(ABC):
    """Lists what a data source holds (worker side: ``connect`` has its secrets in clear)."""

    @abstractmethod
    def databases(self, connect: Mapping[str, Any]) -> list[str]:
        """Return the databases the data source's account can read, sorted."""

    @abstractmethod
    def tables(self, connect: Mapping[str, Any], db: str | None) -> list[str]:
        """Return the tables of ``db`` (None: the data source's own database), sorted."""

    @abstractmethod
    def columns(self, connect: Mapping[str, Any], db: str | None, table: str) -> list[Column]:
        """Return ``table``'s columns in their order.

        Raises:
            NotFoundError: no such table.
        """


Opener = Callable[[Mapping[str, Any], str | None], Any]


class SqlCatalog(Catalog):
    """A catalog read with three SQL queries on a DB-API session.

    The tables query takes no parameter, or (``per_db``) the database first; the columns query
    takes the table, or (``per_db``) the database then the table. A ``per_db`` server (MySQL:
    databases are schemas of one session) gets None for the data source's own database."""

    def __init__(
        self,
        label: str,
        opener: Opener,
        classify: Classifier,
        *,
        session: Sequence[str] = (),
        databases: str,
        tables: str,
        columns: str,
        table_param: Callable[[str], str] = str,
        per_db: bool = False,
    ) -> None:
        self.label = label
        self.opener = opener
        self.classify = classify
        self.session = tuple(session)
        """Statements run first on each session (the statement time bound)."""
        self.databases_sql = databases
        self.tables_sql = tables
        self.columns_sql = columns
        self.table_param = table_param
        """The table name as the columns query takes it (PostgreSQL: quoted for to_regclass)."""
        self.per_db = per_db

    def _query(
        self, connect: Mapping[str, Any], db: str | None, sql: str, params: Sequence[Any] = ()
    ) -> list[tuple[Any, ...]]:
        where = f" database {db}" if db else ""
        with translate_errors(self.classify, connect, f"read the {self.label} catalog{where}"):
            conn = self.opener(connect, db)
            try:
                cursor = conn.cursor()
                for statement in self.session:
                    cursor.execute(statement)
                cursor.execute(sql, tuple(params))
                rows = [tuple(row) for row in cursor.fetchall()]
                cursor.close()
                return rows
            finally:
                conn.close()

    def databases(self, connect: Mapping[str, Any]) -> list[str]:
        return sorted(str(row[0]) for row in self._query(connect, None, self.databases_sql))

    def tables(self, connect: Mapping[str, Any], db: str | None) -> list[str]:
        found = self._query(connect, db, self.tables_sql, [db] if self.per_db else [])
        names = (str(row[0]) for row in found)
        return sorted(name for name in names if name.rsplit(".", 1)[-1] != LEDGER_TABLE)

    def columns(self, connect: Mapping[str, Any], db: str | None, table: str) -> list[Column]:
        params = [db, self.table_param(table)] if self.per_db else [self.table_param(table)]
        rows = self._query(connect, db, self.columns_sql, params)
        if not rows:
            where = f" in database {db}" if db else ""
            raise NotFoundError(f"table {table!r} does not exist{where}")
        return [Column(str(n), str(t), bool(null), bool(key)) for n, t, null, key in rows]


def page(items: Sequence[Any], name: str | None, offset: int, limit: int) -> dict[str, Any]:
    """Return ``{total, items}``: the names (or columns, by their ``name``) containing ``name``
    (any case), one page of them."""
    wanted = (name or "").lower()
    matching = [
        item
        for item in items
        if wanted in str(item["name"] if isinstance(item, dict) else item).lower()
    ]
    return {"total": len(matching), "items": list(matching[offset : offset + limit])}
