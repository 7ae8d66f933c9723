"""The user CLI (``exchangis run|executions|jobs|datasources|schedules``, docs/cli.md) run as a
process against the API served by a process of its own and the session's real worker: exit
codes, ``--json`` output, where the URL and token come from, and errors as messages; and the
live view in a real terminal (tmux): bars, the log, and Ctrl-C that kills after a yes.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from exchangis.client import sub_job
from exchangis.embedded import free_port
from exchangis.settings import Settings
from tests import data
from tests.conftest import ROOT, api_process
from tests.helpers import API, datasource, ok, wait_for
from tests.services import mysql_params, postgres_params

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("worker")]


@pytest.fixture(scope="module")
def server(migrated: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The API as a process of its own (``exchangis api``) on the session's settings; its URL."""
    with api_process(migrated, tmp_path_factory.mktemp("cli-api")) as url:
        yield url


def cli_env(home: Path, **values: str) -> dict[str, str]:
    """The environment of a CLI process: none of ours but ``values``, a home of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXCHANGIS_")}
    env.pop("XDG_CONFIG_HOME", None)
    return {**env, "HOME": str(home), "COLUMNS": "200", **values}


class Cli:
    """Runs ``exchangis`` as a user would, signed in by EXCHANGIS_URL / EXCHANGIS_TOKEN."""

    def __init__(self, url: str, token: str, home: Path) -> None:
        self.url = url
        self.token = token
        self.home = home

    def __call__(
        self, *args: str, env: Mapping[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run one command; return it done (output as text)."""
        values = {"EXCHANGIS_URL": self.url, "EXCHANGIS_TOKEN": self.token}
        return subprocess.run(
            [sys.executable, "-m", "exchangis.cli", *args],
            cwd=ROOT,
            env=cli_env(self.home, **(values if env is None else env)),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def json(self, *args: str) -> Any:
        """Run a read with ``--json``; assert it succeeded; return what it printed, parsed."""
        done = self(*args, "--json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)


@pytest.fixture
def cli(server: str, admin_token: str, tmp_path: Path) -> Cli:
    home = tmp_path / "home"
    home.mkdir()
    return Cli(server, admin_token, home)


@pytest.fixture
def memory(client: FlaskClient, run_id: str) -> int:
    """A MEMORY data source (generated rows in, rows kept in the worker out)."""
    return datasource(client, f"cli-mem-{run_id}", "MEMORY", {})


def memory_job(
    name: str, memory: int, subs: Mapping[str, Mapping[str, Any]], settings: Any = None
) -> dict[str, Any]:
    """A job (POST /job's body) of MEMORY → MEMORY sub-jobs: ``subs`` maps a name to the
    source's options."""
    content = [
        sub_job(sub, ("MEMORY", memory, "gen"), ("MEMORY", memory, sub), sources, None, settings)
        for sub, sources in subs.items()
    ]
    return {"jobName": name, "content": content}


def job_file(tmp_path: Path, job: dict[str, Any]) -> str:
    path = tmp_path / f"{job['jobName']}.json"
    path.write_text(json.dumps(job))
    return str(path)


def test_run_a_job_file_follows_it_to_success_with_its_log_and_exits_0(
    cli: Cli, memory: int, tmp_path: Path, run_id: str
) -> None:
    job = memory_job(f"cli-ok-{run_id}", memory, {"copy": {"rows": 3000}})

    done = cli("run", job_file(tmp_path, job), "--follow")

    assert done.returncode == 0, done.stdout + done.stderr
    assert "created job " in done.stderr
    eid = done.stderr.split("execution ", 1)[1].split()[0]
    assert f"execution {eid}: Success" in done.stdout
    assert " INFO " in done.stdout and "finished Success" in done.stdout  # the job log
    assert "Traceback" not in done.stderr


def test_run_without_follow_prints_the_execution_id_and_json_the_answer(
    cli: Cli, client: FlaskClient, memory: int, tmp_path: Path, run_id: str
) -> None:
    job_id = str(
        cli.json(
            "jobs",
            "create",
            job_file(tmp_path, memory_job(f"cli-id-{run_id}", memory, {"copy": {"rows": 10}})),
        )["id"]
    )

    plain = cli("run", job_id)
    answer = cli.json("run", job_id)

    assert plain.returncode == 0, plain.stderr
    eid = plain.stdout.strip()
    assert ok(client, "GET", f"/job/execution/{eid}/status")["status"]
    assert set(answer) == {"jobExecutionId"}
    for execution in (eid, answer["jobExecutionId"]):
        wait_for(
            lambda e=execution: (
                cli.json("executions", "show", e)["execution"]["status"] == "Success"
            )
        )


def test_a_failing_job_exits_1_and_a_partial_success_3(
    cli: Cli, memory: int, tmp_path: Path, run_id: str
) -> None:
    failing = {"fine": {"rows": 100}, "fails": {"rows": 1000, "failAtRow": 500}}
    path = job_file(tmp_path, memory_job(f"cli-fail-{run_id}", memory, failing))
    job_id = str(cli.json("jobs", "create", path)["id"])

    failed = cli("run", job_id, "--follow", "--json")
    partial = cli("run", job_id, "--follow", "--partial")

    assert failed.returncode == 1, failed.stderr
    assert json.loads(failed.stdout)["status"] == "Failed"
    assert partial.returncode == 3, partial.stdout + partial.stderr
    assert "Partial_Success" in partial.stdout
    assert "injected failure at row 500" in partial.stdout  # the job log says why


def test_params_are_the_runs_job_params(
    cli: Cli, client: FlaskClient, memory: int, tmp_path: Path, run_id: str
) -> None:
    root = tmp_path / "files"
    root.mkdir()
    files = datasource(client, f"cli-files-{run_id}", "FILE", {"root": str(root)})
    content = [
        sub_job(
            "out", ("MEMORY", memory, "gen"), ("FILE", files, "out_${region}.jsonl"), {"rows": 5}
        )
    ]
    path = job_file(tmp_path, {"jobName": f"cli-param-{run_id}", "content": content})

    done = cli("run", path, "--follow", "--param", "region=eu", "-p", "unused=1")

    assert done.returncode == 0, done.stdout + done.stderr
    assert len((root / "out_eu.jsonl").read_text().splitlines()) == 5


def test_executions_commands_pause_resume_kill_restart_and_read(
    cli: Cli, client: FlaskClient, memory: int, tmp_path: Path, run_id: str
) -> None:
    name = f"cli-slow-{run_id}"
    slow = {"slow": {"rows": 200_000, "batchSize": 100}}
    job = memory_job(name, memory, slow, {"setting.speed.record": 500})
    eid = cli("run", job_file(tmp_path, job)).stdout.strip()

    def status() -> str:
        return str(ok(client, "GET", f"/job/execution/{eid}/status")["status"])

    wait_for(lambda: status() == "Running")
    assert cli("executions", "pause", eid).returncode == 0
    wait_for(lambda: status() == "Paused")
    resumed = cli("executions", "resume", eid, "--json")
    assert resumed.returncode == 0 and json.loads(resumed.stdout)["jobExecutionId"] == eid
    wait_for(lambda: status() == "Running")
    killed = cli("executions", "kill", eid)
    assert killed.returncode == 0 and f"execution {eid}: Cancelled" in killed.stdout
    follow = cli("executions", "log", eid, "-f", timeout=60)  # ends once the log is complete
    assert follow.returncode == 0 and "Cancelled" in follow.stdout

    listed = cli.json("executions", "list", "--job", name)
    shown = cli.json("executions", "show", eid)
    pages = [
        json.loads(line) for line in cli("executions", "log", eid, "--json").stdout.splitlines()
    ]
    task_id = shown["tasks"][0]["taskId"]
    task_log = cli("executions", "log", eid, "--task", str(task_id), "--last", "5")

    assert [e["jobExecutionId"] for e in listed["jobList"]] == [eid]
    assert shown["execution"]["status"] == "Cancelled" and shown["tasks"][0]["name"] == "slow"
    text = "".join(p["logs"].get("all", "") for p in pages)
    assert pages[-1]["isEnd"] is True and "finished Cancelled" in text
    assert task_log.returncode == 0 and 0 < len(task_log.stdout.splitlines()) <= 5
    table = cli("executions", "list", "--job", name)
    assert eid in table.stdout and "Cancelled" in table.stdout

    restarted = cli("executions", "restart", eid)
    assert restarted.returncode == 0, restarted.stderr
    assert cli("executions", "kill", eid).returncode == 0
    again = cli("executions", "kill", eid)  # completed: a 409, said on stderr
    assert again.returncode == 1 and "Traceback" not in again.stderr
    assert again.stderr.startswith("exchangis: ") and again.stdout == ""


def test_jobs_commands(cli: Cli, memory: int, tmp_path: Path, run_id: str) -> None:
    name = f"cli-jobs-{run_id}"
    path = job_file(tmp_path, memory_job(name, memory, {"a": {"rows": 1}, "b": {"rows": 2}}))

    created = cli("jobs", "create", path)
    job_id = created.stdout.strip()
    listed = cli.json("jobs", "list", "--name", name)
    shown = cli.json("jobs", "show", job_id)
    table = cli("jobs", "show", job_id)
    deleted = cli("jobs", "delete", job_id)
    gone = cli("jobs", "show", job_id)

    assert created.returncode == 0 and job_id.isdigit()
    assert [j["id"] for j in listed["result"]] == [int(job_id)] and listed["total"] == 1
    assert [s["subJobName"] for s in shown["content"]] == ["a", "b"]
    assert name in table.stdout and "MEMORY" in table.stdout
    assert deleted.returncode == 0
    assert gone.returncode == 1 and "Traceback" not in gone.stderr and gone.stdout == ""


def test_datasources_commands(cli: Cli, tmp_path: Path, run_id: str) -> None:
    database = tmp_path / "lite.db"
    with sqlite3.connect(database) as conn:
        conn.execute("CREATE TABLE orders (id INTEGER)")
    spec = {
        "name": f"cli-lite-{run_id}",
        "type": "SQLITE",
        "connectParams": {"path": str(database)},
    }
    spec_file = tmp_path / "ds.json"
    spec_file.write_text(json.dumps(spec))

    ds_id = cli("datasources", "create", str(spec_file)).stdout.strip()
    listed = cli.json("datasources", "list")
    tested = cli("datasources", "test", ds_id)
    tables = cli.json("datasources", "tables", ds_id)
    table = cli("datasources", "tables", ds_id)

    assert ds_id.isdigit()
    assert spec["name"] in [d["name"] for d in listed["result"]]
    assert tested.returncode == 0 and tested.stdout.startswith("ok in ")
    assert tables == {"result": ["orders"], "total": 1}
    assert "orders" in table.stdout
    gone = tmp_path / "gone"
    gone.mkdir()
    spec = {
        "name": f"cli-gone-{run_id}",
        "type": "SQLITE",
        "connectParams": {"path": str(gone / "x.db")},
    }
    spec_file.write_text(json.dumps(spec))
    gone_id = cli("datasources", "create", str(spec_file)).stdout.strip()
    gone.rmdir()
    broken = cli("datasources", "test", gone_id, "--json")
    assert broken.returncode == 1 and json.loads(broken.stdout)["ok"] is False


def test_schedules_commands(
    cli: Cli, client: FlaskClient, memory: int, tmp_path: Path, run_id: str
) -> None:
    job_id = cli.json(
        "jobs",
        "create",
        job_file(tmp_path, memory_job(f"cli-plan-{run_id}", memory, {"copy": {"rows": 1}})),
    )["id"]
    item = {"triggerType": "CRON_JOB", "cronDesc": "0 30 2 * * ?", "timeZone": "UTC"}
    plan = ok(
        client,
        "POST",
        "/schedules",
        {"entityGroup": "DB_BATCH_SYNC", "entityKey": str(job_id), "planItems": [item]},
        expect=201,
    )

    listed = cli.json("schedules", "list", "--job", str(job_id))
    table = cli("schedules", "list", "--job", str(job_id))
    preview = cli.json(
        "schedules",
        "preview",
        "0 30 2 * * ?",
        "--tz",
        "Europe/Berlin",
        "--start",
        "2026-03-28T12:00:00",
        "--count",
        "2",
    )
    plain = cli("schedules", "preview", "0 30 2 * * ?", "--tz", "UTC", "--count", "3")
    bad = cli("schedules", "preview", "0 61 * * * ?")

    assert [p["id"] for p in listed["list"]] == [plan["id"]]
    assert "0 30 2 * * ?" in table.stdout
    assert preview == {"fireTimes": ["2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"]}
    assert len(plain.stdout.splitlines()) == 3
    assert bad.returncode == 1 and "cronDesc" in bad.stderr


def test_the_url_and_token_come_from_flags_then_the_environment_then_the_file(
    cli: Cli, tmp_path: Path
) -> None:
    good, wrong = cli.token, "not-a-token"
    config = tmp_path / "cli.toml"
    config.write_text(f'url = "{cli.url}"\ntoken = "{good}"\n')
    named = {"EXCHANGIS_CLI_CONFIG": str(config)}
    default = cli.home / ".config" / "exchangis" / "cli.toml"
    default.parent.mkdir(parents=True)
    default.write_text(config.read_text())

    from_file = cli("jobs", "list", env=named)
    from_default_file = cli("jobs", "list", env={})
    env_beats_file = cli("jobs", "list", env={**named, "EXCHANGIS_TOKEN": wrong})
    flag_beats_env = cli("jobs", "list", "--token", good, env={**named, "EXCHANGIS_TOKEN": wrong})
    flag_url = cli("jobs", "list", "--url", f"{cli.url}{API}/", env={"EXCHANGIS_TOKEN": good})
    wrong_flag = cli("jobs", "list", "--token", wrong)

    assert from_file.returncode == 0, from_file.stderr
    assert from_default_file.returncode == 0, from_default_file.stderr
    assert env_beats_file.returncode == 1 and "exchangis: " in env_beats_file.stderr
    assert flag_beats_env.returncode == 0, flag_beats_env.stderr
    assert flag_url.returncode == 0, flag_url.stderr
    assert wrong_flag.returncode == 1 and "Traceback" not in wrong_flag.stderr


def test_a_missing_url_or_token_is_a_usage_error_naming_what_to_set(cli: Cli) -> None:
    no_token = cli("jobs", "list", env={"EXCHANGIS_URL": cli.url})
    no_url = cli("executions", "list", env={"EXCHANGIS_TOKEN": cli.token})
    no_file = cli("jobs", "list", env={"EXCHANGIS_CLI_CONFIG": str(cli.home / "none.toml")})
    bad_param = cli("run", "1", "--param", "novalue")
    no_job = cli("run", "no-such-file.json")
    down = cli(
        "jobs",
        "list",
        env={"EXCHANGIS_URL": f"http://127.0.0.1:{free_port()}", "EXCHANGIS_TOKEN": "x"},
    )

    assert no_token.returncode == 2 and "EXCHANGIS_TOKEN" in no_token.stderr
    assert "--token" in no_token.stderr and "cli.toml" in no_token.stderr
    assert no_url.returncode == 2 and "EXCHANGIS_URL" in no_url.stderr
    assert no_file.returncode == 2 and "none.toml" in no_file.stderr
    assert bad_param.returncode == 2 and "KEY=VALUE" in bad_param.stderr
    assert no_job.returncode == 2 and "neither a job id nor a job file" in no_job.stderr
    assert down.returncode == 1 and "cannot reach" in down.stderr
    for done in (no_token, no_url, no_file, no_job, down):
        assert "Traceback" not in done.stderr and done.stdout == ""


AS_FROM_A_TERMINAL = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv(sys.executable, [sys.executable, '-m', 'exchangis.cli', *sys.argv[1:]])"
)
"""Run the CLI with SIGINT at its default, as from a terminal: a test runner started in the
background (``cmd &`` in a script) ignores SIGINT, and passes that on; a Python that starts
with SIGINT ignored never raises KeyboardInterrupt."""


def test_ctrl_c_off_a_terminal_leaves_the_execution_running_and_exits_130(
    cli: Cli, client: FlaskClient, memory: int, tmp_path: Path, run_id: str
) -> None:
    job = memory_job(
        f"cli-int-{run_id}",
        memory,
        {"slow": {"rows": 100_000, "batchSize": 100}},
        {"setting.speed.record": 500},
    )
    process = subprocess.Popen(
        [sys.executable, "-c", AS_FROM_A_TERMINAL, "run", job_file(tmp_path, job), "--follow"],
        cwd=ROOT,
        env=cli_env(cli.home, EXCHANGIS_URL=cli.url, EXCHANGIS_TOKEN=cli.token),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        said = iter(process.stderr.readline, "")
        eid = next(line for line in said if line.startswith("execution ")).split()[1]
        wait_for(lambda: ok(client, "GET", f"/job/execution/{eid}/status")["status"] == "Running")
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)

        assert process.returncode == 130, err
        assert f"execution {eid} keeps running" in err and "kill execution" not in err
        assert ok(client, "GET", f"/job/execution/{eid}/status")["status"] == "Running"
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert cli("executions", "kill", eid).returncode == 0


TMUX = "/usr/bin/tmux"
BIG_ROWS = 1_000_000
BIG_SPEED = 200_000
"""Rows per second of the 1M-row job (``setting.speed.record``): about 5 s of bars to watch."""


class Terminal:
    """A detached tmux session of a fixed size on a server of its own (its socket in
    ``workdir``), running one command; the command's exit status lands in a file."""

    def __init__(self, workdir: Path, env: Mapping[str, str]) -> None:
        self.socket = str(workdir / "tmux.sock")
        self.config = workdir / "tmux.conf"
        self.config.write_text("set -g remain-on-exit on\nset -g history-limit 5000\n")
        self.status = workdir / "exit-status"
        self.env = dict(env)

    def tmux(self, *args: str) -> str:
        """Run one tmux command on this server; return what it printed."""
        done = subprocess.run(
            [TMUX, "-S", self.socket, "-f", str(self.config), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        return done.stdout

    def start(self, *argv: str) -> None:
        """Run ``argv`` in a 120x40 terminal under a shell that writes its exit status down
        (and outlives a Ctrl-C: ``trap`` leaves the command's own SIGINT handling as it is)."""
        script = 'trap : INT; "$@"; echo "$?" > "$0.new" && mv "$0.new" "$0"'
        self.tmux(
            "new-session", "-d", "-s", "cli", "-x", "120", "-y", "40", "--",
            "sh", "-c", script, str(self.status), *argv,
        )  # fmt: skip

    def screen(self, history: bool = False) -> str:
        """Return the text on the screen (and above it, with ``history``)."""
        return self.tmux("capture-pane", "-p", "-t", "cli", *(["-S", "-"] if history else []))

    def exit_status(self) -> int | None:
        """Return the command's exit status once it ended, else None."""
        return int(self.status.read_text()) if self.status.exists() else None

    def wait(self, predicate: Any, timeout: float = 60) -> Any:
        """Return the first truthy ``predicate(screen)``, polling every 0.2 s."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate(self.screen())
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"the screen never showed it:\n{self.screen()}")
            time.sleep(0.2)

    def close(self) -> None:
        subprocess.run([TMUX, "-S", self.socket, "kill-server"], capture_output=True, check=False)


@pytest.fixture
def terminal(cli: Cli, tmp_path: Path) -> Iterator[Terminal]:
    if not Path(TMUX).exists():  # a tool, not a server: still, CI lets nothing skip
        if os.environ.get("EXCHANGIS_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{TMUX} is missing and EXCHANGIS_REQUIRE_SERVICES=1", pytrace=False)
        pytest.skip(f"{TMUX} is missing")
    env = cli_env(cli.home, EXCHANGIS_URL=cli.url, EXCHANGIS_TOKEN=cli.token)
    env.pop("COLUMNS")
    term = Terminal(tmp_path, env)
    yield term
    term.close()


BAR = re.compile(r"^copy .*?([\d,]+) rows +([\d,]+) rows/s (?:ETA|took) ", re.MULTILINE)


def test_follow_in_a_terminal_shows_live_bars_and_the_log_of_a_1m_row_job(
    terminal: Terminal, client: FlaskClient, tmp_path: Path, run_id: str
) -> None:
    src, sink = f"e2e_cli_src_{run_id}", f"e2e_cli_dst_{run_id}"
    try:
        with data.mysql() as conn, conn.cursor() as cur:
            cur.execute(f"CREATE TABLE `{src}` (id BIGINT PRIMARY KEY, name VARCHAR(40))")
            cur.execute(
                f"INSERT INTO `{src}` SELECT seq, CONCAT('row ', seq) FROM seq_1_to_{BIG_ROWS}"
            )
        with data.postgres() as conn:
            conn.execute(f'CREATE TABLE "{sink}" (id bigint, name text)')
        my = datasource(client, f"cli-my-{run_id}", "MYSQL", mysql_params())
        pg = datasource(client, f"cli-pg-{run_id}", "POSTGRESQL", postgres_params())
        content = [
            sub_job(
                "copy",
                ("MYSQL", my, src),
                ("POSTGRESQL", pg, sink),
                settings={"setting.speed.record": BIG_SPEED},
            )
        ]
        path = job_file(tmp_path, {"jobName": f"cli-big-{run_id}", "content": content})

        terminal.start(sys.executable, "-m", "exchangis.cli", "run", path, "--follow")
        seen: list[tuple[int, int]] = []
        estimated = False
        deadline = time.monotonic() + 120
        while terminal.exit_status() is None:
            shot = terminal.screen()
            assert time.monotonic() < deadline, f"still running after 120 s:\n{shot}"
            estimated = estimated or bool(re.search(r"rows/s ETA \d+:\d\d:\d\d ", shot))
            bar = BAR.search(shot)
            if bar:
                rows, speed = (int(g.replace(",", "")) for g in bar.groups())
                if not seen or seen[-1] != (rows, speed):
                    seen.append((rows, speed))
            time.sleep(0.3)
        screen = terminal.screen(history=True)

        assert terminal.exit_status() == 0, screen
        moving = [rows for rows, _ in seen if 0 < rows < BIG_ROWS]
        assert len(moving) >= 3 and moving == sorted(moving), seen
        assert any(speed > 0 for rows, speed in seen if rows < BIG_ROWS), seen
        assert estimated, "no time left was ever shown"
        assert re.search(r"^copy .*100% .*1,000,000 rows .* took ", screen, re.MULTILINE), screen
        assert re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} INFO ", screen, re.MULTILINE)
        assert "finished Success" in screen
        assert re.search(r"^execution \S+: Success$", screen, re.MULTILINE), screen
        with data.postgres() as conn:
            assert conn.execute(f'SELECT count(*) FROM "{sink}"').fetchone()[0] == BIG_ROWS
    finally:
        data.drop([src], [sink])


def test_ctrl_c_in_a_terminal_asks_then_kills_and_exits_130(
    terminal: Terminal, client: FlaskClient, memory: int, tmp_path: Path, run_id: str
) -> None:
    job = memory_job(
        f"cli-kill-{run_id}",
        memory,
        {"copy": {"rows": 100_000, "batchSize": 100}},
        {"setting.speed.record": 1000},
    )
    path = job_file(tmp_path, job)

    terminal.start(sys.executable, "-m", "exchangis.cli", "run", path, "--follow")
    eid = terminal.wait(lambda s: re.search(r"^execution (\S+) of job", s, re.MULTILINE)).group(1)
    terminal.wait(lambda s: (bar := BAR.search(s)) and bar.group(1) != "0" and "Running" in s)
    terminal.tmux("send-keys", "-t", "cli", "C-c")
    terminal.wait(lambda s: f"kill execution {eid}? [y/N]" in s)
    terminal.tmux("send-keys", "-t", "cli", "y", "Enter")
    terminal.wait(lambda _: terminal.exit_status() is not None, timeout=40)

    assert terminal.exit_status() == 130, terminal.screen()
    assert ok(client, "GET", f"/job/execution/{eid}/status")["status"] == "Cancelled"
    assert f"execution {eid}: Cancelled" in terminal.screen()
