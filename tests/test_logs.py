"""Line-addressed logs on a real Redis: writing, the size cap, and the log query rules."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import pytest

from exchangis.runtime import Runtime
from exchangis.settings import Settings
from exchangis.state.keys import Keys
from exchangis.state.logs import (
    MAX_LINE_BYTES,
    MAX_LINE_CHARS,
    LiveLog,
    LogWriter,
    cut,
    read_page,
)

UTC = ZoneInfo("UTC")


@pytest.fixture
def key(rt: Runtime) -> Iterator[str]:
    name = f"{rt.keys.prefix}testlog:{uuid.uuid4().hex[:8]}"
    yield name
    rt.redis.delete(*Keys.log_keys(name, 100_000))


def writer(rt: Runtime, key: str, cap: int = 1000, secrets: tuple[str, ...] = ()) -> LogWriter:
    return LogWriter(
        rt.redis,
        key,
        zone=UTC,
        secrets=secrets,
        head_cap=cap,
        tail_cap=cap,
        clock=lambda: 1_700_000_000.25,
    )


def test_lines_are_stamped_split_capped_and_masked(rt: Runtime, key: str) -> None:
    log = writer(rt, key, secrets=("s3cr3t!",))
    assert log.info("connect s3cr3t! mysql://u:pw@h/db password=abc\nat frame 1\nat frame 2") == 3
    assert log.error("x" * (MAX_LINE_CHARS + 10)) == 4
    lines = [text for _, text in LiveLog(rt.redis, key).fetch(1, 10)]
    assert lines[0].startswith("2023-11-14 22:13:20.250 INFO connect ******")
    assert "s3cr3t!" not in lines[0] and ":pw@" not in lines[0] and "abc" not in lines[0]
    assert lines[1:3] == ["at frame 1", "at frame 2"]
    kept, note = lines[3].split(" ...", 1)
    assert note == "[line cut: 71 more chars]"  # the stamp counts too
    assert len(kept) + 71 == len("2023-11-14 22:13:20.250 ERROR ") + MAX_LINE_CHARS + 10
    assert len(lines[3]) <= MAX_LINE_CHARS
    assert log.append_lines([lines[3], "é" * (MAX_LINE_CHARS + 1)]) == 6  # cut once, not again
    stored = [text for _, text in LiveLog(rt.redis, key).fetch(5, 2)]
    assert stored[0] == lines[3]
    kept, note = stored[1].split(" ...", 1)
    assert (
        kept == "é" * len(kept)
        and note == f"[line cut: {MAX_LINE_CHARS + 1 - len(kept)} more chars]"
    )
    assert len(stored[1]) <= MAX_LINE_CHARS and len(stored[1].encode()) <= MAX_LINE_BYTES


def test_a_log_over_its_cap_keeps_head_and_tail_with_numbers_intact(rt: Runtime, key: str) -> None:
    log = writer(rt, key, cap=5)
    for i in range(1, 21):
        log.info(f"line {i}")
    live = LiveLog(rt.redis, key)
    lines = live.fetch(1, 100)
    assert [n for n, _ in lines] == [1, 2, 3, 4, 5, 6, 16, 17, 18, 19, 20]
    assert "lines 6-15 were cut" in lines[5][1] and " WARN " in lines[5][1]
    assert lines[6][1].endswith("line 16")
    assert [n for n, _ in live.last(3)] == [18, 19, 20]
    assert [n for n, _ in live.last(7)] == [5, 6, 16, 17, 18, 19, 20]
    assert [n for n, _ in live.fetch(9, 2)] == [16, 17]  # inside the cut: resume at the tail
    assert live.last_line() == 20


def _fill(rt: Runtime, key: str) -> LiveLog:
    log = writer(rt, key)
    log.info("submitted by admin")
    log.warn("[main] slow start\ncaused by: disk")  # continuation line 3 follows line 2
    log.info("Task a is Running")
    log.error("Task a failed: boom\n  detail: constraint x")
    log.info("[SpringContextShutdownHook] closing")
    log.info("finished")
    return LiveLog(rt.redis, key)


def test_paging_collects_every_line_once_and_ends(rt: Runtime, key: str) -> None:
    live = _fill(rt, key)
    seen: list[str] = []
    end, is_end = 0, False
    while not is_end:
        page = read_page(live, from_line=end + 1, page_size=3, completed=True)
        seen += [text for text, _ in page.lines]
        assert page.end_line >= end
        end, is_end = page.end_line, page.is_end
    assert seen == [text for _, text in live.fetch(1, 100)]
    again = read_page(live, from_line=end + 1, page_size=3, completed=True)
    assert (again.end_line, again.is_end, again.logs()) == (end, True, {})


def test_filters_take_continuation_lines_with_their_stamped_line(rt: Runtime, key: str) -> None:
    live = _fill(rt, key)
    only = read_page(live, only=["failed", "slow"], page_size=100)
    assert [t.strip() for t, _ in only.lines][1:2] == ["caused by: disk"]
    assert len(only.lines) == 4
    assert only.logs()["error"].endswith("detail: constraint x")
    assert set(only.logs()) == {"all", "error", "warn"}
    ignored = read_page(live, ignore=["[main]", "[SpringContextShutdownHook]"], page_size=100)
    assert not any("main" in t or "caused" in t or "closing" in t for t, _ in ignored.lines)
    assert len(ignored.lines) == 5
    mid = read_page(live, from_line=3, page_size=1, only=["slow"])  # starts on a continuation
    assert [t for t, _ in mid.lines] == ["caused by: disk"]


def test_last_rows_wins_and_tells_where_to_follow_on(rt: Runtime, key: str) -> None:
    live = _fill(rt, key)
    page = read_page(live, last_rows=2, from_line=1, only=["nothing matches"], completed=False)
    assert [t.split(" ", 3)[3] for t, _ in page.lines] == [
        "[SpringContextShutdownHook] closing",
        "finished",
    ]
    assert page.end_line == 8 and not page.is_end
    writer(rt, key).info("one more")
    follow = read_page(live, from_line=page.end_line + 1, completed=True)
    assert [t.split(" ", 3)[3] for t, _ in follow.lines] == ["one more"]
    assert follow.is_end


def test_a_keyword_scan_stops_at_its_bound_and_reports_where(rt: Runtime, key: str) -> None:
    log = writer(rt, key)
    for i in range(1, 51):
        log.info("needle" if i == 45 else f"hay {i}")
    live = LiveLog(rt.redis, key)
    first = read_page(live, only=["needle"], scan_limit=20, chunk=7)
    assert (first.end_line, first.lines) == (20, [])
    second = read_page(live, from_line=21, only=["needle"], scan_limit=20, chunk=7)
    assert second.end_line == 40
    third = read_page(live, from_line=41, only=["needle"], scan_limit=20, completed=True)
    assert [t.endswith("needle") for t, _ in third.lines] == [True]
    assert third.end_line == 50 and third.is_end


def test_pages_cross_head_segments_and_expiry_covers_them(rt: Runtime, key: str) -> None:
    log = writer(rt, key, cap=100_000)
    for start in range(0, 25_003, 5000):
        log.append_lines([f"line {i}" for i in range(start + 1, min(start + 5000, 25_003) + 1)])
    live = LiveLog(rt.redis, key)
    assert live.fetch(9_998, 6) == [(n, f"line {n}") for n in range(9_998, 10_004)]
    assert live.last(2) == [(25_002, "line 25002"), (25_003, "line 25003")]
    keys = Keys.log_keys(key, 25_003)
    assert sum(1 for k in keys if rt.redis.exists(k)) == 3 + 3  # segments, counters, book
    rt.redis.delete(*keys)


def test_an_empty_continuation_line_is_not_taken_for_the_cut_marker(rt: Runtime, key: str) -> None:
    writer(rt, key).error("rollback failed: boom\n\nsee above\n")
    assert [text for _, text in LiveLog(rt.redis, key).fetch(1, 10)][1:] == ["", "see above", ""]


def test_the_cut_marker_is_stamped_with_the_last_dropped_stamped_line(
    rt: Runtime, key: str
) -> None:
    clock = iter(float(1_700_000_000 + i) for i in range(100))
    log = LogWriter(rt.redis, key, zone=UTC, head_cap=2, tail_cap=2, clock=lambda: next(clock))
    for i in range(1, 8):
        log.info(f"line {i}\ncontinued {i}")  # 14 lines: 1-2 head, 13-14 tail, 3-12 cut
    live = LiveLog(rt.redis, key)
    number, marker = live.fetch(3, 1)[0]
    assert number == 3
    assert marker.startswith("2023-11-14 22:13:25.000 WARN [log cap] lines 3-12 were cut")
    page = read_page(live, only=["log cap"])
    assert [t for t, _ in page.lines] == [marker]


def test_last_rows_end_line_is_the_last_line_it_returned(rt: Runtime, key: str) -> None:
    log = writer(rt, key)
    for i in range(5):
        log.info(f"line {i}")
    page = read_page(LiveLog(rt.redis, key), last_rows=2)
    assert page.end_line == 5 and len(page.lines) == 2


def test_a_closed_log_takes_no_more_lines(rt: Runtime, key: str) -> None:
    log = writer(rt, key)
    log.info("before")
    LiveLog(rt.redis, key).close()
    assert log.info("late") == 1
    assert LiveLog(rt.redis, key).fetch(1, 10)[0][1].endswith("before")
    assert LiveLog(rt.redis, key).last_line() == 1


@pytest.mark.parametrize(
    ("caps", "pad"),
    [
        ({"head_cap": 30, "tail_cap": 30}, 0),
        ({"head_bytes": MAX_LINE_BYTES, "tail_bytes": MAX_LINE_BYTES}, 1200),
    ],
    ids=["lines", "bytes"],
)
def test_the_archive_answers_like_the_live_log_across_a_cut(
    rt: Runtime, caps: dict[str, int], pad: int
) -> None:
    from exchangis.engine.archive import archive_logs, execution_owner
    from exchangis.services.log import ArchiveLog

    eid = str(uuid.uuid4())
    key = rt.keys.execution_log(eid)
    log = LogWriter(rt.redis, key, zone=UTC, **caps)
    for i in range(1, 101):
        text = f"line {i}" + " x" * (pad // 2 * (i % 3)) + ("\n  detail" if i % 5 else "")
        log.write("ERROR" if i % 7 == 0 else "INFO", text)
    live = LiveLog(rt.redis, key)
    kept = live.fetch(1, 1000)
    assert sum(" WARN [log cap] lines " in text for _, text in kept) == 1
    queries = [
        {},
        {"from_line": 25, "page_size": 10},
        {"last_rows": 40},
        {"last_rows": 3},
        {"only": ["ERROR"], "page_size": 100},
        {"ignore": ["detail"], "from_line": 31},
        {"from_line": 32, "page_size": 5},
    ]
    before = [read_page(live, completed=True, **q) for q in queries]
    assert archive_logs(rt, eid, []) == len(kept)  # head + marker + tail
    archived = ArchiveLog(rt, execution_owner(eid))
    after = [read_page(archived, completed=True, **q) for q in queries]
    assert [(p.end_line, p.is_end, p.logs()) for p in after] == [
        (p.end_line, p.is_end, p.logs()) for p in before
    ]
    assert archived.last_line() == live.last_line()
    rt.redis.delete(*Keys.log_keys(key, 30))


def _stored_bytes(rt: Runtime, key: str) -> int:
    """Return the bytes of every line the log's keys hold (head segments and tail), read back."""
    head = int(rt.redis.get(Keys.log_parts(key)[3]) or 0)
    lists = [k for k in Keys.log_keys(key, head) if rt.redis.type(k) == "list"]
    return sum(len(line.encode()) for k in lists for line in rt.redis.lrange(k, 0, -1))


def test_a_log_over_its_byte_cap_keeps_head_and_tail_within_it(rt: Runtime, key: str) -> None:
    rng = random.Random(7)
    half = MAX_LINE_BYTES + 5000
    log = LogWriter(
        rt.redis,
        key,
        zone=UTC,
        head_cap=10**6,
        tail_cap=10**6,
        head_bytes=half,
        tail_bytes=half,
        clock=lambda: 1_700_000_000.25,
    )
    live = LiveLog(rt.redis, key)
    written: list[str] = []
    while len(written) < 3000:
        size = rng.choice([0, 1, 40, 300, 2000, MAX_LINE_CHARS, 3 * MAX_LINE_CHARS])
        text = rng.choice(["a ", "é ", "😀 "]) * (size // 2) + f"#{len(written) + 1}"
        if rng.random() < 0.5:
            log.info(text)
            written += log.format("INFO", text)
        else:  # several lines in one call, a continuation among them
            lines = [
                log.format("WARN", text)[0],
                f"  detail {len(written) + 2}",
                "x " * (size // 2),
            ]
            log.append_lines(lines)
            written += [cut(line) for line in lines]  # a line too long is cut, as format does
        assert _stored_bytes(rt, key) <= 2 * half
        assert live.last_line() == len(written)
        assert live.last(1) == [(len(written), written[-1])]  # the last line is always kept

    lines = live.fetch(1, 10**6)
    numbers = [n for n, _ in lines]
    head_len = next(i for i, (_, text) in enumerate(lines) if " WARN [log cap] " in text)
    first_tail = numbers[head_len + 1]
    assert numbers == [*range(1, head_len + 2), *range(first_tail, len(written) + 1)]
    assert head_len >= 1 and lines[0] == (1, written[0])  # the first line is kept
    head_bytes = sum(len(text.encode()) for _, text in lines[:head_len])
    assert head_bytes <= half < head_bytes + len(written[head_len].encode())  # closed on bytes
    assert f"lines {head_len + 1}-{first_tail - 1} were cut" in lines[head_len][1]
    assert [text for _, text in lines[head_len + 1 :]] == written[first_tail - 1 :]
    tail_bytes = sum(len(text.encode()) for _, text in lines[head_len + 1 :])
    assert half - MAX_LINE_BYTES < tail_bytes <= half  # trimmed to its share, not below

    paged: list[str] = []
    end, is_end = 0, False
    while not is_end:  # paging reads every line once, the marker in its place
        page = read_page(live, from_line=end + 1, page_size=7, completed=True)
        paged += [text for text, _ in page.lines]
        end, is_end = page.end_line, page.is_end
    assert paged == [text for _, text in lines]
    assert [n for n, _ in live.fetch(head_len + 2, 3)] == [
        first_tail,
        first_tail + 1,
        first_tail + 2,
    ]
    assert live.last(3) == lines[-3:]


def test_a_log_begun_with_a_stamp_string_takes_byte_caps_and_keeps_its_marker(
    rt: Runtime, key: str
) -> None:
    parts = Keys.log_parts(key)
    before = ["2023-11-14 22:13:20.000 INFO one", "2023-11-14 22:13:21.000 INFO four"]
    rt.redis.rpush(f"{key}:h0", before[0])
    rt.redis.rpush(parts[1], before[1])
    rt.redis.set(parts[2], 4)
    rt.redis.set(parts[3], 1)
    rt.redis.set(parts[4], "2023-11-14 22:13:20.500", ex=600)  # as the earlier script left it
    live = LiveLog(rt.redis, key)
    assert live.fetch(2, 1)[0][1].startswith("2023-11-14 22:13:20.500 WARN [log cap] lines 2-3")
    log = LogWriter(rt.redis, key, zone=UTC, head_cap=1, tail_cap=3, head_bytes=1, tail_bytes=1)
    assert log.byte_caps == (MAX_LINE_BYTES, MAX_LINE_BYTES)  # raised so that any line fits
    assert log.append_lines(["five", "six"]) == 6
    assert [n for n, _ in live.fetch(1, 10)] == [1, 2, 4, 5, 6]
    assert live.fetch(2, 1)[0][1].startswith("2023-11-14 22:13:20.500 WARN [log cap] lines 2-3")
    assert rt.redis.ttl(parts[4]) > 0  # the live keys' time to live is kept
    assert log.append_lines(["seven"]) == 7
    assert [n for n, _ in live.fetch(1, 10)] == [1, 2, 5, 6, 7]
    assert live.fetch(2, 1)[0][1].startswith("2023-11-14 22:13:21.000 WARN [log cap] lines 2-4")


@pytest.mark.parametrize(
    ("max_bytes", "caps"),
    [(0, (0, 0)), (1, (MAX_LINE_BYTES, MAX_LINE_BYTES)), (10**6 + 1, (500_000, 500_001))],
)
def test_log_max_bytes_is_split_between_head_and_tail(
    rt: Runtime, max_bytes: int, caps: tuple[int, int]
) -> None:
    runtime = Runtime(rt.settings.with_overrides({"log_max_bytes": max_bytes, "log_max_lines": 9}))
    writer = runtime.job_log(str(uuid.uuid4()))
    assert (writer.caps, writer.byte_caps) == ((4, 5), caps)
    assert Settings().log_max_bytes == 64 * 2**20
