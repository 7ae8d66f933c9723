"""Helpers of the transfer benchmarks: HTTP calls, worker processes, RSS sampling, pipes, checks.

Nothing here imports worker code: the engine is driven through its HTTP API only, and the
worker runs as a separate process (``python -m exchangis.cli worker``), as in production.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from exchangis.client import ApiClient, ApiError
from exchangis.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
FINAL = frozenset({"Success", "Failed", "Partial_Success", "Cancelled", "Undefined", "Timeout"})
MIB = 2**20


class Api(ApiClient):
    """Calls the engine's HTTP API (``base`` ends with ``/api/rest_j/v1/exchangis``)."""

    def datasource(self, name: str, kind: str, params: Mapping[str, Any]) -> int:
        """Register a data source; return its id."""
        answer = self.post(
            "/datasources", {"name": name, "type": kind, "connectParams": dict(params)}
        )
        return int(answer["id"])

    def job(self, name: str, content: list[dict[str, Any]]) -> int:
        """Save a job; return its id."""
        return int(self.post("/job", {"jobName": name, "content": content})["id"])

    def failure(self, eid: str) -> str:
        """Return the ERROR lines of the failed tasks of an execution (or the job log's tail)."""
        lines: list[str] = []
        try:
            tasks = self.get(f"/job/execution/{eid}/tasklist")["tasks"]
            for task in tasks:
                if task["status"] == "Success":
                    continue
                log = self.get(
                    f"/task/execution/{task['taskId']}/log?jobExecutionId={eid}"
                    "&onlyKeywords=ERROR&pageSize=20"
                )
                text = log["logs"].get("all") or "\n".join(v for v in log["logs"].values() if v)
                lines.append(f"task {task['name']} {task['status']}: {text.strip()}")
                if len(lines) >= 3:
                    break
            if not lines:
                log = self.get(f"/job/execution/{eid}/log?lastRows=20")
                lines.append(log["logs"].get("all", ""))
        except ApiError as exc:
            lines.append(f"(could not read the logs: {exc})")
        return "\n".join(lines)


def member_rss(process: psutil.Process) -> list[int]:
    """Return the RSS (bytes) of ``process`` and of each of its descendants."""
    try:
        members = [process, *process.children(recursive=True)]
    except psutil.Error:
        return []
    sizes = []
    for member in members:
        try:
            sizes.append(member.memory_info().rss)
        except psutil.Error:
            continue
    return sizes


def tree_rss(process: psutil.Process) -> int:
    """Return the summed RSS (bytes) of ``process`` and all its descendants."""
    return sum(member_rss(process))


def tree_pss(process: psutil.Process) -> int:
    """Return the summed PSS (bytes) of ``process`` and its descendants: each page shared by
    forked processes counted once in all (0 where the system does not report PSS)."""
    try:
        members = [process, *process.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for member in members:
        try:
            total += getattr(member.memory_full_info(), "pss", 0)
        except psutil.Error:
            continue
    return total


class RssMonitor:
    """Samples the RSS of a process tree every ``interval`` seconds in a thread; keeps the peak
    of the tree's sum and the peak of its largest single process (the pool child that moves
    the data: forked processes share pages, so the sum counts shared memory several times)."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.process = psutil.Process(pid)
        self.interval = interval
        sizes = member_rss(self.process)
        self.before = sum(sizes)
        self.peak = self.before
        self.peak_process = max(sizes, default=0)
        self.peak_pss = tree_pss(self.process)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            sizes = member_rss(self.process)
            self.peak = max(self.peak, sum(sizes))
            self.peak_process = max(self.peak_process, max(sizes, default=0))
            self.peak_pss = max(self.peak_pss, tree_pss(self.process))
            self._stop.wait(self.interval)

    def __enter__(self) -> RssMonitor:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


# --- measurements ------------------------------------------------------------------------------


@dataclass
class Sample:
    """One timed run of one side."""

    seconds: float
    rss_peak: int = 0
    rss_before: int = 0
    error: str = ""
    checked: str = ""
    """``ok``, or why the sink does not match the source."""
    rss_process: int = 0
    """Peak RSS of the largest single process (the worker child moving the data)."""
    pss_tree: int = 0
    """Peak PSS of the whole process tree (shared pages counted once)."""


@dataclass
class Side:
    """All runs of one side (the baseline or an engine variant) of one benchmark."""

    label: str
    samples: list[Sample] = field(default_factory=list)

    def good(self) -> list[Sample]:
        """Return the runs that did not fail."""
        return [s for s in self.samples if not s.error]

    def median(self) -> float | None:
        """Return the median wall time of the good runs."""
        good = self.good()
        return statistics.median(s.seconds for s in good) if good else None

    def peak(self) -> int:
        """Return the highest RSS peak of the good runs."""
        return max((s.rss_peak for s in self.good()), default=0)

    def peak_process(self) -> int:
        """Return the highest single-process RSS peak of the good runs."""
        return max((s.rss_process for s in self.good()), default=0)

    def peak_pss(self) -> int:
        """Return the highest tree PSS peak of the good runs."""
        return max((s.pss_tree for s in self.good()), default=0)

    def before(self) -> int:
        """Return the lowest RSS seen right before a run."""
        return min((s.rss_before for s in self.good()), default=0)


def run_pipeline(command: str, timeout: float = 3600) -> Sample:
    """Run a shell pipeline (``pipefail``); return its wall time and peak RSS of its processes."""
    started = time.perf_counter()
    process = subprocess.Popen(
        ["bash", "-o", "pipefail", "-c", command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    with RssMonitor(process.pid) as monitor:
        out, err = process.communicate(timeout=timeout)
    seconds = time.perf_counter() - started
    error = ""
    if process.returncode != 0:
        error = (
            f"exit {process.returncode}: {(err or out).decode(errors='replace').strip()[-2000:]}"
        )
    return Sample(
        seconds,
        rss_peak=monitor.peak,
        error=error,
        rss_process=monitor.peak_process,
        pss_tree=monitor.peak_pss,
    )


def run_execution(
    api: Api, job_id: int, worker_pid: int, poll: float = 0.1, timeout: float = 3600
) -> Sample:
    """Submit an execution of ``job_id``, poll its status until final; time submit → final.

    An execution still running after ``timeout`` seconds is killed and reported as failed.
    """
    with RssMonitor(worker_pid) as monitor:
        started = time.perf_counter()
        eid = str(api.post(f"/job/{job_id}/execute", {})["jobExecutionId"])
        while True:
            status = api.get(f"/job/execution/{eid}/status")["status"]
            if status in FINAL:
                break
            if time.perf_counter() - started > timeout:
                api.post(f"/job/execution/{eid}/kill", {})
                status = f"still {status} after {timeout:g}s (killed)"
                break
            time.sleep(poll)
        seconds = time.perf_counter() - started
    error = "" if status == "Success" else f"execution {eid} {status}:\n{api.failure(eid)}"
    return Sample(
        seconds,
        rss_peak=monitor.peak,
        rss_before=monitor.before,
        error=error,
        rss_process=monitor.peak_process,
        pss_tree=monitor.peak_pss,
    )


# --- worker processes --------------------------------------------------------------------------


def settings_file(settings: Settings, path: Path) -> Path:
    """Write ``settings`` as the JSON file a worker reads through ``EXCHANGIS_CONFIG``."""
    data = {
        name: list(value) if isinstance(value, tuple) else value
        for name, value in settings.__dict__.items()
    }
    path.write_text(json.dumps(data))
    return path


class Process:
    """A child process that logs to a file and says `` ready.`` when it can take work."""

    def __init__(self, command: list[str], env: dict[str, str], cwd: Path, logfile: Path) -> None:
        self.command = command
        self.env = env
        self.cwd = cwd
        self.logfile = logfile
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """Return the pid of the started process."""
        assert self.process is not None
        return self.process.pid

    def start(self, timeout: float = 60) -> None:
        """Start the process and wait until its log says it is ready."""
        with self.logfile.open("ab") as out:
            self.process = subprocess.Popen(
                self.command, cwd=self.cwd, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.command} exited:\n{self.tail()}")
            if " ready." in self.logfile.read_text(errors="replace"):
                return
            time.sleep(0.1)
        raise RuntimeError(f"{self.command} not ready in {timeout:g}s:\n{self.tail()}")

    def tail(self, chars: int = 3000) -> str:
        """Return the end of the process's log."""
        return self.logfile.read_text(errors="replace")[-chars:]

    def stop(self) -> None:
        """Stop the process (SIGTERM: warm shutdown; SIGKILL of the tree after 30 s)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            try:
                children = psutil.Process(self.process.pid).children(recursive=True)
            except psutil.Error:
                children = []
            self.process.kill()
            for child in children:
                try:
                    child.kill()
                except psutil.Error:
                    continue
            self.process.wait()


def clean_env() -> dict[str, str]:
    """Return this process's environment without EXCHANGIS_* variables."""
    return {k: v for k, v in os.environ.items() if not k.startswith("EXCHANGIS_")}


def exchangis_worker(settings: Settings, workdir: Path) -> Process:
    """Return (not started) ``exchangis worker`` with ``settings`` (its supervisor is the pid)."""
    env = clean_env()
    env["EXCHANGIS_CONFIG"] = str(settings_file(settings, workdir / "settings.json"))
    return Process(
        [sys.executable, "-m", "exchangis.cli", "worker"], env, ROOT, workdir / "worker.log"
    )


def noop_worker(broker: str, backend: str, queue: str, concurrency: int, workdir: Path) -> Process:
    """Return (not started) a Celery worker of ``noop_celery.app`` on ``queue``."""
    env = clean_env()
    env.update(BENCH_BROKER_URL=broker, BENCH_BACKEND_URL=backend, BENCH_QUEUE=queue)
    return Process(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "noop_celery",
            "worker",
            "--loglevel=INFO",
            "--pool=prefork",
            f"--concurrency={concurrency}",
            f"--queues={queue}",
            "--without-gossip",
            "--without-mingle",
        ],
        env,
        BENCH,
        workdir / "noop-worker.log",
    )


@contextmanager
def running(process: Process) -> Iterator[Process]:
    """Start ``process``; stop it on the way out."""
    process.start()
    try:
        yield process
    finally:
        process.stop()


# --- report ------------------------------------------------------------------------------------


def mib(value: int) -> str:
    """Return bytes as whole MiB."""
    return f"{value / MIB:.0f}"


def rate(rows: int, seconds: float | None) -> str:
    """Return rows/s with thousands separators."""
    return f"{rows / seconds:,.0f}" if seconds else "-"


def print_run(run: int, label: str, sample: Sample, rows: int) -> None:
    """Print one timed run."""
    before = f" (before {mib(sample.rss_before)})" if sample.rss_before else ""
    outcome = f"FAIL: {sample.error}" if sample.error else sample.checked or "ok"
    print(
        f"  run {run} {label:28} {sample.seconds:8.2f} s {rate(rows, sample.seconds):>12} rows/s "
        f"peak RSS {mib(sample.rss_peak):>5} MiB{before}  {outcome}",
        flush=True,
    )
