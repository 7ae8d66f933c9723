"""Watch an execution: one live bar per task, the job log as it grows, Ctrl-C that offers a kill.

The calls (docs/api.md): E2 ``/job/execution/{eid}/status`` (the execution's status and whether
it and every task are completed), E9 ``/job/{eid}/allTaskStatus`` (each task's status and
progress), T1 ``/task/execution/{taskId}/metrics`` (rows read, records/s), E5
``/job/execution/{eid}/log`` and T2 ``/task/execution/{taskId}/log`` (pages from ``fromLine``;
the next starts at ``endLine + 1``; ``isEnd`` once the execution is completed and the log read
to its end).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    Task,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from exchangis.client import ApiClient, ApiError
from exchangis.state.machine import EXECUTION_FINAL, TASK_FINAL, ExecutionStatus, TaskStatus

POLL_SECONDS = 0.5
LOG_PAGE = 1000
"""Lines per log page; a poll reads at most ``LOG_PAGES`` of them (a big backlog over polls)."""
LOG_PAGES = 20
LOG_GRACE_SECONDS = 15
"""How long after the execution completed the watch waits for the log's end (``isEnd``)."""
KILL_WAIT_SECONDS = 30

EXIT_SUCCESS = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_PARTIAL = 3
EXIT_INTERRUPTED = 130
"""128 + SIGINT, as a shell reports a command stopped by Ctrl-C."""

LEVEL_STYLES = {" ERROR ": "red", " WARN ": "yellow"}
STATUS_STYLES: dict[str, str] = {
    TaskStatus.SUCCESS: "green",
    TaskStatus.RUNNING: "cyan",
    TaskStatus.FAILED: "red",
    TaskStatus.TIMEOUT: "red",
    TaskStatus.UNDEFINED: "red",
    TaskStatus.CANCELLED: "yellow",
    TaskStatus.PAUSED: "yellow",
}


def exit_code(status: str) -> int:
    """Return the exit code of an execution that ended ``status``: 0 Success, 3
    Partial_Success, 1 anything else (Failed, Timeout, Undefined, Cancelled)."""
    if status == ExecutionStatus.SUCCESS:
        return EXIT_SUCCESS
    if status == ExecutionStatus.PARTIAL_SUCCESS:
        return EXIT_PARTIAL
    return EXIT_FAILED


def is_final(status: str) -> bool:
    """Return whether an execution status is one it never leaves."""
    return status in EXECUTION_FINAL


def styled_line(line: str) -> Text:
    """Return a log line as text (never markup), red for ERROR and yellow for WARN."""
    for level, style in LEVEL_STYLES.items():
        if level in line[:32]:
            return Text(line, style=style)
    return Text(line)


class EtaColumn(TimeRemainingColumn):
    """``ETA`` and the time left while a task runs; ``took`` and the time it ran (the worker's
    ``elapsedMs``) once it ended."""

    def render(self, task: Task) -> Text:
        """Render the estimate or the time taken."""
        took = task.fields.get("took")
        if took is not None:
            return Text(f"took {timedelta(seconds=int(took))}", style="progress.elapsed")
        return Text.assemble("ETA ", super().render(task))


@dataclass
class LogTail:
    """Reads a log page after page, like ``tail -f``: each page from ``endLine + 1``."""

    api: ApiClient
    path: str
    params: dict[str, Any] = field(default_factory=dict)
    next_line: int = 1
    ended: bool = False
    last_rows: int | None = None
    """Start with the last lines only (``lastRows``); later pages go on from there."""

    def page(self) -> dict[str, Any]:
        """Read the next page; return the API's ``data``."""
        if self.last_rows:
            query = {**self.params, "lastRows": self.last_rows}
            self.last_rows = None
        else:
            query = {**self.params, "fromLine": self.next_line, "pageSize": LOG_PAGE}
        data: dict[str, Any] = self.api.get(self.path, query)
        self.next_line = max(self.next_line, int(data["endLine"]) + 1)
        self.ended = bool(data["isEnd"])
        return data

    def pages(self) -> Iterator[dict[str, Any]]:
        """Yield the pages there are now (at most ``LOG_PAGES``), the first one always."""
        for _ in range(LOG_PAGES):
            before = self.next_line
            data = self.page()
            yield data
            if self.ended or self.next_line == before:
                return

    def lines(self) -> Iterator[str]:
        """Yield the lines written since the last call."""
        for data in self.pages():
            text = data["logs"].get("all")
            if text:
                yield from text.split("\n")


class ExecutionWatch:
    """Polls one execution and draws it: a rich progress bar per task, log lines above."""

    def __init__(self, api: ApiClient, eid: str, console: Console) -> None:
        self.api = api
        self.eid = eid
        self.console = console
        self.log = LogTail(api, f"/job/execution/{eid}/log")
        self.bars: dict[int, TaskID] = {}
        self.started: set[int] = set()
        self.done: set[int] = set()
        """Tasks whose final metrics are drawn (no more metrics calls for them)."""
        self.status = ""
        self.progress = Progress(
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[rows]:>13,} rows"),
            TextColumn("{task.fields[speed]:>9,.0f} rows/s"),
            EtaColumn(),
            TextColumn("{task.fields[status]}"),
            console=console,
            refresh_per_second=4,
        )

    def run(self) -> str:
        """Draw the execution until it and its log are complete; return its final status."""
        completed_at: float | None = None
        with self.progress:
            while True:
                for line in self.log.lines():
                    self.progress.console.print(styled_line(line))
                state = self.api.get(f"/job/execution/{self.eid}/status")
                self.status = str(state["status"])
                self.draw_tasks()
                if state["allTaskStatus"]:
                    completed_at = completed_at or time.monotonic()
                    if self.log.ended or time.monotonic() - completed_at > LOG_GRACE_SECONDS:
                        break
                time.sleep(POLL_SECONDS)
            for line in self.log.lines():  # lines that came with isEnd
                self.progress.console.print(styled_line(line))
        return self.status

    def draw_tasks(self) -> None:
        """Update each task's bar from E9 (status, progress) and T1 (rows, rows/s)."""
        answer = self.api.get(f"/job/{self.eid}/allTaskStatus")
        for task in answer["allStatus"]:
            tid = int(task["taskId"])
            status = str(task["status"])
            if tid not in self.bars:
                self.bars[tid] = self.progress.add_task(
                    str(task["name"]), total=1.0, rows=0, speed=0.0, status="", start=False
                )
            bar = self.bars[tid]
            final = status in TASK_FINAL
            style = STATUS_STYLES.get(status)
            fields: dict[str, Any] = {"status": f"[{style}]{status}[/]" if style else status}
            if (status == TaskStatus.RUNNING or final) and tid not in self.started:
                self.progress.start_task(bar)  # the estimate of time left counts from here
                self.started.add(tid)
            if tid not in self.done and (status == TaskStatus.RUNNING or final):
                metrics = self.metrics(tid)
                rows = int(metrics.get("readRecords") or 0)
                took = float(metrics.get("elapsedMs") or 0) / 1000
                flow = float((metrics.get("traffic") or {}).get("flow") or 0)
                fields.update(rows=rows, speed=flow)
                if final:  # its mean speed, and how long it ran
                    fields.update(speed=rows / took if took else flow, took=took)
                    self.done.add(tid)
            self.progress.update(bar, completed=float(task["progress"] or 0), **fields)

    def metrics(self, tid: int) -> dict[str, Any]:
        """Return a task's T1 metrics (empty when the call is refused: drawing goes on)."""
        try:
            answer = self.api.post(f"/task/execution/{tid}/metrics", {"jobExecutionId": self.eid})
        except ApiError:
            return {}
        metrics: dict[str, Any] = answer["task"]["metrics"]
        return metrics


def wait_final(api: ApiClient, eid: str, timeout: float) -> str:
    """Poll E2 until the execution is completed or ``timeout`` passes; return its status."""
    deadline = time.monotonic() + timeout
    while True:
        status = str(api.get(f"/job/execution/{eid}/status")["status"])
        if is_final(status) or time.monotonic() > deadline:
            return status
        time.sleep(POLL_SECONDS)


def offer_kill(api: ApiClient, eid: str, err: Console) -> int:
    """After Ctrl-C: on a terminal, ask whether to kill the execution (then wait until it is
    final, bounded); elsewhere leave it running. Return 130."""
    if not sys.stdin.isatty():
        err.print(f"stopped following; execution {eid} keeps running", markup=False)
        return EXIT_INTERRUPTED
    try:
        answer = err.input(f"kill execution {eid}? [y/N] ", markup=False)
    except (KeyboardInterrupt, EOFError):
        answer = ""
    if answer.strip().lower() not in ("y", "yes"):
        err.print(f"execution {eid} keeps running", markup=False)
        return EXIT_INTERRUPTED
    try:
        api.post(f"/job/execution/{eid}/kill", {})
    except ApiError as exc:  # completed meanwhile (409): say how it ended
        err.print(str(exc), markup=False)
    status = wait_final(api, eid, KILL_WAIT_SECONDS)
    err.print(f"execution {eid}: {status}", markup=False)
    return EXIT_INTERRUPTED
