"""DB-API driver helpers the SQL backends share: errors without secrets, probes, reads."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from exchangis.errors import (
    ConnectorError,
    ExchangisError,
    mask_secrets,
)

ErrorClass = type[ConnectorError]
"""A connector error class (an alias: connector classes shadow ``type`` with their own)."""

Classifier = Callable[[BaseException], "ErrorClass | None"]
"""Map a driver exception to the ConnectorError class to raise, or None to let it through."""


def scrub(message: str, connect: Mapping[str, Any] | None = None) -> str:
    """Return ``message`` without ``password=...`` text nor the password itself."""
    secret = (connect or {}).get("password")
    return mask_secrets(message, [secret] if isinstance(secret, str) and len(secret) >= 3 else [])


def probe_server(
    connect: Mapping[str, Any],
    label: str,
    default_port: int,
    opener: Callable[[Mapping[str, Any]], Any],
    classify: Classifier,
) -> None:
    """Connect and run ``SELECT 1``: the data source test of a database server.

    Raises:
        ConnectorError: the server cannot be reached or refuses the credentials (no password).
    """
    where = f"{connect.get('host')}:{connect.get('port') or default_port}"
    with translate_errors(classify, connect, f"connect to {label} {where}", hide_cause=True):
        conn = opener(connect)
        try:
            cursor = conn.cursor()
            cursor.execute("SELECT 1")
            cursor.fetchall()
            cursor.close()
        finally:
            conn.close()


def fetch_all(conn: Any, sql: str) -> list[tuple[Any, ...]]:
    """Return the rows of ``sql`` (no parameters) run on a DB-API connection."""
    cursor = conn.cursor()
    try:
        cursor.execute(sql)
        return [tuple(row) for row in cursor.fetchall()]
    finally:
        cursor.close()


@contextmanager
def translate_errors(
    classify: Classifier, connect: Mapping[str, Any], action: str, *, hide_cause: bool = False
) -> Iterator[None]:
    """Re-raise driver exceptions as connector errors whose message carries no password."""
    try:
        yield
    except ExchangisError:
        raise
    except Exception as exc:
        cls = classify(exc)
        if cls is None:
            raise
        error = cls(f"{action} failed: {scrub(str(exc).strip(), connect)}")
        if hide_cause:
            raise error from None
        raise error from exc
