"""Line-addressed logs in Redis: append, page, tail, with a bounded size.

A log (``Keys.log_parts``) has a *head* that takes the first lines, stored in segments of
``SEGMENT_LINES`` lines (so reading a page costs the same at any position), a *tail* list that
takes the rest and is trimmed from its front, and counters of the lines written and of those in
the head. The head takes lines while it holds fewer than ``head_cap`` lines and fewer than
``head_bytes`` bytes; the tail keeps at most ``tail_cap`` lines and ``tail_bytes`` bytes (a
byte cap of 0: none). Line numbers are 1-based and never change. When lines between head and
tail have been dropped, line ``head_len + 1`` reads as one marker line saying which were cut.
(The scripts build segment key names from the log key: fine on one Redis, not on a cluster.)

Every stored line starts ``YYYY-MM-DD HH:MM:SS.mmm LEVEL``; a message with newlines becomes one
stamped line followed by continuation lines. Secrets are masked before anything is stored, and
no stored line is longer than ``MAX_LINE_CHARS`` characters (at most ``MAX_LINE_BYTES`` bytes).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from redis import Redis

from exchangis.errors import mask_secrets
from exchangis.state.keys import SEGMENT, SEGMENT_LINES, Keys
from exchangis.threads import TIMERS, Timer

MAX_LINE_CHARS = 8192
"""Longest stored line in characters: a longer one is cut to this, its end saying how much."""
MAX_LINE_BYTES = 4 * MAX_LINE_CHARS
"""Longest stored line in bytes (UTF-8 takes at most 4 bytes a character): the least a byte
cap's head or tail is given, so that any line fits."""
STAMP_CHARS = len("2026-01-01 00:00:00.000")
HOLD_LINES = 500
"""Most lines a holding writer keeps before it stores them (see ``LogWriter.hold_seconds``)."""
HOLD_CHARS = 2**20
"""Most characters a holding writer keeps before it stores them."""

logger = logging.getLogger(__name__)

# KEYS: log (head segment prefix), tail, line counter, head counter, cut book, closed flag.
# ARGV: head cap, tail cap, segment size, segment separator, head bytes, tail bytes (0: no byte
# cap), lines... Returns the last line number. A closed (archived) log takes no more lines.
# The cut book is a hash: ``hb``/``tb`` the bytes in head and tail, ``stamp`` the stamp of the
# last stamped line dropped from the tail (the cut marker wears it, so live and archived
# markers agree). A log begun before the book was a hash kept the stamp alone in a string: it
# is carried over (with its time to live), and its bytes are counted from then on.
# The head takes line n only when it holds every line before it: numbers stay contiguous.
_APPEND = """
if redis.call('EXISTS', KEYS[6]) == 1 then return tonumber(redis.call('GET', KEYS[3]) or '0') end
local head_cap, tail_cap, seg = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local head_bytes, tail_bytes = tonumber(ARGV[5]), tonumber(ARGV[6])
local book = KEYS[5]
if redis.call('TYPE', book).ok == 'string' then
  local old, ttl = redis.call('GET', book), redis.call('PTTL', book)
  redis.call('DEL', book)
  redis.call('HSET', book, 'stamp', old)
  if ttl > 0 then redis.call('PEXPIRE', book, ttl) end
end
local hb = tonumber(redis.call('HGET', book, 'hb') or '0')
local tb = tonumber(redis.call('HGET', book, 'tb') or '0')
local n = tonumber(redis.call('GET', KEYS[3]) or '0')
local hn = tonumber(redis.call('GET', KEYS[4]) or '0')
local first_n, first_hn, tl, stamp = n, hn, nil, nil
for i = 7, #ARGV do
  local line = ARGV[i]
  n = n + 1
  if hn == n - 1 and hn < head_cap and (head_bytes == 0 or hb + #line <= head_bytes) then
    hn = hn + 1
    hb = hb + #line
    redis.call('RPUSH', KEYS[1] .. ARGV[4] .. math.floor((hn - 1) / seg), line)
  else
    tl = redis.call('RPUSH', KEYS[2], line)
    tb = tb + #line
    while tl > 1 and (tl > tail_cap or (tail_bytes > 0 and tb > tail_bytes)) do
      local dropped = redis.call('LPOP', KEYS[2])
      tl = tl - 1
      tb = math.max(0, tb - #dropped)
      if string.match(dropped, '^%d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d%.%d%d%d ') then
        stamp = string.sub(dropped, 1, 23)
      end
    end
  end
end
if n > first_n then redis.call('INCRBY', KEYS[3], n - first_n) end
if hn > first_hn then redis.call('INCRBY', KEYS[4], hn - first_hn) end
redis.call('HSET', book, 'hb', hb, 'tb', tb)
if stamp then redis.call('HSET', book, 'stamp', stamp) end
return n
"""

# The cut marker's stamp from the cut book (a hash; a string in a log begun before that).
_CUT_STAMP = """
local function cut_stamp()
  local kind = redis.call('TYPE', KEYS[5]).ok
  if kind == 'hash' then return redis.call('HGET', KEYS[5], 'stamp') or '' end
  if kind == 'string' then return redis.call('GET', KEYS[5]) end
  return ''
end
"""

# KEYS: as above. ARGV: first line number, most lines, segment size, segment separator.
# Returns {last line, head length, first tail line number, cut stamp, no1, text1, ...};
# a cut marker comes back as its number negated, with an empty text (the caller words it).
_FETCH = (
    _CUT_STAMP
    + """
local n = tonumber(redis.call('GET', KEYS[3]) or '0')
local hl = tonumber(redis.call('GET', KEYS[4]) or '0')
local tl = redis.call('LLEN', KEYS[2])
local first_tail = n - tl + 1
local out = {n, hl, first_tail, cut_stamp()}
local seg = tonumber(ARGV[3])
local pos, left = tonumber(ARGV[1]), tonumber(ARGV[2])
if pos < 1 then pos = 1 end
while pos <= hl and left > 0 do
  local k = math.floor((pos - 1) / seg)
  local offset = pos - 1 - k * seg
  local stop = math.min(hl, pos + left - 1, (k + 1) * seg)
  local lines = redis.call('LRANGE', KEYS[1] .. ARGV[4] .. k, offset, offset + stop - pos)
  if #lines == 0 then break end
  for i, line in ipairs(lines) do
    table.insert(out, pos + i - 1)
    table.insert(out, line)
  end
  left = left - #lines
  pos = pos + #lines
end
if pos <= hl then return out end
if first_tail > hl + 1 then
  if pos <= hl + 1 and left > 0 then
    table.insert(out, -(hl + 1))
    table.insert(out, '')
    left = left - 1
  end
  if pos < first_tail then pos = first_tail end
end
if left > 0 and pos <= n then
  local lines = redis.call('LRANGE', KEYS[2], pos - first_tail, pos - first_tail + left - 1)
  for i, line in ipairs(lines) do
    table.insert(out, pos + i - 1)
    table.insert(out, line)
  end
end
return out
"""
)

Line = tuple[int, str]
"""A log line: its number and its text."""


class LineSource(Protocol):
    """Where a log's lines are read from: the live Redis keys or the SQL archive."""

    def last_line(self) -> int:
        """Return the number of the last line (0 when empty)."""

    def fetch(self, start: int, limit: int) -> list[Line]:
        """Return up to ``limit`` existing lines numbered ``start`` or more, in order."""

    def last(self, count: int) -> list[Line]:
        """Return the last ``count`` existing lines, in order."""


def stamp(moment: datetime) -> str:
    """Return the ``YYYY-MM-DD HH:MM:SS.mmm`` stamp of a log line."""
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def cut(line: str) -> str:
    """Return ``line``, or when longer than ``MAX_LINE_CHARS`` its start and how much was cut,
    ``MAX_LINE_CHARS`` characters in all (so a cut line is never cut again)."""
    if len(line) <= MAX_LINE_CHARS:
        return line
    room = MAX_LINE_CHARS - len(_cut_note(len(line)))  # the note can only get shorter
    return line[:room] + _cut_note(len(line) - room)


def _cut_note(chars: int) -> str:
    return f" ...[line cut: {chars} more chars]"


class LogWriter:
    """Append formatted, masked lines to one log.

    ``head_cap``/``tail_cap`` bound the head and the tail in lines, ``head_bytes``/
    ``tail_bytes`` in bytes (0: no byte cap; a smaller one than ``MAX_LINE_BYTES`` is raised
    to it, so that any line fits). ``secrets`` may be a function, asked at each message (so a
    secret learnt after the writer was made is masked too).

    With ``hold_seconds`` > 0 the writer holds its lines and stores them together, in one script
    call: ``hold_seconds`` after the first line held (on the process's timer thread,
    :data:`~exchangis.threads.TIMERS`), as soon as
    ``HOLD_LINES`` lines or ``HOLD_CHARS`` characters are held, and at :meth:`flush` and
    :meth:`close`. Lines stored together get the numbers, order, caps and masking they would
    have got one by one; a reader sees them up to ``hold_seconds`` later.
    """

    def __init__(
        self,
        redis: Redis,
        key: str,
        *,
        zone: ZoneInfo,
        secrets: Iterable[str] | Callable[[], Iterable[str]] = (),
        head_cap: int = 100_000,
        tail_cap: int = 100_000,
        head_bytes: int = 0,
        tail_bytes: int = 0,
        clock: Callable[[], float] | None = None,
        hold_seconds: float = 0.0,
    ) -> None:
        self.redis = redis
        self.keys = Keys.log_parts(key)
        self.zone = zone
        self._secrets: Callable[[], Iterable[str]] | tuple[str, ...] = (
            secrets if callable(secrets) else tuple(s for s in secrets if s)
        )
        self.caps = (head_cap, tail_cap)
        self.byte_caps = tuple(
            max(cap, MAX_LINE_BYTES) if cap > 0 else 0 for cap in (head_bytes, tail_bytes)
        )
        self.clock = clock
        self.hold_seconds = hold_seconds
        self.last_line = 0
        """The number of the last line this writer stored (0: none yet)."""
        self._append = redis.register_script(_APPEND)
        self._held: list[str] = []
        self._held_chars = 0
        self._lock = threading.Lock()
        """Taken to hold lines and to store them: stores happen one at a time, in order."""
        self._timer: Timer | None = None
        self._closed = threading.Event()

    @property
    def secrets(self) -> tuple[str, ...]:
        """Return the secrets this log masks now."""
        found = self._secrets() if callable(self._secrets) else self._secrets
        return tuple(s for s in found if s)

    def mask(self, text: str) -> str:
        """Return ``text`` with this log's secrets masked."""
        return mask_secrets(text, self.secrets)

    def format(self, level: str, message: str) -> list[str]:
        """Return the stored lines of one message: stamped first line, then continuations."""
        now = (
            datetime.fromtimestamp(self.clock(), self.zone)
            if self.clock
            else datetime.now(self.zone)
        )
        lines = self.mask(message).split("\n")
        lines[0] = f"{stamp(now)} {level.upper()} {lines[0]}"
        return [cut(line) for line in lines]

    def write(self, level: str, message: str) -> int:
        """Append one message (its lines); return the number of its last line, or, while a
        holding writer holds it, the number of the last line stored so far."""
        lines = self.format(level, message)
        if self.hold_seconds <= 0:
            return self.append_lines(lines)
        with self._lock:
            self._held += lines
            self._held_chars += sum(len(line) for line in lines)
            if (  # closed: stored at once, after any line a failed store left held
                not self._closed.is_set()
                and len(self._held) < HOLD_LINES
                and self._held_chars < HOLD_CHARS
            ):
                if self._timer is None:
                    self._timer = TIMERS.call(self.hold_seconds, self._store_held)
                return self.last_line
        return self.flush()

    def append_lines(self, lines: list[str]) -> int:
        """Append lines already formatted (and masked) in one call; return the last number.

        Lines longer than ``MAX_LINE_CHARS`` are cut here too: the byte caps rely on it.
        """
        args: list[int | str] = [*self.caps, SEGMENT_LINES, SEGMENT, *self.byte_caps]
        args += [cut(line) for line in lines]
        self.last_line = int(self._append(keys=list(self.keys), args=args))
        return self.last_line

    def flush(self) -> int:
        """Store the held lines now (one script call); return the number of the last line
        stored. Lines whose store fails stay held (the next store tries them again)."""
        with self._lock:
            if self._held:
                self.append_lines(self._held)
                self._held, self._held_chars = [], 0
            return self.last_line

    def close(self) -> int:
        """Store the held lines and hold no more (later messages are stored at once); return
        the number of the last line stored."""
        self._closed.set()
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        return self.flush()

    def _store_held(self) -> None:
        """Store what is held (on the timer thread); after a failed store, try again
        ``hold_seconds`` later."""
        with self._lock:
            self._timer = None
            if not self._held:
                return
        try:
            self.flush()
        except Exception:  # a store outage: the lines stay held for the next try
            logger.warning("log store failed key=%s", self.keys[0], exc_info=True)
            with self._lock:
                if self._timer is None and not self._closed.is_set():
                    self._timer = TIMERS.call(self.hold_seconds, self._store_held)

    def info(self, message: str) -> int:
        """Append an INFO line."""
        return self.write("INFO", message)

    def warn(self, message: str) -> int:
        """Append a WARN line."""
        return self.write("WARN", message)

    def error(self, message: str) -> int:
        """Append an ERROR line."""
        return self.write("ERROR", message)


class LiveLog:
    """Reads one log's live Redis keys; every read is one atomic script call."""

    def __init__(self, redis: Redis, key: str) -> None:
        self.redis = redis
        self.keys = Keys.log_parts(key)
        self._fetch = redis.register_script(_FETCH)

    def last_line(self) -> int:
        """Return the number of the last line written."""
        return int(self.redis.get(self.keys[2]) or 0)

    def fetch(self, start: int, limit: int) -> list[Line]:
        """Return up to ``limit`` lines numbered ``start`` or more (a cut reads as one marker)."""
        reply = self._fetch(keys=list(self.keys), args=[start, limit, SEGMENT_LINES, SEGMENT])
        last, head_len, first_tail, cut_stamp = reply[:4]
        marker = (
            f"{cut_stamp or '1970-01-01 00:00:00.000'} WARN [log cap] lines {head_len + 1}-"
            f"{first_tail - 1} were cut: this log keeps its first {head_len} and last "
            f"{last - first_tail + 1} lines"
        )
        return [
            (-int(number), marker) if int(number) < 0 else (int(number), str(text))
            for number, text in zip(reply[4::2], reply[5::2], strict=True)
        ]

    def close(self) -> None:
        """Take no more lines (set once the log is archived; late writers are dropped)."""
        self.redis.set(self.keys[5], "1")

    def reopen(self) -> None:
        """Take lines again and keep the log (a resumed or restarted execution goes on in it)."""
        head = int(self.redis.get(self.keys[3]) or 0)
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(self.keys[5])
        for key in Keys.log_keys(self.keys[0], head):
            pipe.persist(key)
        pipe.execute()

    def last(self, count: int) -> list[Line]:
        """Return the last ``count`` lines."""
        reply = self._fetch(keys=list(self.keys), args=[0, 0, SEGMENT_LINES, SEGMENT])
        last, head_len, first_tail = int(reply[0]), int(reply[1]), int(reply[2])
        tail_len = last - first_tail + 1
        if first_tail <= head_len + 1 or count <= tail_len:  # no cut, or within the tail
            start = max(1, last - count + 1)
        else:  # the marker counts as one line, then the end of the head
            start = max(1, head_len - (count - tail_len - 1) + 1)
        return self.fetch(start, count)


LEVELS = ("ERROR", "WARN", "INFO")


def _is_head(text: str) -> bool:
    """Return True for a stamped line (``YYYY-MM-DD HH:MM:SS.mmm LEVEL``), not a continuation."""
    return (
        len(text) > STAMP_CHARS
        and text[4] == "-"
        and text[10] == " "
        and text[13] == ":"
        and text[19] == "."
        and text[:4].isdigit()
        and text[STAMP_CHARS] == " "
    )


def _level(text: str) -> str:
    return text[STAMP_CHARS + 1 :].split(" ", 1)[0]


class LogPage:
    """One answer of the log query: ``endLine``, ``isEnd`` and the lines by level."""

    def __init__(self, end_line: int, is_end: bool, lines: list[tuple[str, str]]) -> None:
        self.end_line = end_line
        self.is_end = is_end
        self.lines = lines

    def logs(self) -> dict[str, str]:
        """Return ``{all, error, warn, info}`` with the keys whose text would be empty left out."""
        out = {"all": "\n".join(text for text, _ in self.lines)}
        for level in LEVELS:
            out[level.lower()] = "\n".join(text for text, lvl in self.lines if lvl == level)
        return {key: value for key, value in out.items() if value}


def read_page(
    source: LineSource,
    *,
    from_line: int = 1,
    page_size: int = 100,
    only: list[str] | None = None,
    ignore: list[str] | None = None,
    last_rows: int = 0,
    completed: bool = False,
    scan_limit: int = 100_000,
    chunk: int = 1000,
) -> LogPage:
    """Answer the log query of api.md ("The log query"), reading O(page + lines skipped).

    ``lastRows`` wins over everything; otherwise lines from ``max(from_line, 1)`` are filtered
    (a continuation line shares the fate and level of the stamped line it continues) until
    ``page_size`` lines are accepted, the log ends, or ``scan_limit`` lines were examined.
    """
    if last_rows > 0:
        lines = source.last(last_rows)
        last = source.last_line()
        end = lines[-1][0] if lines else last  # lines written meanwhile come with the next poll
        return LogPage(end, completed and end >= last, _levelled(source, lines))
    start = max(from_line, 1)

    def keep(text: str) -> bool:
        if ignore and any(word in text for word in ignore):
            return False
        return not only or any(word in text for word in only)

    fate: tuple[bool, str] | None = None
    accepted: list[tuple[str, str]] = []
    end_line = start - 1
    examined = 0
    position = start
    while len(accepted) < page_size and examined < scan_limit:
        want = chunk if only or ignore else page_size - len(accepted)  # unfiltered: exact
        lines = source.fetch(position, min(want, scan_limit - examined))
        if not lines:
            break
        for number, text in lines:
            if _is_head(text):
                fate = (keep(text), _level(text))
            elif fate is None:
                head = _head_before(source, number)
                fate = (keep(head), _level(head)) if head else (keep(text), "")
            end_line = number
            examined += 1
            if fate[0]:
                accepted.append((text, fate[1]))
                if len(accepted) >= page_size:
                    break
        position = end_line + 1
    last = source.last_line()
    return LogPage(end_line, completed and end_line >= last, accepted)


def _head_before(source: LineSource, number: int, look_back: int = 200) -> str | None:
    """Return the stamped line a continuation line ``number`` belongs to (bounded look-back)."""
    lines = source.fetch(max(1, number - look_back), min(look_back, number - 1))
    for _, text in reversed([line for line in lines if line[0] < number]):
        if _is_head(text):
            return text
    return None


def _levelled(source: LineSource, lines: list[Line]) -> list[tuple[str, str]]:
    """Return the lines with their levels (continuations take their stamped line's level)."""
    out: list[tuple[str, str]] = []
    level = ""
    for index, (number, text) in enumerate(lines):
        if _is_head(text):
            level = _level(text)
        elif index == 0:
            head = _head_before(source, number)
            level = _level(head) if head else ""
        out.append((text, level))
    return out
