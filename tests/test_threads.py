"""The threads a process keeps (``exchangis.threads``): timed calls on one thread, spare threads
reused for long jobs, and a forked child that makes its own."""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Callable

from exchangis.threads import IDLE_NAME, Spares, Timers


def wait_for(check: Callable[[], bool], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.01)
    return bool(check())


def test_timed_calls_run_in_order_of_their_time_on_one_thread() -> None:
    timers = Timers()
    seen: list[tuple[str, str]] = []
    name = lambda: threading.current_thread().name  # noqa: E731
    timers.call(0.3, lambda: seen.append(("late", name())))
    timers.call(0.05, lambda: seen.append(("early", name())))
    assert wait_for(lambda: len(seen) == 2)
    assert [what for what, _ in seen] == ["early", "late"]
    assert {thread for _, thread in seen} == {"exchangis-timers"}


def test_a_repeated_call_repeats_until_cancelled_and_a_failing_call_stops_nothing() -> None:
    timers = Timers()
    beats: list[float] = []
    failing = timers.call(0.01, lambda: 1 / 0, every=0.01)
    timer = timers.call(0.01, lambda: beats.append(time.monotonic()), every=0.05)
    assert wait_for(lambda: len(beats) >= 3)
    timer.cancel()
    failing.cancel()
    time.sleep(0.1)
    count = len(beats)
    time.sleep(0.2)
    assert len(beats) == count  # no call after the cancel
    gaps = [b - a for a, b in itertools.pairwise(beats)]
    assert min(gaps) >= 0.045


def test_a_cancelled_call_is_never_made() -> None:
    timers = Timers()
    made: list[int] = []
    timers.call(0.05, lambda: made.append(1)).cancel()
    timers.call(0.1, lambda: made.append(2))
    assert wait_for(lambda: made == [2])
    time.sleep(0.1)
    assert made == [2]


def test_spare_threads_are_reused_and_carry_the_job_name_while_it_runs() -> None:
    spares = Spares()
    release = threading.Event()
    names: list[str] = []
    idents: list[int] = []

    def job() -> None:
        names.append(threading.current_thread().name)
        idents.append(threading.get_ident())
        release.wait(5)

    first = spares.start(job, "exchangis-test-job")
    assert first.is_alive()
    assert any(t.name == "exchangis-test-job" for t in threading.enumerate())
    release.set()
    first.join(5)
    assert not first.is_alive()
    assert not any(t.name == "exchangis-test-job" for t in threading.enumerate())
    second = spares.start(job, "exchangis-test-job-2")
    second.join(5)
    assert names == ["exchangis-test-job", "exchangis-test-job-2"]
    assert idents[0] == idents[1]  # the same thread, not a new one
    assert any(t.name == IDLE_NAME and t.ident == idents[0] for t in threading.enumerate())


def test_two_jobs_at_once_run_on_two_threads_and_a_failing_job_ends() -> None:
    spares = Spares()
    both = threading.Barrier(2, timeout=5)
    met: list[int] = []  # each job passes the barrier only while the other one runs too
    jobs = [spares.start(lambda: met.append(both.wait()), f"exchangis-test-{n}") for n in range(2)]
    for job in jobs:
        job.join(5)
        assert not job.is_alive()
    assert sorted(met) == [0, 1]
    broken = spares.start(lambda: 1 / 0, "exchangis-test-broken")
    broken.join(5)
    assert not broken.is_alive()


def test_a_forked_child_makes_its_own_timer_thread() -> None:
    timers = Timers()
    done = threading.Event()
    timers.call(0, done.set)
    assert done.wait(5)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: the parent's timer thread did not come along
        try:
            fired = threading.Event()
            timers.call(0, fired.set)
            os.write(write, b"1" if fired.wait(5) else b"0")
        finally:
            os._exit(0)
    os.close(write)
    try:
        assert os.read(read, 1) == b"1"
    finally:
        os.close(read)
        os.waitpid(pid, 0)
