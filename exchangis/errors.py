"""One error tree for the whole package; the API maps it to the envelope in one place."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

MASK = "******"
# (?<!\w) in both patterns: a match starts where a word does; without it a long run of word
# characters costs quadratic time (every start inside the run is tried)
_PASSWORD_RE = re.compile(
    r"""(?i)(?<!\w)(\w*(?:password|passwd|pwd)\w*["']?)(\s*[=:]\s*)("[^"]*"|'[^']*'|[^\s,;&'")}]+)"""
)
"""``password=x``, ``db_password: x``, ``PGPASSWORD=x``, ``'password': 'x'``, ``"pwd": "x"``..."""
_URL_PASSWORD_RE = re.compile(r"(?<!\w)(\w+://[^:/\s@]+:)([^@\s]+)(@)")


def mask_secrets(text: str, secrets: Iterable[str] = ()) -> str:
    """Return ``text`` with every listed secret and any ``password=...`` value masked.

    Errors and log lines pass through this before anyone sees them; drivers often echo
    connection strings.
    """
    for secret in sorted(set(secrets), key=len, reverse=True):  # longest first
        if secret:
            text = text.replace(secret, MASK)
    text = _PASSWORD_RE.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    return _URL_PASSWORD_RE.sub(lambda m: f"{m.group(1)}{MASK}{m.group(3)}", text)


class MaskSecretsFilter(logging.Filter):
    """A logging filter that masks ``password=...`` values and URL passwords in every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Mask the message and any traceback text; never drops a record."""
        record.msg = mask_secrets(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_secrets(record.exc_text)
        return True


def install_log_masking() -> None:
    """Add :class:`MaskSecretsFilter` to every handler of the root logger (idempotent)."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, MaskSecretsFilter) for f in handler.filters):
            handler.addFilter(MaskSecretsFilter())


class ExchangisError(Exception):
    """Base of every error this package raises on purpose."""

    http_status = 500
    envelope_status = 1
    """The envelope's ``status``: 1 error, -1 not authenticated, 3 forbidden."""

    def __init__(self, message: str, *, errors: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors


class InvalidInputError(ExchangisError):
    """The request (or a job definition) breaks a rule; nothing was changed."""

    http_status = 400

    @classmethod
    def of(cls, field: str, message: str) -> InvalidInputError:
        """Return the error of one field: ``"field: message"``, ``errors={field: [message]}``."""
        return cls(f"{field}: {message}", errors={field: [message]})


class UnauthenticatedError(ExchangisError):
    """The request carries no valid credentials (or they expired, or were revoked)."""

    http_status = 401
    envelope_status = -1


class ForbiddenError(ExchangisError):
    """The caller may see the thing but lacks the right the operation needs."""

    http_status = 403
    envelope_status = 3


class TooManyRequestsError(ExchangisError):
    """Too many failed sign-ins from one address or for one user name; try again later."""

    http_status = 429

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class NotFoundError(ExchangisError):
    """An id names nothing the caller may see (existence is not revealed either)."""

    http_status = 404


class ConflictError(ExchangisError):
    """The operation is not allowed in the current state."""

    http_status = 409


class UnavailableError(ExchangisError):
    """A store the operation needs (Redis, the broker) cannot be reached; nothing was started."""

    http_status = 503


class SettingsError(ExchangisError):
    """The settings (defaults, file, environment) do not validate."""


class ConnectorError(ExchangisError):
    """A source or sink failed; the message is safe to log (no secrets)."""


class TransientConnectorError(ConnectorError):
    """A failure that may pass on retry (connection lost, deadlock, timeout)."""


class TerminalConnectorError(ConnectorError):
    """A failure that a retry will not fix (bad table, constraint violation, bad file)."""


class RecordError(TerminalConnectorError):
    """Rows do not fit the sink (a value or a constraint); the batch's other rows can go.

    A sink that raises it for a batch finds the bad rows by splitting the batch; each becomes
    an error record (dirty record) counted against ``setting.errorLimit``.
    """


class BulkRowRefusedError(TerminalConnectorError):
    """A bulk path failed on a row it cannot set apart or name (a binary ``COPY`` aborts the
    whole transaction; connectorx stops at a value it cannot read): the transfer must start
    again with row-level reads and writes."""
