"""Held log lines (``LogWriter.hold_seconds``): stored together, numbered, ordered, capped and
masked as if written one by one; stored on a timer, when the hold is full, and before a task's
status is final. Secrets a worker learns during an execution are masked at once."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from redis import Redis

from exchangis.engine.runner import TaskRunner
from exchangis.runtime import Runtime
from exchangis.services import datasource, execution, job
from exchangis.services.access import Caller
from exchangis.state.keys import Keys
from exchangis.state.logs import HOLD_LINES, LiveLog, LogWriter
from exchangis.state.machine import TaskStatus
from tests.helpers import sub_job

UTC = ZoneInfo("UTC")
ADMIN = Caller("t", admin=True)
MESSAGES = [
    ("INFO", "first"),
    ("WARN", "second s3cr3t! password=abc\nat frame 1\nat frame 2"),
    ("ERROR", "third"),
    ("INFO", "fourth\ncontinued"),
    ("INFO", "fifth s3cr3t!"),
]


@pytest.fixture
def keys(rt: Runtime) -> Iterator[Callable[[], str]]:
    """Return a maker of fresh log keys (deleted at the end)."""
    made: list[str] = []

    def make() -> str:
        made.append(f"{rt.keys.prefix}holdlog:{uuid.uuid4().hex[:8]}")
        return made[-1]

    yield make
    for name in made:
        rt.redis.delete(*Keys.log_keys(name, 100_000))


def writer(rt: Runtime, key: str, hold: float, cap: int = 1000, **kwargs: Any) -> LogWriter:
    return LogWriter(
        rt.redis,
        key,
        zone=UTC,
        secrets=kwargs.pop("secrets", ("s3cr3t!",)),
        head_cap=cap,
        tail_cap=cap,
        clock=lambda: 1_700_000_000.25,
        hold_seconds=hold,
        **kwargs,
    )


def stored(rt: Runtime, key: str) -> list[tuple[int, str]]:
    return LiveLog(rt.redis, key).fetch(1, 10_000)


def test_lines_held_and_stored_in_one_flush_read_as_lines_written_one_by_one(
    rt: Runtime, keys: Callable[[], str]
) -> None:
    one_by_one, held = keys(), keys()
    direct = writer(rt, one_by_one, hold=0)
    holding = writer(rt, held, hold=60)
    for level, message in MESSAGES:
        direct.write(level, message)
        assert holding.write(level, message) == 0  # held: nothing stored yet
    assert stored(rt, held) == []
    assert holding.flush() == 8
    assert stored(rt, held) == stored(rt, one_by_one)
    lines = [text for _, text in stored(rt, held)]
    assert [n for n, _ in stored(rt, held)] == list(range(1, 9))
    assert lines[1].startswith("2023-11-14 22:13:20.250 WARN second ******")
    assert "s3cr3t!" not in "".join(lines) and "abc" not in lines[1]
    assert lines[2:4] == ["at frame 1", "at frame 2"]
    holding.write("INFO", "sixth")  # numbering goes on after a flush
    assert holding.close() == 9
    assert holding.write("INFO", "after close") == 10  # a closed writer stores at once


def test_held_lines_keep_the_log_caps(rt: Runtime, keys: Callable[[], str]) -> None:
    one_by_one, held = keys(), keys()
    direct = writer(rt, one_by_one, hold=0, cap=3, head_bytes=1, tail_bytes=1)
    holding = writer(rt, held, hold=60, cap=3, head_bytes=1, tail_bytes=1)
    for i in range(40):
        direct.info(f"line {i} " + "x" * (i * 997))
        holding.info(f"line {i} " + "x" * (i * 997))
    holding.flush()
    assert stored(rt, held) == stored(rt, one_by_one)
    assert [n for n, _ in stored(rt, held)][:4] == [1, 2, 3, 4]


def test_held_lines_are_stored_after_the_hold_time(rt: Runtime, keys: Callable[[], str]) -> None:
    key = keys()
    log = writer(rt, key, hold=0.2)
    log.info("soon")
    assert stored(rt, key) == []
    deadline = time.monotonic() + 5
    while not stored(rt, key) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [n for n, _ in stored(rt, key)] == [1]
    log.info("later")  # a new hold after the timer stored the first
    deadline = time.monotonic() + 5
    while len(stored(rt, key)) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [text.rsplit(" ", 1)[1] for _, text in stored(rt, key)] == ["soon", "later"]
    log.close()


def test_a_full_hold_is_stored_at_once(rt: Runtime, keys: Callable[[], str]) -> None:
    key = keys()
    log = writer(rt, key, hold=60)
    for i in range(HOLD_LINES - 1):
        log.info(f"line {i}")
    assert stored(rt, key) == []
    assert log.info("the last one") == HOLD_LINES
    assert len(stored(rt, key)) == HOLD_LINES


def test_a_secret_learnt_after_the_writer_was_made_is_masked(
    rt: Runtime, keys: Callable[[], str]
) -> None:
    known: list[str] = ["old-password"]
    key = keys()
    log = writer(rt, key, hold=60, secrets=lambda: tuple(known))
    known.append("new-password")
    log.error("login failed: old-password, new-password")
    log.close()
    assert stored(rt, key)[0][1].endswith("login failed: ******, ******")


# --- the runner and the runtime --------------------------------------------------------------


@pytest.fixture
def quiet(rt: Runtime) -> Iterator[Runtime]:
    """A runtime whose tasks go to a queue no worker consumes: the test runs them itself."""
    queue = f"unconsumed-{uuid.uuid4().hex[:8]}"
    runtime = Runtime(rt.settings.with_overrides({"task_queue": queue}))
    yield runtime
    Redis.from_url(runtime.settings.broker()).delete(queue)
    runtime.close()


def _datasource(rt: Runtime, kind: str, params: dict[str, Any]) -> int:
    return int(
        datasource.create_datasource(
            rt,
            ADMIN,
            {
                "name": f"{kind.lower()}-{uuid.uuid4().hex[:8]}",
                "type": kind,
                "description": "",
                "project_name": "default",
                "connect_params": params,
            },
        )["id"]
    )


def _submit(rt: Runtime, content: list[dict[str, Any]]) -> tuple[str, list[int]]:
    from exchangis.schemas.job import JobCreateSchema

    loaded = JobCreateSchema().load({"jobName": "held", "content": content})
    job_id = job.create_job(rt, ADMIN, loaded)["id"]
    eid = execution.submit_execution(rt, job_id, ADMIN, {})
    return eid, rt.store.task_ids(eid)


class Snapshots(threading.Thread):
    """Reads a task's status and its log's last line in one transaction, again and again."""

    def __init__(self, rt: Runtime, tid: int) -> None:
        super().__init__(daemon=True)
        self.rt = rt
        self.tid = tid
        self.seen: list[tuple[str, int]] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        """Take snapshots until stopped."""
        counter = Keys.log_parts(self.rt.keys.task_log(self.tid))[2]
        while not self.stopped.is_set():
            pipe = self.rt.redis.pipeline(transaction=True)
            pipe.hget(self.rt.keys.task(self.tid), "status")
            pipe.get(counter)
            status, last = pipe.execute()
            self.seen.append((str(status), int(last or 0)))


def test_a_task_log_is_complete_when_the_task_status_is_final(
    quiet: Runtime, tmp_path: Path
) -> None:
    mem = _datasource(quiet, "MEMORY", {})
    lite = _datasource(quiet, "SQLITE", {"path": str(tmp_path / "out.db")})
    eid, tids = _submit(
        quiet,
        [
            sub_job(f"p{i}", ("MEMORY", mem, "gen"), ("SQLITE", lite, f"out{i}"), {"rows": 5})
            for i in range(6)
        ],
    )
    for tid in tids:
        watcher = Snapshots(quiet, tid)
        watcher.start()
        try:
            assert TaskRunner(quiet, tid).run() is TaskStatus.SUCCESS
        finally:
            watcher.stopped.set()
            watcher.join()
        total = LiveLog(quiet.redis, quiet.keys.task_log(tid)).last_line()
        lines = [text for _, text in LiveLog(quiet.redis, quiet.keys.task_log(tid)).fetch(1, 100)]
        assert "succeeded" in lines[-1]
        final = [last for status, last in watcher.seen if status == TaskStatus.SUCCESS]
        assert all(last == total for last in final), "a final status was seen before its log"
    assert quiet.store.execution(eid)["status"] == "Success"  # type: ignore[index]


def test_the_secrets_of_an_execution_mask_a_changed_password(
    quiet: Runtime, tmp_path: Path
) -> None:
    first, second, third = (f"pw-{n}-{uuid.uuid4().hex[:6]}" for n in ("a", "b", "c"))
    params = {"host": "127.0.0.1", "username": "u", "database": "d"}
    pg = _datasource(quiet, "POSTGRESQL", {**params, "password": first})
    lite = _datasource(quiet, "SQLITE", {"path": str(tmp_path / "never.db")})
    eid, (tid,) = _submit(quiet, [sub_job("one", ("POSTGRESQL", pg, "t"), ("SQLITE", lite, "t"))])
    worker = Runtime(quiet.settings)
    try:
        log = worker.task_log(tid, eid)
        assert log.mask(first) == "******"

        # the data source changes while the execution runs; this worker learns it when a task
        # connects (it decrypts the new password): its writers mask the new one and the old one
        change = {"connect_params": {**params, "password": second}}
        datasource.update_datasource(quiet, ADMIN, pg, change)
        from exchangis.models import DataSource

        with worker.sessions() as session:
            row = session.get(DataSource, pg)
            assert row is not None
            worker.connect_params(row)
        assert log.mask(f"{first} {second}") == "****** ******"
        assert worker.task_log(tid, eid).mask(f"{first} {second}") == "****** ******"

        # changed again where this worker does not connect: a writer made after the secrets'
        # short life reads them again (keeping the earlier ones)
        change = {"connect_params": {**params, "password": third}}
        datasource.update_datasource(quiet, ADMIN, pg, change)
        time.sleep(worker.secrets_seconds + 0.1)
        fresh = worker.job_log(eid)
        assert fresh.mask(f"{first} {second} {third}") == "****** ****** ******"
    finally:
        worker.close()
