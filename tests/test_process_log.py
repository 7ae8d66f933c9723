"""The processes' own log lines: text or JSON lines, naming the execution and task they are
about; a real worker writes JSON lines only, its task's lines carrying both ids."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable
from pathlib import Path

from exchangis import process_log
from tests.conftest import OwnDeployment
from tests.helpers import create_job, datasource, execute, sub_job, tasks_by_name, wait_until_done


def _logged(log_format: str, *, raising: bool = False) -> list[str]:
    stream = io.StringIO()
    logger = logging.getLogger(f"exchangis.test.{log_format}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.handlers = [process_log.handler(log_format, stream)]
    logger.info("outside")
    with process_log.about(execution="e-1"):
        with process_log.about(task=7):
            logger.warning("inside %s", "both")
        if raising:
            try:
                raise ValueError("boom")
            except ValueError:
                logger.exception("failed")
    logger.info("after")
    return stream.getvalue().splitlines()


def test_json_lines_name_what_they_are_about_and_nothing_leaks_out() -> None:
    lines = [json.loads(line) for line in _logged("json", raising=True)[:2]]
    outside, inside = lines
    assert outside["message"] == "outside" and "execution" not in outside
    assert (inside["message"], inside["level"], inside["execution"], inside["task"]) == (
        "inside both",
        "WARNING",
        "e-1",
        "7",
    )
    assert inside["time"].endswith("+00:00") and isinstance(inside["process"], int)
    parsed = [json.loads(line) for line in _logged("json", raising=True) if line.startswith("{")]
    failed = next(p for p in parsed if p["message"] == "failed")
    assert "ValueError: boom" in failed["exception"] and "task" not in failed
    assert "execution" not in parsed[-1]


def test_text_lines_end_with_the_ids() -> None:
    outside, inside, after = _logged("text")
    assert inside.endswith("inside both [execution=e-1 task=7]")
    assert outside.endswith("outside") and after.endswith("after")


def test_a_worker_in_json_writes_json_lines_only_and_its_task_lines_name_both(
    own_deployment: Callable[..., OwnDeployment], tmp_path: Path
) -> None:
    own = own_deployment(log_format="json")  # its own queue: no other worker takes the task
    worker = own.worker()
    client = own.client
    memory = datasource(client, f"mem-{tmp_path.name}", "MEMORY", {})
    lite = datasource(client, f"lite-{tmp_path.name}", "SQLITE", {"path": str(tmp_path / "l.db")})
    content = [sub_job("s", ("MEMORY", memory, "gen"), ("SQLITE", lite, "t"), sources={"rows": 5})]
    eid = execute(client, create_job(client, f"json-logs-{tmp_path.name}", content))
    assert wait_until_done(client, eid)["status"] == "Success"
    (task,) = tasks_by_name(client, eid).values()
    worker.stop()
    lines = [line for line in worker.logfile.read_text().splitlines() if line.strip()]
    parsed = [json.loads(line) for line in lines]  # every line: a JSON object
    about = [p for p in parsed if p.get("task") == str(task["taskId"])]
    assert about and all(p["execution"] == eid for p in about)
