"""The demo that ``make run`` submits: a generated CSV into SQLite, then back out as JSON lines.

It drives the HTTP API the way a UI or a script would.
"""

from __future__ import annotations

import csv
import random
import sqlite3
import time
from pathlib import Path
from typing import Any

from exchangis.client import ApiClient

DEMO_ROWS = 5000


def write_demo_csv(path: Path, rows: int = DEMO_ROWS) -> None:
    """Write a CSV of orders with mixed types (ints, exact decimals, dates, Unicode, NULLs)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(42)
    names = ["Ada", "Björk", "Zoë", "李雷", "Ωmega", "O'Brien", "Smith, Jr."]
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["id", "customer", "amount", "order_date", "paid"])
        for i in range(1, rows + 1):
            out.writerow(
                [
                    i,
                    rng.choice(names),
                    f"{rng.randint(0, 10**7) / 100:.2f}",
                    f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                    "" if i % 97 == 0 else rng.choice(["true", "false"]),
                ]
            )


PROJECT = "demo"


def _datasource(api: ApiClient, name: str, kind: str, params: dict[str, Any]) -> int:
    for item in api.get(f"/datasources?projectName={PROJECT}")["result"]:
        if item["name"] == name:
            api.call("PUT", f"/datasources/{item['id']}", {"connectParams": params})
            return int(item["id"])
    body = {"name": name, "projectName": PROJECT, "type": kind, "connectParams": params}
    return int(api.post("/datasources", body)["id"])


def _run_job(
    api: ApiClient,
    name: str,
    source: dict[str, Any],
    sink: dict[str, Any],
    sink_params: list[dict[str, Any]],
) -> str:
    job = api.post(
        "/job",
        {
            "jobName": name,
            "projectName": PROJECT,
            "content": [
                {
                    "subJobName": name,
                    "dataSources": {"source": source, "sink": sink},
                    "params": {"sources": [], "sinks": sink_params},
                }
            ],
        },
    )
    eid = str(api.post(f"/job/{job['id']}/execute", {})["jobExecutionId"])
    print(f"  {name}: execution {eid} submitted")
    deadline = time.monotonic() + 120
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = api.get(f"/job/execution/{eid}/status")
        if status["allTaskStatus"]:
            break
        time.sleep(0.5)
    print(f"  {name}: {status.get('status')} (progress {status.get('progress')})")
    print(f"    curl -u admin:$(cat var/admin.password) {api.base}/job/execution/{eid}/progress")
    return str(status.get("status"))


def run_demo(base: str, demo_dir: Path, token: str) -> bool:
    """Generate data, move it CSV → SQLite → JSON lines through the API (in project ``demo``,
    as the admin whose bearer token this is); True on success."""
    api = ApiClient(base, token)
    project = {"name": PROJECT, "description": "make run's demo"}
    api.call("POST", "/projects", project, ok=(0, 1))  # 1: it exists from an earlier run
    files = demo_dir.resolve() / "files"
    write_demo_csv(files / "orders.csv")
    print(f"demo: {DEMO_ROWS} orders in {files / 'orders.csv'}")
    database = demo_dir.resolve() / "demo.db"
    conn = sqlite3.connect(database)  # typed columns: the CSV's text arrives as typed values
    with conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS orders (id INTEGER, customer TEXT, "
            "amount DECIMAL TEXT(12,2), order_date DATE, paid BOOLEAN)"
        )
    conn.close()
    file_ds = _datasource(api, "demo-files", "FILE", {"root": str(files)})
    sqlite_ds = _datasource(api, "demo-sqlite", "SQLITE", {"path": str(database)})
    overwrite = [{"config_key": "writeMode", "config_value": "overwrite"}]
    first = _run_job(
        api,
        "demo-csv-to-sqlite",
        {"type": "FILE", "id": file_ds, "table": "orders.csv"},
        {"type": "SQLITE", "id": sqlite_ds, "table": "orders"},
        overwrite,
    )
    if first != "Success":
        return False
    second = _run_job(
        api,
        "demo-sqlite-to-jsonl",
        {"type": "SQLITE", "id": sqlite_ds, "table": "orders"},
        {"type": "FILE", "id": file_ds, "table": "out/orders.jsonl"},
        overwrite,
    )
    if second == "Success":
        out = files / "out" / "orders.jsonl"
        with out.open(encoding="utf-8") as fh:
            count = sum(1 for _ in fh)
        print(f"demo: {count} rows written to {out}")
    return second == "Success"
