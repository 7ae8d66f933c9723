"""Where FILE roots and SQLite files may be: inside ``file_roots``, and away from our own files.

A data source names a path on the workers' disks; an editor of a project chooses it. Without a
bound, a FILE data source rooted at ``/`` would read the workers' secret key or write into their
code, and a SQLite one would open the metadata database. So each such path must resolve
(symlinks followed) inside one of ``file_roots`` (default ``<data_dir>/files``), and must not be,
or contain, one of the service's own files: the secret key file, the first admin's password
file, the embedded Redis folder and a SQLite metadata database.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from exchangis.connectors.base import DataSourceType
from exchangis.errors import InvalidInputError
from exchangis.settings import ADMIN_PASSWORD_FILE, EMBEDDED_REDIS_DIR, KEY_FILE, Settings


def file_roots(settings: Settings) -> list[Path]:
    """Return the folders data source paths must lie in, resolved."""
    roots = settings.file_roots or (str(Path(settings.data_dir) / "files"),)
    return [Path(root).resolve() for root in roots]


def protected(settings: Settings) -> list[Path]:
    """Return the service's own files and folders, resolved: no data source may reach them."""
    data = Path(settings.data_dir)
    own = [data / KEY_FILE, data / ADMIN_PASSWORD_FILE, data / EMBEDDED_REDIS_DIR]
    if settings.database_url.startswith("sqlite:///"):
        database = Path(settings.database_url.removeprefix("sqlite:///"))
        own += [database, Path(f"{database}-wal"), Path(f"{database}-shm")]
    return [path.resolve() for path in own]


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def confine(settings: Settings, ds_type: DataSourceType, connect: Mapping[str, Any]) -> None:
    """Check every local path of ``connect`` against ``file_roots`` and the service's files.

    Raises:
        InvalidInputError: naming the parameter (``connectParams.root``...).
    """
    for spec in ds_type.params:
        value = connect.get(spec.name)
        if not spec.local_path or not isinstance(value, str):
            continue
        field = f"connectParams.{spec.name}"
        problem = _problem(settings, value)
        if problem:
            raise InvalidInputError.of(field, problem)


def _problem(settings: Settings, value: str) -> str | None:
    if not value.startswith("/") or "\x00" in value:
        return "must be an absolute path"
    path = Path(value).resolve()  # symlinks followed: where it really is
    roots = file_roots(settings)
    if not any(_inside(path, root) for root in roots):
        return f"must lie inside one of file_roots ({', '.join(map(str, roots))})"
    if any(_inside(own, path) or _inside(path, own) for own in protected(settings)):
        return "reaches a file of the service itself (its keys or its database)"
    return None
