"""Error records (dirty records) of one task: counting, a bounded log sample, the error limits.

``setting.errorLimit.record`` (R) fails the task as soon as it holds more than R error
records; ``setting.errorLimit.percentage`` (P, a fraction as in DataX: 0.02 is 2 %) fails it
at the end when more than that share of the rows read were error records. When both are set
the record limit wins (the percentage is not checked). When neither is set no error record is
tolerated: the first one fails the task, so no row is ever dropped silently.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from exchangis.connectors.base import Reject
from exchangis.errors import TerminalConnectorError
from exchangis.state.logs import LogWriter

SAMPLE_ROWS = 10
"""Error records of a task (per attempt) whose values are written to the task log."""

SAMPLE_VALUE_CHARS = 200
"""Longest value shown in a sample line; longer ones are cut and marked."""


class ErrorLimitExceededError(TerminalConnectorError):
    """The task holds more error records than its error limit allows."""


class ErrorRecords:
    """The error-record budget of one task attempt."""

    def __init__(self, settings: Mapping[str, Any], log: LogWriter) -> None:
        record = settings.get("error_limit_record")
        percentage = settings.get("error_limit_percentage")
        self.record: int | None = None if record in (None, "") else int(record)
        self.percentage: float | None = (
            None if percentage in (None, "") or self.record is not None else float(percentage)
        )
        if self.record is None and self.percentage is None:
            self.record = 0
        self.log = log
        self.count = 0

    def describe(self) -> str:
        """Return the limit in force, for the task log."""
        if self.record is not None:
            return f"at most {self.record} error records"
        return f"at most {self.percentage:g} of the rows read as error records"

    def add(self, rejects: Sequence[Reject]) -> None:
        """Count and sample ``rejects``; fail at once when the record limit is exceeded.

        Raises:
            ErrorLimitExceededError: more error records than ``setting.errorLimit.record``.
        """
        for reject in rejects:
            self.count += 1
            if self.count <= SAMPLE_ROWS:
                self.log.warn(
                    f"Error record {self.count}: {_row_text(reject.row)} | reason: {reject.reason}"
                )
                if self.count == SAMPLE_ROWS:
                    self.log.warn(f"Only the first {SAMPLE_ROWS} error records are shown")
        if rejects and self.record is not None and self.count > self.record:
            raise ErrorLimitExceededError(
                f"{self.count} error records exceed setting.errorLimit.record {self.record}; "
                f"last reason: {rejects[-1].reason}"
            )

    def finish(self, read: int) -> None:
        """Check the percentage limit over the whole run.

        Raises:
            ErrorLimitExceededError: a larger share of the rows read than
                ``setting.errorLimit.percentage``.
        """
        if self.percentage is None or not self.count:
            return
        share = self.count / max(read, 1)
        if share > self.percentage:
            raise ErrorLimitExceededError(
                f"{self.count} error records in {read} rows ({share:.2%}) exceed "
                f"setting.errorLimit.percentage {self.percentage:g}"
            )


def _row_text(row: Mapping[str, Any]) -> str:
    return json.dumps({k: _cut(v) for k, v in row.items()}, ensure_ascii=False, default=str)


def _cut(value: Any) -> Any:
    text = value if isinstance(value, str) else None
    if isinstance(value, bytes | bytearray):
        text = "0x" + bytes(value[: SAMPLE_VALUE_CHARS // 2]).hex()
        return text + ("..." if len(value) > SAMPLE_VALUE_CHARS // 2 else "")
    if text is not None and len(text) > SAMPLE_VALUE_CHARS:
        return text[:SAMPLE_VALUE_CHARS] + f"... ({len(text)} chars)"
    return value
