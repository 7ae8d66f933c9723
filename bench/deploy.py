"""Benchmark: the production layout (docs/deploy.md) on 1, 2 and 3 worker hosts.

Run (as root: the hosts are network namespaces): ``make bench-deploy`` (=
``.venv/bin/python bench/deploy.py``), or e.g. ``.venv/bin/python bench/deploy.py --rows 300000
--hosts 1,3``.

For each host count N the recipe is started from scratch by tests/deploy/lab.py (gunicorn,
PostgreSQL metadata, a Redis of its own, N worker hosts each running ``exchangis worker`` with
``worker_concurrency`` 2) and one MariaDB ``bench_mixed`` → PostgreSQL sub-job runs with
``setting.speed.channel`` = 2 * N, so every pool process of every host has a channel. Reported:
wall time from the submit to the final status, rows/s, the ratio to one host, and the CPU each
part of the layout used over the run (its processes' CPU seconds over the wall time; 100% is
one core): the API, each worker host, the forwarders that carry the hosts' database traffic,
Redis, the PostgreSQL and MariaDB servers, and the whole machine. "Saturates first" names the
part closest to its ceiling: a single-threaded process (a forwarder, Redis) at one core, the
machine at its core count. The sink is checked: row count and sum of ids equal the source's.

Every host of the lab shares this machine's cores: what it measures is whether the layout
spreads work and where its ceiling is on one machine, not how N real hosts scale.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from gen_mixed import create_postgres, ensure_mysql, mysql, postgres  # noqa: E402

from tests.deploy.lab import Lab, ns_pids  # noqa: E402

CHANNELS_PER_HOST = 2


def _tree(pids: Iterable[int]) -> dict[int, psutil.Process]:
    """Return the processes ``pids`` and their descendants."""
    found: dict[int, psutil.Process] = {}
    for pid in pids:
        try:
            process = psutil.Process(pid)
            found[pid] = process
            found.update({c.pid: c for c in process.children(recursive=True)})
        except psutil.NoSuchProcess:
            continue
    return found


def _named(*names: str) -> list[int]:
    return [p.pid for p in psutil.process_iter(["name"]) if p.info["name"] in names]


def _cpu(processes: dict[int, psutil.Process]) -> dict[int, float]:
    seconds = {}
    for pid, process in processes.items():
        try:
            times = process.cpu_times()
            seconds[pid] = times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return seconds


def _parts(lab: Lab) -> dict[str, list[int]]:
    parts = {"API (gunicorn)": [lab.api.pid]}
    for host in lab.hosts:
        parts[f"host {host.name}"] = ns_pids(host.netns)
    forward, redis = lab.processes[0], lab.processes[1]
    parts["forwarders"] = [forward.pid]
    parts["redis"] = [redis.pid]
    parts["postgresql"] = _named("postgres")
    parts["mariadb"] = _named("mariadbd", "mysqld")
    return parts


def _run(lab: Lab, source: str, rows: int) -> dict[str, Any]:
    sink = f"bench_deploy_{uuid.uuid4().hex[:6]}"
    create_postgres(sink, 0)
    ids = []
    for kind, table in (("MYSQL", source), ("POSTGRESQL", sink)):
        body = {"name": f"{kind}-{sink}", "type": kind, "connectParams": lab.data_source(kind)}
        ids.append((kind, int(lab.client.post("/datasources", body)["id"]), table))
    channels = CHANNELS_PER_HOST * len(lab.hosts)
    content = [
        {
            "subJobName": "copy",
            "dataSources": {
                "source": {"type": "MYSQL", "id": ids[0][1], "table": source},
                "sink": {"type": "POSTGRESQL", "id": ids[1][1], "table": sink},
            },
            "params": {"sources": [], "sinks": []},
            "transforms": {"type": "MAPPING", "mapping": []},
            "settings": [{"config_key": "setting.speed.channel", "config_value": channels}],
        }
    ]
    job = int(lab.client.post("/job", {"jobName": sink, "content": content})["id"])
    parts = {name: _tree(pids) for name, pids in _parts(lab).items()}
    before = {name: _cpu(processes) for name, processes in parts.items()}
    machine = psutil.cpu_times()
    started = time.monotonic()
    eid = lab.client.post(f"/job/{job}/execute", {})["jobExecutionId"]
    while not (status := lab.client.get(f"/job/execution/{eid}/status"))["allTaskStatus"]:
        time.sleep(0.2)
    wall = time.monotonic() - started
    after_machine = psutil.cpu_times()
    usage = {}
    for name, pids in _parts(lab).items():
        processes = {**parts[name], **_tree(pids)}
        now = _cpu(processes)
        spent = sum(now[pid] - before[name].get(pid, 0.0) for pid in now)
        usage[name] = spent / wall
    usage["workers (all hosts)"] = sum(usage[f"host {h.name}"] for h in lab.hosts)
    busy = sum(getattr(after_machine, f) - getattr(machine, f) for f in ("user", "system", "nice"))
    usage["machine"] = busy / wall
    with postgres() as conn:
        count, total = conn.execute(f'SELECT count(*), sum(id) FROM "{sink}"').fetchone()
        conn.execute(f'DROP TABLE "{sink}"')
    with mysql() as conn, conn.cursor() as cur:
        cur.execute(f"SELECT count(*), sum(id) FROM `{source}`")
        expected = cur.fetchone()
    return {
        "hosts": len(lab.hosts),
        "status": status["status"],
        "wall": wall,
        "rows_per_s": rows / wall,
        "usage": usage,
        "exact": (count, int(total or 0)) == (expected[0], int(expected[1] or 0)),
    }


def _ceiling(name: str) -> float:
    """Return the CPU a part can use at most (cores): one for a single-threaded process."""
    return 1.0 if name in ("forwarders", "redis") else float(psutil.cpu_count() or 1)


def main() -> int:
    """Run the benchmark; exit 1 when a run failed or a sink was not exact."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--hosts", default="1,2,3", help="host counts to run, comma-separated")
    args = parser.parse_args()
    source = "bench_mixed" if args.rows == 1_000_000 else f"bench_mixed_{args.rows}"
    ensure_mysql(source, args.rows)
    results = []
    for count in (int(n) for n in args.hosts.split(",")):
        with (
            tempfile.TemporaryDirectory(prefix="exg-bench-deploy-") as workdir,
            Lab(Path(workdir), count, settings={"worker_concurrency": 2}) as lab,
        ):
            result = _run(lab, source, args.rows)
        results.append(result)
        print(
            f"{count} host(s): {result['status']} in {result['wall']:.1f} s, "
            f"{result['rows_per_s']:,.0f} rows/s, sink exact: {result['exact']}",
            flush=True,
        )
    base = results[0]["rows_per_s"]
    print(f"\n{args.rows:,} rows MariaDB → PostgreSQL, {CHANNELS_PER_HOST} channels per host")
    names = [n for n in results[0]["usage"] if not n.startswith("host ")]
    print("CPU of each part over the run (100% = one core):")
    print(f"{'hosts':>5} {'rows/s':>9} {'vs 1':>5}  " + "  ".join(f"{n:>19}" for n in names))
    for result in results:
        cells = "  ".join(f"{result['usage'].get(n, 0) * 100:18.0f}%" for n in names)
        ratio = result["rows_per_s"] / base
        print(f"{result['hosts']:>5} {result['rows_per_s']:>9,.0f} {ratio:5.2f}  {cells}")
    for result in results:
        usage = result["usage"]
        hosts = ", ".join(
            f"{n[5:]} {v * 100:.0f}%" for n, v in usage.items() if n.startswith("host ")
        )
        parts = [n for n in usage if not n.startswith("host ")]
        worst = max(parts, key=lambda n: usage[n] / _ceiling(n))
        print(
            f"{result['hosts']} host(s): per host {hosts}; saturates first: {worst} at "
            f"{usage[worst] * 100:.0f}% of {_ceiling(worst) * 100:.0f}%"
        )
    return 0 if all(r["status"] == "Success" and r["exact"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
