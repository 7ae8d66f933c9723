"""The processes' own log lines: text or JSON lines, naming the execution and task they are
about; a real worker writes JSON lines only, its task's lines carrying both ids."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

from flask.testing import FlaskClient

from exchangis import process_log
from exchangis.settings import Settings
from tests.conftest import WorkerProcess
from tests.helpers import create_job, datasource, sub_job, tasks_by_name, wait_until_done


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
    client: FlaskClient, migrated: Settings, tmp_path: Path
) -> None:
    worker = WorkerProcess(
        migrated.with_overrides({"log_format": "json", "queues": ("json-logs",)}),
        tmp_path / "worker",
    )
    worker.start()
    try:
        memory = datasource(client, f"mem-{tmp_path.name}", "MEMORY", {})
        lite = datasource(
            client, f"lite-{tmp_path.name}", "SQLITE", {"path": str(tmp_path / "l.db")}
        )
        content = [
            sub_job("s", ("MEMORY", memory, "gen"), ("SQLITE", lite, "t"), sources={"rows": 5})
        ]
        job_id = create_job(client, f"json-logs-{tmp_path.name}", content)
        body = {"labels": {"route": "json-logs"}}
        eid = client.post(f"/api/rest_j/v1/exchangis/job/{job_id}/execute", json=body).get_json()[
            "data"
        ]["jobExecutionId"]
        assert wait_until_done(client, eid)["status"] == "Success"
        (task,) = tasks_by_name(client, eid).values()
    finally:
        worker.stop()
    lines = [line for line in worker.logfile.read_text().splitlines() if line.strip()]
    parsed = [json.loads(line) for line in lines]  # every line: a JSON object
    about = [p for p in parsed if p.get("task") == str(task["taskId"])]
    assert about and all(p["execution"] == eid for p in about)
