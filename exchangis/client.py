"""Helpers for scripts that talk to the API: a client that signs its calls, the wire shape of
a sub-job."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any


class ApiError(RuntimeError):
    """The API answered with an error envelope (or not with an envelope at all)."""


class ApiClient:
    """Calls the HTTP API as the user whose bearer token it holds.

    ``base`` ends with the prefix, e.g. ``http://127.0.0.1:8080/api/rest_j/v1/exchangis``; get a
    token from ``POST /api/rest_j/v1/user/login`` or ``exchangis users token <name>``.
    """

    def __init__(self, base: str, token: str, timeout: float = 120) -> None:
        self.base = base
        self.token = token
        self.timeout = timeout

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        ok: Sequence[int] = (0,),
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        """Send one request; return the envelope's ``data``. ``params`` go in the query string
        (those that are ``None`` are left out, booleans as ``true``/``false``).

        Raises:
            ApiError: the envelope's ``status`` is not in ``ok`` (or the answer is no envelope),
                or the server cannot be reached.
        """
        given = {k: v for k, v in (params or {}).items() if v is not None}
        query = urllib.parse.urlencode(
            {k: str(v).lower() if isinstance(v, bool) else v for k, v in given.items()}
        )
        url = self.base + path + (("&" if "?" in path else "?") + query if query else "")
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {self.token}"}
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                answer = json.load(response)
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                answer = json.loads(raw)
            except ValueError:
                raise ApiError(f"{method} {path}: HTTP {exc.code}: {raw[:2000]!r}") from None
        except urllib.error.URLError as exc:  # refused, unknown host: no answer at all
            raise ApiError(f"{method} {path}: cannot reach {self.base}: {exc.reason}") from None
        if not isinstance(answer, dict) or answer.get("status") not in ok:
            message = answer.get("message") if isinstance(answer, dict) else answer
            detail = answer.get("data") if isinstance(answer, dict) else ""
            raise ApiError(f"{method} {path}: {message} {detail or ''}".rstrip())
        return answer["data"]

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """GET ``path`` (``params``: the query string)."""
        return self.call("GET", path, params=params)

    def post(self, path: str, body: Any) -> Any:
        """POST ``body`` as JSON to ``path``."""
        return self.call("POST", path, body)

    def delete(self, path: str) -> Any:
        """DELETE ``path``."""
        return self.call("DELETE", path)


def sub_job(
    name: str,
    source: tuple[str, int, str],
    sink: tuple[str, int, str],
    sources: Mapping[str, Any] | None = None,
    sinks: Mapping[str, Any] | None = None,
    settings: Mapping[str, Any] | None = None,
    mapping: Sequence[tuple[str, str]] | None = None,
) -> dict[str, Any]:
    """Return one sub-job of a job's ``content``: ``source``/``sink`` are (type, data source
    id, table); ``sources``/``sinks``/``settings`` become ``{config_key, config_value}`` pairs;
    ``mapping`` is (source column, sink column) pairs (none: the same names)."""

    def pairs(options: Mapping[str, Any] | None) -> list[dict[str, Any]]:
        return [{"config_key": k, "config_value": v} for k, v in (options or {}).items()]

    return {
        "subJobName": name,
        "dataSources": {
            "source": {"type": source[0], "id": source[1], "table": source[2]},
            "sink": {"type": sink[0], "id": sink[1], "table": sink[2]},
        },
        "params": {"sources": pairs(sources), "sinks": pairs(sinks)},
        "transforms": {
            "type": "MAPPING",
            "mapping": [{"source_field_name": s, "sink_field_name": d} for s, d in mapping or []],
        },
        "settings": pairs(settings),
    }
