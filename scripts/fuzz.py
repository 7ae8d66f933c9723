"""Fuzz every endpoint of the API with schemathesis: no 5xx, every answer in the envelope.

Serves the app in-process on loopback (a fresh SQLite metadata file, a private Redis key prefix,
no worker: executions stay queued; the call server a worker runs answers data source tests),
signs in as an admin of its own, seeds a project, data
sources, a job and an execution, and runs ``st run`` against the OpenAPI document
(``/api/rest_j/v1/exchangis/openapi.json``) with that admin's bearer token and the checks
``not_a_server_error``, ``ignored_auth`` (an operation answers 401 without the token) and
``envelope`` (``scripts/fuzz_checks.py``), over both URL prefixes. ``POST /user/logout`` is left
out: it would end the fuzzer's own session (tests/test_auth.py covers it).

Usage: ``make fuzz`` (= ``.venv/bin/python scripts/fuzz.py``; ``--max-examples N`` per
operation, default 25; ``--seed S`` to replay a run). Exits with schemathesis's status.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from common import served  # noqa: E402 - bench/ is not a package

from exchangis.client import ApiClient  # noqa: E402
from workers.services import call_server as worker_calls  # noqa: E402


def seed(api: ApiClient, root: Path) -> None:
    """Create a project, data sources (SQLite files in ``root``), a job and an execution, for
    ids to address."""
    api.post("/projects", {"name": "fuzz"})
    ids = [
        api.post(
            "/datasources",
            {
                "name": f"lite-{side}",
                "projectName": "fuzz",
                "type": "SQLITE",
                "connectParams": {"path": str(root / f"{side}.db")},
            },
        )["id"]
        for side in ("source", "sink")
    ]
    ends = [{"type": "SQLITE", "id": ds, "table": "t"} for ds in ids]
    sub = {"subJobName": "s", "dataSources": {"source": ends[0], "sink": ends[1]}}
    job = api.post("/job", {"jobName": "fuzz", "projectName": "fuzz", "content": [sub]})
    api.post(f"/job/{job['id']}/execute", {})


def main() -> int:
    """Serve the API, run schemathesis against it, return its exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=25)
    parser.add_argument("--seed", type=int)
    parser.add_argument(
        "--redis-url", default=os.environ.get("EXCHANGIS_REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    args = parser.parse_args()
    # ignored_auth sends bad credentials to every operation: a failed sign-in limit would turn
    # those 401s into 429s (tests/test_auth.py checks the limit)
    root = Path(tempfile.mkdtemp(prefix="exg-fuzz-"))
    overrides = {
        "task_queue": "exchangis-fuzz-nobody",
        "login_rate_limit": "1000000/minute",
        "file_roots": str(root),
        # no worker runs here: a sync plan or a block=true read would wait its whole bound
        "context_block_waiters": 0,
    }
    with served(args.redis_url, overrides) as (api, rt):
        # the calls a worker answers (a data source test), answered here, as a worker would
        call_server = worker_calls(rt.settings)
        call_server.start()
        seed(api, root)
        token, base = api.token, api.base
        host = base.split("/api/", 1)[0]
        command = [
            str(Path(sys.executable).parent / "st"),
            "run",
            f"{base}/openapi.json",
            "--url",
            host,
            "--checks",
            "not_a_server_error,ignored_auth,envelope",
            "--header",
            f"Authorization: Bearer {token}",
            "--exclude-path-regex",
            "/user/logout$",
            "--max-examples",
            str(args.max_examples),
        ]
        if args.seed is not None:
            command += ["--seed", str(args.seed)]
        env = {
            **os.environ,
            "SCHEMATHESIS_HOOKS": "fuzz_checks",
            "PYTHONPATH": str(Path(__file__).resolve().parent),
        }
        shown = [part.replace(token, "<token>") for part in command]
        print("$", " ".join(shown), flush=True)
        try:
            return subprocess.call(command, env=env)
        finally:
            call_server.stop()


if __name__ == "__main__":
    sys.exit(main())
