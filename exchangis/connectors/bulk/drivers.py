"""Which bulk libraries the worker can use, and the connection URLs their drivers take.

Each bulk path is optional: its library comes as a PyPI wheel, and when it cannot be imported
the connectors fall back to their per-row driver paths (:func:`available`). connectorx and
ADBC connect by URL, built here from a data source's connect params (:func:`url`).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from exchangis.connectors.base import check_host


def available(module: str) -> bool:
    """Return whether ``module`` can be imported (without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def url(scheme: str, connect: Mapping[str, Any], default_port: int, db: str | None) -> str:
    """Return a ``scheme://user:password@host:port/db`` URL (every part percent-encoded).

    The URL holds the password: never log it.
    """
    user = quote(str(connect.get("username") or ""), safe="")
    password = str(connect.get("password") or "")
    auth = f"{user}:{quote(password, safe='')}@" if password else f"{user}@"
    host = check_host(str(connect.get("host") or "localhost"))
    if ":" in host:  # an IPv6 address
        host = f"[{host}]"
    port = int(connect.get("port") or default_port)
    database = quote(str(db or connect.get("database") or ""), safe="")
    return f"{scheme}://{auth}{host}:{port}/{database}"
