"""The files connector's catalog: one database (the root, ``.``), its files as tables, and the
columns their format reader sees (CSV columns are text: the reader reads them so)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

from exchangis.connectors.base import Endpoint, Source
from exchangis.connectors.catalog import Catalog, Column
from exchangis.connectors.files.common import NAME
from exchangis.connectors.files.paths import matching_files, named_format
from exchangis.connectors.files.source import FileSource
from exchangis.errors import NotFoundError, TerminalConnectorError

ROOT = "."
"""The one database of a files data source."""
MAX_FILES = 10_000
"""Most files a listing walks (the first in path order)."""


class FileCatalog(Catalog):
    """Browse the files below a data source's root."""

    def databases(self, connect: Mapping[str, Any]) -> list[str]:
        return [ROOT]

    def tables(self, connect: Mapping[str, Any], db: str | None) -> list[str]:
        self._check_db(db)
        root = str(connect.get("root") or "")
        try:
            found = matching_files(root, "**/*")
        except TerminalConnectorError:  # nothing below the root
            return []
        base = Path(root).expanduser().resolve()
        names = (path.relative_to(base).as_posix() for path in found[:MAX_FILES])
        return [name for name in names if named_format(name) is not None]

    def columns(self, connect: Mapping[str, Any], db: str | None, table: str) -> list[Column]:
        self._check_db(db)
        reader = cast("type[Source]", FileSource)  # it builds the class of the file's format
        with reader(Endpoint(type=NAME, connect=connect, table=table)) as source:
            schema = source.open()
        return [Column(f.name, str(f.type), f.nullable, False) for f in schema]

    @staticmethod
    def _check_db(db: str | None) -> None:
        if db not in (None, "", ROOT):
            raise NotFoundError(f"a files data source has one database, {ROOT!r}, not {db!r}")


CATALOG = FileCatalog()
