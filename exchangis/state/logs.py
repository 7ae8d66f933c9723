"""Line-addressed logs in Redis lists: list index + 1 is the line number.

Every line starts ``YYYY-MM-DD HH:MM:SS.mmm LEVEL`` and has secrets masked before it is stored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from zoneinfo import ZoneInfo

from redis import Redis

from exchangis.errors import mask_secrets
from exchangis.state.keys import Keys

MAX_LINE_CHARS = 8192


class LogWriter:
    """Append formatted, masked lines to one log list."""

    def __init__(
        self,
        redis: Redis,
        key: str,
        *,
        zone: ZoneInfo,
        secrets: Iterable[str] = (),
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.redis = redis
        self.key = key
        self.zone = zone
        self.secrets = tuple(s for s in secrets if s)
        self.clock = clock

    def _stamp(self) -> str:
        now = (
            datetime.fromtimestamp(self.clock(), self.zone)
            if self.clock
            else datetime.now(self.zone)
        )
        return now.strftime("%Y-%m-%d %H:%M:%S.") + f"{now.microsecond // 1000:03d}"

    def mask(self, text: str) -> str:
        """Return ``text`` with this log's secrets masked."""
        return mask_secrets(text, self.secrets)

    def format(self, level: str, message: str) -> str:
        """Return the stored form of one line: stamp, level, masked and capped message."""
        text = self.mask(message)
        if len(text) > MAX_LINE_CHARS:
            text = text[:MAX_LINE_CHARS] + f" ...[cut {len(text) - MAX_LINE_CHARS} chars]"
        return f"{self._stamp()} {level.upper()} {text}"

    def write(self, level: str, message: str) -> int:
        """Append one line; return its line number."""
        return int(self.redis.rpush(self.key, self.format(level, message)))

    def info(self, message: str) -> int:
        """Append an INFO line."""
        return self.write("INFO", message)

    def warn(self, message: str) -> int:
        """Append a WARN line."""
        return self.write("WARN", message)

    def error(self, message: str) -> int:
        """Append an ERROR line."""
        return self.write("ERROR", message)


def execution_log(
    redis: Redis, keys: Keys, eid: str, zone: ZoneInfo, secrets: Iterable[str] = ()
) -> LogWriter:
    """Return the writer of an execution's job log."""
    return LogWriter(redis, keys.execution_log(eid), zone=zone, secrets=secrets)


def task_log(
    redis: Redis, keys: Keys, tid: int | str, zone: ZoneInfo, secrets: Iterable[str] = ()
) -> LogWriter:
    """Return the writer of a task's log."""
    return LogWriter(redis, keys.task_log(tid), zone=zone, secrets=secrets)


def read_lines(redis: Redis, key: str, start: int = 1, count: int = -1) -> list[str]:
    """Return lines ``start``.. (1-based), at most ``count`` (-1: to the end)."""
    stop = -1 if count < 0 else start - 1 + count - 1
    lines: list[str] = redis.lrange(key, start - 1, stop)  # type: ignore[assignment]
    return lines
