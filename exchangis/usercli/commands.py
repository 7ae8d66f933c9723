"""The user commands: each takes the parsed arguments and an API client and returns its exit code.

Reads print a rich table on the terminal, or with ``--json`` the API's ``data`` as JSON and
nothing else on standard output. Messages for people go to standard error.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from exchangis.client import ApiClient, ApiError
from exchangis.usercli.connection import UsageError
from exchangis.usercli.watch import (
    EXIT_FAILED,
    EXIT_SUCCESS,
    POLL_SECONDS,
    ExecutionWatch,
    LogTail,
    exit_code,
    offer_kill,
    styled_line,
)


class Screen:
    """Where a command writes: ``out`` (standard output) and ``err`` (standard error)."""

    def __init__(self) -> None:
        self.out = Console(highlight=False)
        self.err = Console(stderr=True, highlight=False)

    def json(self, data: Any) -> None:
        """Print ``data`` as JSON on standard output (one document)."""
        sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        sys.stdout.flush()

    def table(self, columns: list[str], rows: list[list[Any]], total: int | None = None) -> None:
        """Print rows as a table; say how many there are in all when it is more."""
        table = Table(*columns, box=None, header_style="bold", pad_edge=False)
        self._print(table, rows, total)

    def facts(self, rows: list[list[Any]]) -> None:
        """Print name-value pairs, a pair a line."""
        self._print(Table.grid(padding=(0, 2)), rows, None)

    def _print(self, table: Table, rows: list[list[Any]], total: int | None) -> None:
        if not table.columns:
            table.add_column(style="bold")
            table.add_column()
        for row in rows:
            table.add_row(*(Text("" if value is None else str(value)) for value in row))
        self.out.print(table)
        if total is not None and total > len(rows):
            self.err.print(f"{len(rows)} of {total} shown (--size, --page for more)")

    def say(self, message: str) -> None:
        """Tell the person at the terminal (standard error, no markup)."""
        self.err.print(message, markup=False)


def read_json(name: str) -> Any:
    """Return the JSON document in file ``name`` (``-``: standard input).

    Raises:
        UsageError: the file is missing or not JSON.
    """
    try:
        text = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
        return json.loads(text)
    except OSError as exc:
        raise UsageError(f"cannot read {name}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise UsageError(f"{name} is not JSON: {exc}") from None


def percent(progress: Any) -> str:
    """Return a progress fraction as a percentage."""
    return f"{float(progress or 0) * 100:.1f}%"


# ---- run -------------------------------------------------------------------------------------


def job_of(api: ApiClient, screen: Screen, given: str) -> int:
    """Return the job id ``given`` names, or create the job in file ``given`` and return its id."""
    if given.isdigit():
        return int(given)
    if given != "-" and not Path(given).is_file():
        raise UsageError(f"{given}: neither a job id nor a job file")
    job_id = int(api.post("/job", read_json(given))["id"])
    screen.say(f"created job {job_id} from {given}")
    return job_id


def cmd_run(api: ApiClient, args: argparse.Namespace, screen: Screen) -> int:
    """Submit a job (created from a file first when given one); ``--follow`` watches it."""
    job_id = job_of(api, screen, args.job)
    body = {"permitPartialFailures": args.partial, "jobParams": dict(args.param)}
    answer = api.post(f"/job/{job_id}/execute", body)
    eid = str(answer["jobExecutionId"])
    if not args.follow:
        if args.json:
            screen.json(answer)
        else:
            print(eid)
        return EXIT_SUCCESS
    try:
        if args.json:
            state = wait_done(api, eid)
            screen.json(state)
            return exit_code(str(state["status"]))
        screen.say(f"execution {eid} of job {job_id} (Ctrl-C: stop following or kill it)")
        status = ExecutionWatch(api, eid, screen.out).run()
        screen.out.print(f"execution {eid}: {status}", markup=False)
        return exit_code(status)
    except KeyboardInterrupt:
        return offer_kill(api, eid, screen.err)
    except ApiError as exc:  # the server went away mid-watch: the execution did not
        raise ApiError(
            f"{exc}; stopped following execution {eid}, which may still run"
            f" (exchangis executions show {eid})"
        ) from None


def wait_done(api: ApiClient, eid: str) -> dict[str, Any]:
    """Poll E2 until the execution and every task are completed; return its ``data``."""
    while True:
        state: dict[str, Any] = api.get(f"/job/execution/{eid}/status")
        if state["allTaskStatus"]:
            return state
        time.sleep(POLL_SECONDS)


# ---- executions ------------------------------------------------------------------------------


def cmd_executions_list(api: ApiClient, args: argparse.Namespace, screen: Screen) -> int:
    """List executions, newest first (E7)."""
    query = {
        "jobName": args.job,
        "statuses": args.status,
        "projectName": args.project,
        "current": args.page,
        "size": args.size,
    }
    data = api.get("/job/listJobs", query)
    if args.json:
        screen.json(data)
        return EXIT_SUCCESS
    rows = [
        [
            e["jobExecutionId"],
            f"{e['name']} ({e['jobId']})",
            e["status"],
            percent(e["progress"]),
            e["launchTime"] or e["createTime"],
            f"{int(e['duration'] or 0) / 1000:.1f}s",
            e["flow"],
            e["executeUser"],
        ]
        for e in data["jobList"]
    ]
    columns = ["execution", "job", "status", "progress", "launched", "took", "rows/s", "user"]
    screen.table(columns, rows, data["total"])
    return EXIT_SUCCESS


def cmd_executions_show(api: ApiClient, args: argparse.Namespace, screen: Screen) -> int:
    """Show one execution (its history row, E7) and its tasks (E9)."""
    found = api.get("/job/listJobs", {"jobExecutionId": args.eid, "size": 1})["jobList"]
    tasks = api.get(f"/job/{args.eid}/allTaskStatus")["allStatus"]  # a 404 for an unknown id
    if args.json:
        screen.json({"execution": found[0] if found else None, "tasks": tasks})
        return EXIT_SUCCESS
    if found:
        row = found[0]
        keys = ["jobExecutionId", "jobId", "name", "projectName", "status", "progress"]
        keys += ["createTime", "launchTime", "lastUpdateTime", "duration", "flow"]
        keys += ["executeNode", "executeUser", "triggerType"]
        facts = [[key, row.get(key)] for key in keys]
        facts[keys.index("progress")][1] = percent(row["progress"])
        facts[keys.index("duration")][1] = f"{int(row['duration'] or 0) / 1000:.1f}s"
        screen.facts(facts)
    screen.out.print()
    rows = [[t["taskId"], t["name"], t["status"], percent(t["progress"])] for t in tasks]
    screen.table(["task", "name", "status", "progress"], rows)
    return EXIT_SUCCESS


def cmd_executions_log(api: ApiClient, args: argparse.Namespace, screen: Screen) -> int:
    """Print an execution's log (or a task's); ``-f`` follows it until the execution is done."""
    if args.task is None:
        tail = LogTail(api, f"/job/execution/{args.eid}/log", last_rows=args.last)
    else:
        path = f"/task/execution/{args.task}/log"
        tail = LogTail(api, path, {"jobExecutionId": args.eid}, last_rows=args.last)
    try:
        while True:
            for page in tail.pages():
                if args.json:
                    sys.stdout.write(json.dumps(page, ensure_ascii=False) + "\n")
                elif page["logs"].get("all"):
                    for line in page["logs"]["all"].split("\n"):
                        screen.out.print(styled_line(line), soft_wrap=True)
                sys.stdout.flush()
            if tail.ended or not args.follow:
                return EXIT_SUCCESS
            time.sleep(POLL_SECONDS)
    except KeyboardInterrupt:
        return 130


def control(action: str) -> Any:
    """Return the command that asks for ``action`` on an execution (kill, pause, ...)."""

    def command(api: ApiClient, args: argparse.Namespace, screen: Screen) -> int:
        data = api.post(f"/job/execution/{args.eid}/{action}", {})
        if args.json:
            screen.json(data)
        else:
            screen.out.print(f"execution {args.eid}: {data['status']}", markup=False)
        return EXIT_SUCCESS

    command.__doc__ = f"{action.capitalize()} an execution."
    return command


# ---- jobs ------------------------------------------------------------------------------------


def cmd_jobs_list(api: ApiClient, args: argparse.Namespace, screen: Screen) -> int:
    """List jobs."""
    query = {
        "projectName": args.project,
        "jobName": args.name,
        "current": args.page,
        "size": args.size,
    }
    data = api.get("/job", query)
    if args.json:
        screen.json(data)
        return EXIT_SUCCESS
    rows = [
        [j["id"], j["jobName"], j["projectName"], len(j["content"]), j["createUser"]]
        for j in data["result"]
    ]
    screen.table(["id", "name", "project", "sub-jobs", "owner"], rows, data["total"])
    return EXIT_SUCCESS


def cmd_jobs_show(api: ApiClient, args: argparse.Namespace, screen: Screen) -> int:
    """Show a job: its facts and its sub-jobs."""
    job = api.get(f"/job/{args.id}")
    if args.json:
        screen.json(job)
        return EXIT_SUCCESS
    keys = ["id", "jobName", "projectName", "jobDesc", "jobType", "executeUser", "createUser"]
    facts = [[key, job.get(key)] for key in keys]
    facts.append(["jobParams", json.dumps(job.get("jobParams") or {}, ensure_ascii=False)])
    screen.facts(facts)
    screen.out.print()
    rows = []
    for sub in job["content"]:
        ends = sub["dataSources"]
        source, sink = ends["source"], ends["sink"]
        rows.append(
            [
                sub["subJobName"],
                f"{source['type']} {source['id']} {source.get('table', '')}",
                f"{sink['type']} {sink['id']} {sink.get('table', '')}",
            ]
        )
    screen.table(["sub-job", "source", "sink"], rows)
    return EXIT_SUCCESS


def cmd_jobs_create(api: ApiClient, args: argparse.Namespace, screen: Screen) -> int:
    """Create a job from a JSON file (the body of POST /job); print its id."""
    data = api.post("/job", read_json(args.file))
    if args.json:
        screen.json(data)
    else:
        print(data["id"])
    return EXIT_SUCCESS


def cmd_jobs_delete(api: ApiClient, args: argparse.Namespace, screen: Screen) -> int:
    """Delete a job."""
    data = api.delete(f"/job/{args.id}")
    if args.json:
        screen.json(data)
    else:
        screen.say(f"job {args.id} deleted")
    return EXIT_SUCCESS


# ---- data sources ----------------------------------------------------------------------------


def cmd_datasources_list(api: ApiClient, args: argparse.Namespace, screen: Screen) -> int:
    """List data sources (secrets masked by the server)."""
    data = api.get("/datasources", {"projectName": args.project})
    if args.json:
        screen.json(data)
        return EXIT_SUCCESS
    rows = [
        [d["id"], d["name"], d["type"], d["projectName"], d["description"]] for d in data["result"]
    ]
    screen.table(["id", "name", "type", "project", "description"], rows)
    return EXIT_SUCCESS


def cmd_datasources_create(api: ApiClient, args: argparse.Namespace, screen: Screen) -> int:
    """Create a data source from a JSON file (the body of POST /datasources); print its id."""
    data = api.post("/datasources", read_json(args.file))
    if args.json:
        screen.json(data)
    else:
        print(data["id"])
    return EXIT_SUCCESS


def cmd_datasources_test(api: ApiClient, args: argparse.Namespace, screen: Screen) -> int:
    """Connect to a data source (a worker does); exit 1 when it cannot."""
    data = api.post(f"/datasources/{args.id}/test", {})
    if args.json:
        screen.json(data)
    else:
        verdict = "ok" if data["ok"] else "failed"
        screen.out.print(f"{verdict} in {data['elapsedMs']} ms: {data['message']}", markup=False)
    return EXIT_SUCCESS if data["ok"] else EXIT_FAILED


def cmd_datasources_tables(api: ApiClient, args: argparse.Namespace, screen: Screen) -> int:
    """List the tables of a data source's database (a worker connects)."""
    query = {"db": args.db, "name": args.name, "current": args.page, "size": args.size}
    data = api.get(f"/datasources/{args.id}/tables", query)
    if args.json:
        screen.json(data)
        return EXIT_SUCCESS
    screen.table(["table"], [[name] for name in data["result"]], data["total"])
    return EXIT_SUCCESS


# ---- schedules -------------------------------------------------------------------------------


def cmd_schedules_list(api: ApiClient, args: argparse.Namespace, screen: Screen) -> int:
    """List plans, newest first."""
    query = {
        "entityKey": args.job,
        "q": args.name,
        "offset": (args.page - 1) * args.size,
        "limit": args.size,
    }
    data = api.get("/schedules", query)
    if args.json:
        screen.json(data)
        return EXIT_SUCCESS
    rows = []
    for plan in data["list"]:
        items = ", ".join(
            item.get("cronDesc") or item["triggerType"] for item in plan["planItems"] or []
        )
        rows.append(
            [
                plan["id"],
                f"{plan['title']} ({plan['entityKey']})",
                "yes" if plan["enabled"] else "no",
                items,
                plan["nextStartAt"],
                plan["jobStatus"],
            ]
        )
    columns = ["plan", "job", "enabled", "items", "next fire", "last run"]
    screen.table(columns, rows, data["totalHits"])
    return EXIT_SUCCESS


def cmd_schedules_preview(api: ApiClient, args: argparse.Namespace, screen: Screen) -> int:
    """Print the next fire times of a cron expression (as the scheduler would fire it)."""
    body: dict[str, Any] = {"cronDesc": args.cron, "count": args.count}
    if args.tz:
        body["timeZone"] = args.tz
    if args.start:
        body["startTime"] = args.start
    data = api.post("/schedules/preview", body)
    if args.json:
        screen.json(data)
    else:
        for fire in data["fireTimes"]:
            print(fire)
    return EXIT_SUCCESS
