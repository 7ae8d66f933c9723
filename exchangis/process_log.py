"""The service's own process logs: text lines, or JSON lines (setting ``log_format``), each
carrying the execution and task it is about.

A line is about an execution or a task when it is logged inside :func:`about` (a worker
running a task, the reaper acting on one) or during an API request naming one (:func:`only`):
:class:`ContextFilter` copies the ids onto the record, so a JSON line has ``execution`` and
``task`` fields and a text line ends with ``[execution=… task=…]``. Execution and task logs
(what users read through the API) are another thing: :mod:`exchangis.state.logs`.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from typing import TextIO

from exchangis.errors import install_log_masking

FORMATS = ("text", "json")
IDS = ("execution", "task")
"""What a line may be about, in the order a text line names them."""
TEXT = "%(asctime)s %(levelname)s %(name)s %(message)s%(about)s"

_CONTEXT: ContextVar[dict[str, str] | None] = ContextVar("exchangis_log_about", default=None)


def bind(**ids: object) -> Token[dict[str, str] | None]:
    """Make the lines logged from here on in this context about ``ids`` (None: left as is);
    return the token that :func:`unbind` takes."""
    given = {key: str(value) for key, value in ids.items() if value is not None}
    return _CONTEXT.set({**(_CONTEXT.get() or {}), **given})


def only(**ids: object) -> None:
    """Make the lines logged from here on in this context about ``ids`` alone (a new request
    in a server thread: nothing of the previous one stays)."""
    _CONTEXT.set({key: str(value) for key, value in ids.items() if value is not None})


def unbind(token: Token[dict[str, str] | None]) -> None:
    """Undo the :func:`bind` that returned ``token``."""
    _CONTEXT.reset(token)


@contextmanager
def about(**ids: object) -> Iterator[None]:
    """Make the lines logged inside about ``ids`` (``execution``, ``task``)."""
    token = bind(**ids)
    try:
        yield
    finally:
        unbind(token)


class ContextFilter(logging.Filter):
    """Copy the ids of :func:`about` onto each record (``record.execution``, ``record.task``)
    and their text form (``record.about``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        ids = _CONTEXT.get() or {}
        for key in IDS:
            if not hasattr(record, key):
                setattr(record, key, ids.get(key))
        named = [f"{key}={getattr(record, key)}" for key in IDS if getattr(record, key)]
        record.about = f" [{' '.join(named)}]" if named else ""
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message``,
    ``process``, then ``execution``/``task`` when the line is about them, ``exception``."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
        }
        for key in IDS:
            if getattr(record, key, None):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def handler(log_format: str, stream: TextIO | None = None) -> logging.Handler:
    """Return a handler writing ``log_format`` lines to ``stream`` (standard error)."""
    made = logging.StreamHandler(stream or sys.stderr)
    made.addFilter(ContextFilter())
    made.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT))
    return made


def configure(log_format: str = "text", level: int = logging.INFO) -> None:
    """Send the process's log lines to standard error in ``log_format`` (secrets masked)."""
    root = logging.getLogger()
    root.handlers = [handler(log_format)]
    root.setLevel(level)
    logging.captureWarnings(True)  # a library's warning is a line like any other
    install_log_masking()
