"""Line-addressed logs on a real Redis: writing, the size cap, and the log query rules."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import pytest

from exchangis.runtime import Runtime
from exchangis.state.keys import Keys
from exchangis.state.logs import MAX_LINE_CHARS, LiveLog, LogWriter, read_page

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
    assert lines[3].endswith("...[line cut: 40 more chars]")  # the stamp counts too
    assert len(lines[3]) < MAX_LINE_CHARS + 50


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
    assert sum(1 for k in keys if rt.redis.exists(k)) == 3 + 2  # three segments, two counters
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


def test_the_archive_answers_like_the_live_log_across_a_cut(rt: Runtime) -> None:
    from exchangis.engine.archive import archive_logs, execution_owner
    from exchangis.services.log import ArchiveLog

    eid = str(uuid.uuid4())
    key = rt.keys.execution_log(eid)
    log = LogWriter(rt.redis, key, zone=UTC, head_cap=30, tail_cap=30)
    for i in range(1, 101):
        log.write("ERROR" if i % 7 == 0 else "INFO", f"line {i}" + ("\n  detail" if i % 5 else ""))
    live = LiveLog(rt.redis, key)
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
    assert archive_logs(rt, eid, []) == 61  # 30 head + marker + 30 tail
    archived = ArchiveLog(rt, execution_owner(eid))
    after = [read_page(archived, completed=True, **q) for q in queries]
    assert [(p.end_line, p.is_end, p.logs()) for p in after] == [
        (p.end_line, p.is_end, p.logs()) for p in before
    ]
    assert archived.last_line() == live.last_line()
    rt.redis.delete(*Keys.log_keys(key, 30))
