"""Fuzz every endpoint of the API with schemathesis: no 5xx, every answer in the envelope.

Serves the app in-process on loopback (a fresh SQLite metadata file, a private Redis key prefix,
no worker: executions stay queued) and runs ``st run`` against its OpenAPI document
(``/api/rest_j/v1/exchangis/openapi.json``) with the checks ``not_a_server_error`` and
``envelope`` (``scripts/fuzz_checks.py``), over both URL prefixes.

Usage: ``make fuzz`` (= ``.venv/bin/python scripts/fuzz.py``; ``--max-examples N`` per
operation, default 25; ``--seed S`` to replay a run). Exits with schemathesis's status.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from common import served  # noqa: E402 - bench/ is not a package


def main() -> int:
    """Serve the API, run schemathesis against it, return its exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=25)
    parser.add_argument("--seed", type=int)
    parser.add_argument(
        "--redis-url", default=os.environ.get("EXCHANGIS_REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    args = parser.parse_args()
    with served(args.redis_url, {"task_queue": "exchangis-fuzz-nobody"}) as (base, _rt):
        host = base.split("/api/", 1)[0]
        command = [
            str(Path(sys.executable).parent / "st"),
            "run",
            f"{base}/openapi.json",
            "--url",
            host,
            "--checks",
            "not_a_server_error,envelope",
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
        print("$", " ".join(command), flush=True)
        return subprocess.call(command, env=env)


if __name__ == "__main__":
    sys.exit(main())
