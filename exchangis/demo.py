"""The demo that ``make run`` submits: a generated CSV into SQLite, then back out as JSON lines.

It drives the HTTP API the way a UI or a script would.
"""

from __future__ import annotations

import csv
import json
import random
import sqlite3
import time
import urllib.request
from pathlib import Path
from typing import Any

DEMO_ROWS = 5000


def _call(method: str, url: str, body: Any = None) -> dict[str, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            reply: dict[str, Any] = json.load(response)
    except urllib.error.HTTPError as exc:
        reply = json.load(exc)
    if reply.get("status") != 0:
        raise RuntimeError(f"{method} {url}: {reply.get('message')}")
    return reply["data"]


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


def _datasource(base: str, name: str, kind: str, params: dict[str, Any]) -> int:
    for item in _call("GET", f"{base}/datasources")["result"]:
        if item["name"] == name:
            _call("PUT", f"{base}/datasources/{item['id']}", {"connectParams": params})
            return int(item["id"])
    return int(
        _call("POST", f"{base}/datasources", {"name": name, "type": kind, "connectParams": params})[
            "id"
        ]
    )


def _run_job(
    base: str,
    name: str,
    source: dict[str, Any],
    sink: dict[str, Any],
    sink_params: list[dict[str, Any]],
) -> str:
    job = _call(
        "POST",
        f"{base}/job",
        {
            "jobName": name,
            "projectName": "demo",
            "content": [
                {
                    "subJobName": name,
                    "dataSources": {"source": source, "sink": sink},
                    "params": {"sources": [], "sinks": sink_params},
                }
            ],
        },
    )
    eid = str(_call("POST", f"{base}/job/{job['id']}/execute", {})["jobExecutionId"])
    print(f"  {name}: execution {eid} submitted")
    deadline = time.monotonic() + 120
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = _call("GET", f"{base}/job/execution/{eid}/status")
        if status["allTaskStatus"]:
            break
        time.sleep(0.5)
    print(f"  {name}: {status.get('status')} (progress {status.get('progress')})")
    print(f"    curl {base}/job/execution/{eid}/progress")
    return str(status.get("status"))


def run_demo(base: str, demo_dir: Path) -> bool:
    """Generate data, move it CSV → SQLite → JSON lines through the API; True on success."""
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
    file_ds = _datasource(base, "demo-files", "FILE", {"root": str(files)})
    sqlite_ds = _datasource(base, "demo-sqlite", "SQLITE", {"path": str(database)})
    overwrite = [{"config_key": "writeMode", "config_value": "overwrite"}]
    first = _run_job(
        base,
        "demo-csv-to-sqlite",
        {"type": "FILE", "id": file_ds, "table": "orders.csv"},
        {"type": "SQLITE", "id": sqlite_ds, "table": "orders"},
        overwrite,
    )
    if first != "Success":
        return False
    second = _run_job(
        base,
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
