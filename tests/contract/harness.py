"""How the contract suite reaches each registered connector: one harness per variant.

The variants come from the registry: every registered type, and for FILE every value of its
declared ``format`` option. A type registered without a harness here gets a variant that fails
("no contract harness"), so a new connector passes the suite or CI refuses it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from exchangis.connectors.base import Endpoint, Sink, Source
from exchangis.connectors.memory import MemorySink
from exchangis.connectors.registry import Registry, default_registry
from tests import data
from tests.services import mysql_params, postgres_params, require

REGISTRY = default_registry(with_memory=True)
SECRET = "Contract-Sekret-91"
"""The password of the bad credentials: no error may show it."""


def _formats(registry: Registry, kind: str) -> list[str]:
    source = registry.sources.get(kind)
    declared = {o.name: o for o in source.options} if source else {}
    return list(declared["format"].values) if "format" in declared else [kind.lower()]


def variants(registry: Registry = REGISTRY) -> list[tuple[str, str]]:
    """Return ``(type, variant)`` for every registered connector (FILE: one per format)."""
    out = []
    for kind in registry.types:
        names = _formats(registry, kind) if kind == "FILE" else [VARIANTS.get(kind, "?")]
        out += [(kind, name) for name in names]
    return out


VARIANTS = {"MYSQL": "mysql", "POSTGRESQL": "postgres", "SQLITE": "sqlite", "MEMORY": "memory"}
"""Variant names of the types that have one (FILE's come from its formats)."""


@dataclass
class Harness:
    """One connector variant the suite writes and reads through the registry."""

    type: str
    variant: str
    connect: dict[str, Any]
    suffix: str = ""
    bad_connect: dict[str, Any] | None = None
    """Connect params that must fail with a clear error that shows no secret."""
    persistent: bool = True
    """Written data outlives the writing process (a SIGKILL test applies)."""
    tables: bool = True
    """Reading a missing table is an error (MEMORY generates rows for any name)."""
    created: list[str] = field(default_factory=list)
    registry: Registry = field(default_factory=lambda: REGISTRY)

    @property
    def source_class(self) -> type[Source] | None:
        """Return the registered source class (None: the type is not a source)."""
        return self.registry.sources.get(self.type)

    @property
    def sink_class(self) -> type[Sink] | None:
        """Return the registered sink class (None: the type is not a sink)."""
        return self.registry.sinks.get(self.type)

    def table(self) -> str:
        """Return a fresh table (or file) name, dropped at teardown."""
        name = f"exg_contract_{uuid.uuid4().hex[:12]}{self.suffix}"
        self.created.append(name)
        return name

    def endpoint(self, table: str, **options: Any) -> Endpoint:
        """Return an endpoint for ``table`` with ``options``."""
        return Endpoint(self.type, self.connect, table, options=options)

    def write(self, table: str, rows: pa.Table, **options: Any) -> int:
        """Write ``rows`` to ``table`` in one committed sink transaction; return rows written."""
        written = 0
        with self.registry.sink(self.endpoint(table, **options)) as sink:
            sink.open(rows.schema)
            for batch in rows.to_batches(max_chunksize=3):
                written += sink.write(batch)
            sink.commit()
        return written

    def read(self, table: str, batch_size: int = 1000, **options: Any) -> pa.Table:
        """Read ``table`` back whole: through the source, or MEMORY's committed rows."""
        if self.type == "MEMORY":
            return pa.Table.from_pylist(MemorySink.rows(table))
        with self.registry.source(self.endpoint(table, **options)) as source:
            schema = source.open()
            return pa.Table.from_batches(list(source.batches(batch_size)), schema=schema)

    def drop(self) -> None:
        """Drop the tables this harness made (files live in the test's tmp_path)."""
        if self.type == "MYSQL":
            data.drop(mysql_tables=self.created)
        elif self.type == "POSTGRESQL":
            data.drop(postgres_tables=self.created)
        elif self.type == "MEMORY":
            for table in self.created:
                MemorySink.reset(table)


def _mysql(tmp: Path) -> Harness:
    require("MariaDB", "127.0.0.1", 3306)
    bad = {**mysql_params(), "username": "exg_nobody", "password": SECRET}
    return Harness("MYSQL", "mysql", mysql_params(), bad_connect=bad)


def _postgres(tmp: Path) -> Harness:
    require("PostgreSQL", "127.0.0.1", 5432)
    bad = {**postgres_params(), "username": "exg_nobody", "password": SECRET}
    return Harness("POSTGRESQL", "postgres", postgres_params(), bad_connect=bad)


def _sqlite(tmp: Path) -> Harness:
    bad = {"path": str(tmp / "no-such-dir" / "x.db")}
    return Harness("SQLITE", "sqlite", {"path": str(tmp / "contract.db")}, bad_connect=bad)


def _file(tmp: Path, variant: str) -> Harness:
    root = tmp / "files"
    root.mkdir(exist_ok=True)
    bad = {"root": str(tmp / "no-such-root")}
    return Harness("FILE", variant, {"root": str(root)}, suffix=f".{variant}", bad_connect=bad)


def _memory(tmp: Path) -> Harness:
    return Harness("MEMORY", "memory", {}, persistent=False, tables=False)


FACTORIES: dict[str, Callable[[Path, str], Harness]] = {
    "MYSQL": lambda tmp, _: _mysql(tmp),
    "POSTGRESQL": lambda tmp, _: _postgres(tmp),
    "SQLITE": lambda tmp, _: _sqlite(tmp),
    "FILE": _file,
    "MEMORY": lambda tmp, _: _memory(tmp),
}
"""How to reach each connector type in tests (a new connector adds its own)."""
