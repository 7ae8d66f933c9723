"""Schemathesis checks of the exchangis API, loaded by ``scripts/fuzz.py`` (SCHEMATHESIS_HOOKS)."""

from __future__ import annotations

from typing import Any

import schemathesis

ENVELOPE = {"method", "status", "message", "data"}


@schemathesis.check
def envelope(ctx: Any, response: Any, case: Any) -> None:
    """Every answer of the application is the JSON envelope ``{method, status, message, data}``.

    ``OPTIONS`` and ``HEAD`` answers are HTTP's own (empty bodies); a request line the HTTP
    server refuses (414) never reaches the application.
    """
    if case.method.upper() in ("OPTIONS", "HEAD") or response.status_code == 414:
        return
    try:
        body = response.json()
    except ValueError:
        raise AssertionError(
            f"not JSON: HTTP {response.status_code} {response.text[:200]!r}"
        ) from None
    if not isinstance(body, dict) or set(body) != ENVELOPE:
        raise AssertionError(f"not the envelope: {str(body)[:300]}")
