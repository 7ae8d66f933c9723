"""The total running-task limit: tasks of any users past it wait in Scheduled, and start only
when a running one has ended."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import datetime

import pytest
from flask.testing import FlaskClient

from exchangis.services import user as users
from tests.conftest import OwnDeployment
from tests.helpers import (
    data_log,
    datasource,
    execute,
    ok,
    signed_in,
    sub_job,
    tasks_by_name,
    wait_until_done,
)

pytestmark = pytest.mark.e2e

STAMP = r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) INFO "


def _user_with_a_job(own: OwnDeployment, name: str) -> tuple[FlaskClient, int]:
    """Create user ``name`` with a project and a job of one slow sub-job ``t``; return a
    client signed in as them and the job id."""
    users.create_user(own.rt, name, "a good long password")
    client = signed_in(own.client.application, str(users.issue_token(own.rt, name)["token"]))
    project = ok(client, "POST", "/projects", {"name": f"p-{name}"}, expect=201)["name"]
    memory = datasource(client, f"mem-{name}", "MEMORY", {}, project)
    lite = datasource(
        client, f"lite-{name}", "SQLITE", {"path": str(own.workdir / f"{name}.db")}, project
    )
    options = {"rows": 40, "batchSize": 10, "sleepPerBatch": 0.3}
    content = [sub_job("t", ("MEMORY", memory, "gen"), ("SQLITE", lite, "t"), options)]
    body = {"jobName": f"job-{name}", "projectName": project, "content": content}
    return client, int(ok(client, "POST", "/job", body, expect=201)["id"])


def _span(client: FlaskClient, eid: str) -> tuple[datetime, datetime]:
    """Return when task ``t`` started moving rows and when it had moved them all: the stamps of
    the "attempt 1 started" and "succeeded" lines of its log (T2)."""
    tid = tasks_by_name(client, eid)["t"]["taskId"]
    log = ok(client, "GET", f"/task/execution/{tid}/log?jobExecutionId={eid}&pageSize=500")
    text = log["logs"]["all"]
    started = re.search(STAMP + r"Task t \(id \d+\) attempt 1 started on", text)
    succeeded = re.search(STAMP + r"Task t succeeded:", text)
    assert started and succeeded, text
    return _time(started), _time(succeeded)


def _time(match: re.Match[str]) -> datetime:
    return datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S.%f")


def test_tasks_of_two_users_over_the_total_limit_run_one_after_the_other(
    own_deployment: Callable[..., OwnDeployment],
) -> None:
    own = own_deployment(max_running_tasks=1, admission_retry_seconds=0.3, worker_concurrency=2)
    own.worker()  # two pool processes: only the limit keeps the tasks apart
    run = uuid.uuid4().hex[:6]
    (ann, ann_job), (bob, bob_job) = (_user_with_a_job(own, f"{n}-{run}") for n in ("ann", "bob"))
    ann_eid, bob_eid = execute(ann, ann_job), execute(bob, bob_job)
    assert wait_until_done(ann, ann_eid, timeout=60)["status"] == "Success"
    assert wait_until_done(bob, bob_eid, timeout=60)["status"] == "Success"

    # A task logs "succeeded" before its final move frees the slot, and "started" after its
    # claim took one: whichever ran second started after the other had succeeded.
    first, second = sorted([_span(ann, ann_eid), _span(bob, bob_eid)])
    assert first[1] <= second[0], f"the tasks overlapped: {first} and {second}"
    waited = data_log(ann, ann_eid) + data_log(bob, bob_eid)
    assert "waits in Scheduled for a free slot (at most 1 running tasks" in waited
