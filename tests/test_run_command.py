"""`exchangis up --demo` (what `make run` starts): embedded Redis, worker, API, demo job."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from exchangis.embedded import free_port

ROOT = Path(__file__).resolve().parent.parent


def test_embedded_run_moves_the_demo_rows_and_stops_what_it_started(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXCHANGIS_")}
    env.update(
        {
            "EXCHANGIS_DATA_DIR": str(tmp_path / "var"),
            "EXCHANGIS_DATABASE_URL": f"sqlite:///{tmp_path / 'var' / 'meta.db'}",
            "EXCHANGIS_PORT": str(free_port()),
        }
    )
    done = subprocess.run(
        [sys.executable, "-m", "exchangis.cli", "up", "--demo", "--exit-after-demo"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert "embedded redis: redis://127.0.0.1:" in output
    assert "demo-csv-to-sqlite: Success" in output
    assert "demo-sqlite-to-jsonl: Success" in output
    out = tmp_path / "var" / "files" / "demo" / "files" / "out" / "orders.jsonl"
    lines = out.read_text().splitlines()
    assert len(lines) == 5000
    first = json.loads(lines[0])
    assert isinstance(first["id"], int) and first["paid"] in (True, False)
    assert isinstance(first["amount"], str) and "." in first["amount"]  # exact decimal
    secret = tmp_path / "var" / "admin.password"  # the first run's admin, for people to sign in
    assert "created the admin user 'admin'" in output
    assert secret.stat().st_mode & 0o777 == 0o600
    assert secret.read_text().strip() not in output
    port = int(output.split("embedded redis: redis://127.0.0.1:")[1].split("/")[0])
    with socket.socket() as probe:  # the embedded Redis was stopped with the rest
        assert probe.connect_ex(("127.0.0.1", port)) != 0
