"""The user commands' arguments (argparse), added to the ``exchangis`` parser by :func:`register`.

Every user command takes ``--url`` and ``--token`` (else ``EXCHANGIS_URL`` / ``EXCHANGIS_TOKEN``,
else the config file: :mod:`exchangis.usercli.connection`), and every read ``--json``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from exchangis.client import ApiClient, ApiError
from exchangis.usercli import commands
from exchangis.usercli.connection import CONFIG_ENV, TOKEN_ENV, URL_ENV, UsageError, resolve
from exchangis.usercli.watch import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE

Command = Callable[[ApiClient, argparse.Namespace, commands.Screen], int]
SubParsers = Any
"""``argparse._SubParsersAction``, a private name."""

EPILOG = (
    f"Server: --url/--token, else {URL_ENV}/{TOKEN_ENV}, else the file {CONFIG_ENV} names "
    "(default ~/.config/exchangis/cli.toml) with url = ... and token = .... "
    "Exit codes: 0 success, 1 failed (or an API error), 2 usage, 3 partial success, "
    "130 interrupted."
)


def run_command(command: Command, args: argparse.Namespace) -> int:
    """Run a user command: connect, call, and turn refusals into messages and exit codes."""
    screen = commands.Screen()
    try:
        connection = resolve(args.url, args.token)
        api = ApiClient(connection.base, connection.token, timeout=args.timeout)
        return command(api, args, screen)
    except UsageError as exc:
        screen.say(f"exchangis: {exc}")
        return EXIT_USAGE
    except ApiError as exc:
        screen.say(f"exchangis: {exc}")
        return EXIT_FAILED
    except OSError as exc:  # a timeout or a connection cut mid-answer
        screen.say(f"exchangis: {exc}")
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def key_value(text: str) -> tuple[str, str]:
    """Parse ``k=v`` (an argparse type)."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r}: expected KEY=VALUE")
    return key, value


def _parents() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """Return the options every user command takes, and ``--json``."""
    server = argparse.ArgumentParser(add_help=False)
    group = server.add_argument_group("server")
    group.add_argument("--url", help=f"the server, e.g. http://127.0.0.1:8080 (else {URL_ENV})")
    group.add_argument("--token", help=f"a bearer token (else {TOKEN_ENV})")
    group.add_argument(
        "--timeout", type=float, default=120, help="seconds to wait for one answer (120)"
    )
    as_json = argparse.ArgumentParser(add_help=False)
    as_json.add_argument("--json", action="store_true", help="print the API's data as JSON")
    return server, as_json


def _paging(parser: argparse.ArgumentParser, size: int = 20) -> None:
    parser.add_argument("--page", type=int, default=1, help="page number (1)")
    parser.add_argument("--size", type=int, default=size, help=f"rows per page ({size})")


def register(sub: SubParsers) -> None:
    """Add ``run``, ``executions``, ``jobs``, ``datasources`` and ``schedules`` to ``sub``."""
    server, as_json = _parents()
    common = [server, as_json]

    def add(parent: SubParsers, name: str, command: Command, text: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = parent.add_parser(
            name, help=text, description=text, parents=common, epilog=EPILOG
        )
        parser.set_defaults(func=lambda args: run_command(command, args))
        return parser

    def group(name: str, text: str) -> SubParsers:
        parser = sub.add_parser(name, help=text, description=text)
        return parser.add_subparsers(dest="what", required=True)

    run = add(sub, "run", commands.cmd_run, "submit a job (id, or a job file to create first)")
    run.add_argument("job", metavar="JOB_ID|job.json", help="a job id, or a job file (- : stdin)")
    run.add_argument(
        "--follow", "-f", action="store_true", help="live bars per task and the job log"
    )
    run.add_argument(
        "--param",
        "-p",
        type=key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a run parameter (jobParams; repeatable)",
    )
    run.add_argument(
        "--partial",
        action="store_true",
        help="permit partial failures: the others go on, Partial_Success (exit 3)",
    )

    executions = group("executions", "executions: list, show, log, kill, pause, resume, restart")
    listing = add(executions, "list", commands.cmd_executions_list, "list executions")
    listing.add_argument("--job", help="job name (substring)")
    listing.add_argument("--status", help="statuses, comma-separated (e.g. Failed,Timeout)")
    listing.add_argument("--project", help="project name")
    _paging(listing)
    show = add(executions, "show", commands.cmd_executions_show, "an execution and its tasks")
    show.add_argument("eid", metavar="EXECUTION_ID")
    log = add(executions, "log", commands.cmd_executions_log, "an execution's (or task's) log")
    log.add_argument("eid", metavar="EXECUTION_ID")
    log.add_argument("--follow", "-f", action="store_true", help="until the execution is done")
    log.add_argument("--task", type=int, metavar="TASK_ID", help="a task's log instead")
    log.add_argument("--last", type=int, metavar="N", help="start with the last N lines")
    for action in ("kill", "pause", "resume", "restart"):
        text = {
            "kill": "kill an execution (Cancelled)",
            "pause": "pause a running execution",
            "resume": "resume a paused one, or re-run what did not succeed",
            "restart": "run every task of a completed execution again",
        }[action]
        add(executions, action, commands.control(action), text).add_argument(
            "eid", metavar="EXECUTION_ID"
        )

    jobs = group("jobs", "job definitions: list, show, create, delete")
    listing = add(jobs, "list", commands.cmd_jobs_list, "list jobs")
    listing.add_argument("--project", help="project name")
    listing.add_argument("--name", help="job name (substring)")
    _paging(listing)
    add(jobs, "show", commands.cmd_jobs_show, "a job and its sub-jobs").add_argument(
        "id", type=int, metavar="JOB_ID"
    )
    add(jobs, "create", commands.cmd_jobs_create, "create a job from a JSON file").add_argument(
        "file", metavar="job.json", help="the body of POST /job (- : stdin)"
    )
    add(jobs, "delete", commands.cmd_jobs_delete, "delete a job").add_argument(
        "id", type=int, metavar="JOB_ID"
    )

    sources = group("datasources", "data sources: list, create, test, tables")
    add(sources, "list", commands.cmd_datasources_list, "list data sources").add_argument(
        "--project", help="project name"
    )
    add(
        sources, "create", commands.cmd_datasources_create, "create one from a JSON file"
    ).add_argument("file", metavar="datasource.json", help="the body of POST /datasources")
    add(sources, "test", commands.cmd_datasources_test, "connect to one").add_argument(
        "id", type=int, metavar="DATASOURCE_ID"
    )
    tables = add(sources, "tables", commands.cmd_datasources_tables, "list a database's tables")
    tables.add_argument("id", type=int, metavar="DATASOURCE_ID")
    tables.add_argument("--db", help="database (default: the data source's own)")
    tables.add_argument("--name", help="table name (substring, any case)")
    _paging(tables, size=100)

    schedules = group("schedules", "plans: list, preview")
    listing = add(schedules, "list", commands.cmd_schedules_list, "list plans")
    listing.add_argument("--job", metavar="JOB_ID", help="the plans of one job")
    listing.add_argument("--name", help="job name (substring)")
    _paging(listing)
    preview = add(schedules, "preview", commands.cmd_schedules_preview, "next fire times")
    preview.add_argument("cron", help="Quartz (6-7 fields) or Unix (5 fields) expression")
    preview.add_argument("--tz", help="time zone (default: the server's)")
    preview.add_argument("--start", help="after this time (ISO 8601; default now)")
    preview.add_argument("--count", type=int, default=5, help="how many (5)")
