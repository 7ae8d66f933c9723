"""Where a FILE data source's files are: paths confined to the root, globs, name suffixes.

A table name is a path relative to the data source's ``root``; :func:`resolve_inside` refuses
any that leaves it (absolute, ``..``, or through a symlink), and :func:`matching_files` confines
every match of a glob the same way. A name's suffixes tell its format (``.csv``, ``.parquet``)
and its compression (``.gz``, ``.zst``): :func:`name_suffixes`, :func:`named_format`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath

from exchangis.connectors.base import Endpoint
from exchangis.errors import InvalidInputError, TerminalConnectorError

_EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".jsonl": "jsonl",
    ".json": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
_COMPRESSED = {".gz": "gzip", ".zst": "zstd"}
_GLOB = re.compile(r"[*?[]")


def root_of(endpoint: Endpoint) -> str:
    """Return the data source's root directory as configured ("" when missing)."""
    return str(endpoint.connect.get("root") or "")


def resolve_inside(root: str, relative: str) -> Path:
    """Return the absolute path of ``relative`` under ``root``, symlinks resolved.

    Raises:
        InvalidInputError: ``relative`` is empty, absolute, has a ``..`` component, or resolves
            (through symlinks too) outside ``root``; or ``root`` is not a directory.
    """
    if not isinstance(relative, str) or not relative.strip() or "\x00" in relative:
        raise InvalidInputError("file path must be a non-empty relative path")
    text = relative.replace("\\", "/")
    if text.startswith("/") or os.path.isabs(relative) or re.match(r"^[A-Za-z]:", text):
        raise InvalidInputError(f"file path {relative!r} must be relative to the root")
    if ".." in text.split("/"):
        raise InvalidInputError(f"file path {relative!r} must not contain '..'")
    if not isinstance(root, str) or not root:
        raise InvalidInputError("file data source has no root directory")
    base = Path(root).expanduser()
    if not base.is_dir():
        raise InvalidInputError(f"file root {root!r} is not a directory")
    base = base.resolve()
    target = (base / text).resolve()
    if target == base or not target.is_relative_to(base):
        raise InvalidInputError(f"file path {relative!r} resolves outside the root")
    return target


def name_suffixes(table: str) -> tuple[str, str | None]:
    """Return the suffix naming a file's format and the codec its compression suffix names.

    ``out.csv.gz`` gives ``(".csv", "gzip")``, ``in.jsonl`` ``(".jsonl", None)``.
    """
    path = PurePosixPath(table.replace("\\", "/"))
    codec = _COMPRESSED.get(path.suffix.lower())
    if codec is not None:
        path = path.with_suffix("")
    return path.suffix.lower(), codec


def named_format(table: str) -> str | None:
    """Return the format the name's suffix names (``csv``, ``jsonl``, ``parquet``), or None."""
    return _EXTENSIONS.get(name_suffixes(table)[0])


def is_glob(table: str) -> bool:
    """Return whether ``table`` is a glob pattern (it holds ``*``, ``?`` or ``[``)."""
    return bool(_GLOB.search(table))


def matching_files(root: str, pattern: str) -> list[Path]:
    """Return the files under ``root`` that ``pattern`` matches, in path order, resolved.

    Names starting with a dot (temp files, ledgers) never match.

    Raises:
        InvalidInputError: the pattern is absolute, holds ``..`` or resolves outside the root.
        TerminalConnectorError: a match resolves (through a symlink) outside the root, or
            nothing matches.
    """
    resolve_inside(root, pattern)  # the pattern's own shape: relative, no '..'
    base = Path(root).expanduser().resolve()
    found: list[tuple[str, Path]] = []
    for match in base.glob(pattern.replace("\\", "/")):
        relative = match.relative_to(base).as_posix()
        if any(part.startswith(".") for part in relative.split("/")):
            continue
        try:
            path = resolve_inside(root, relative)
        except InvalidInputError:
            raise TerminalConnectorError(
                f"glob {pattern!r} matches {relative}, which resolves outside the root"
            ) from None
        if path.is_file():
            found.append((relative, path))
    if not found:
        raise TerminalConnectorError(f"no file under the root matches the glob {pattern!r}")
    return [path for _, path in sorted(found)]
