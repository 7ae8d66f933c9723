"""Benchmark: table transfers through the engine against the plain pipes that do the same job.

Run: ``make bench-transfer`` (= ``.venv/bin/python bench/transfer.py``), or e.g.
``.venv/bin/python bench/transfer.py --rows 100000 --runs 1 --only mysql-to-pg,channels``.

Benchmarks (``--only`` takes a comma-separated list of these names):

- ``mysql-to-pg``: MariaDB ``bench_mixed`` → PostgreSQL. Baseline: ``mariadb --batch --quick
  -e 'SELECT ...' | psql -c '\\copy sink FROM STDIN'`` (the two text formats agree for this data:
  no NULLs, no tabs, newlines nor backslashes in values).
- ``pg-to-mysql``: PostgreSQL ``bench_mixed`` → MariaDB. Baseline: ``psql -c '\\copy (SELECT ...)
  TO STDOUT' | mariadb --local-infile=1 -e "LOAD DATA LOCAL INFILE '/dev/stdin' ..."``.
- ``csv-to-pg``: a CSV file of the table (header line) → PostgreSQL through a FILE data source.
  Baseline: ``psql -c "\\copy sink FROM 'file' CSV HEADER"``.
- ``channels``: the mysql-to-pg job with ``setting.speed.channel`` 1 and 2.
- ``wide``: PostgreSQL ``bench_wide`` (``--wide-rows`` rows of 4 KB: an id and 4,088 characters
  of text) → MariaDB, as ``pg-to-mysql``: the memory benchmark (the worker child's peak RSS, "1
  proc", must not follow the rows' width nor the table's size).
- ``orchestration``: one job of ``--subjobs`` (100) sub-jobs of ``--subjob-rows`` (10) rows each,
  MEMORY → MEMORY and MariaDB → PostgreSQL (a ``where`` range per sub-job), against a bare Celery
  group of as many no-op tasks on the same broker (``bench/noop_celery.py``, a worker of the same
  concurrency).

Each benchmark alternates baseline and engine runs (``--runs``, default 3) and prints each run,
then medians: wall time, ratio engine/baseline, rows/s and the peak RSS of the worker process tree
(psutil, every 50 ms; "before" is the tree right before the run) or of the pipe's processes, and
the peak RSS of the tree's largest single process ("1 proc": the worker child moving the data —
the tree's sum counts the pages forked processes share several times) and the tree's peak PSS
(shared pages counted once: the memory the whole worker really holds).
Engine time is from the submit (``POST /job/{id}/execute``) to the final status seen by polling
``/job/execution/{id}/status`` every 0.1 s (as a UI would, only faster; a tighter loop steals
CPU from the worker on a small machine). Every sink (baseline and engine) is a freshly created
empty table with the source's columns and primary key, and is checked against the source afterwards
(count, sums of id/qty/amount/flag/seconds since 2020, lengths, distinct notes, min/max time).

The source tables are generated on first use (``bench/gen_mixed.py``): ``bench_mixed`` for the
default 1,000,000 rows, ``bench_mixed_<rows>`` for other sizes; the CSV file lives in
``var/bench/``. The API is served in-process on a loopback port (SQLite metadata file, private
Redis key prefix and Celery queue); the worker is a separate ``exchangis worker`` process with
the same settings. Needs Redis (``EXCHANGIS_REDIS_URL``, default ``redis://127.0.0.1:6379/0``),
MariaDB and PostgreSQL (database ``test``) on their default local ports, and the ``mariadb`` and
``psql`` clients. Exits 1 when a run failed or a sink did not match its source.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import gen_mixed as gen
import psutil
from common import served
from harness import (
    ROOT,
    Api,
    Process,
    RssMonitor,
    Sample,
    Side,
    exchangis_worker,
    mib,
    noop_worker,
    print_run,
    rate,
    run_execution,
    run_pipeline,
    running,
)
from redis import Redis

from exchangis.client import sub_job
from exchangis.settings import Settings

BASE_SINK = "bench_mixed_sink"
ENGINE_SINK = "bench_mixed_engine"
ORCH_SOURCE = "bench_orch"
ORCH_SINK = "bench_orch_sink"
COLS = ", ".join(gen.COLUMNS)
MY = f"mariadb -h{gen.MYSQL['host']} -P{gen.MYSQL['port']} -u{gen.MYSQL['user']} {gen.MYSQL_DB}"
PG = f"psql -h{gen.POSTGRES['host']} -p{gen.POSTGRES['port']} -U{gen.POSTGRES['user']} " + (
    gen.POSTGRES_DB
)
NAMES = ("mysql-to-pg", "pg-to-mysql", "csv-to-pg", "channels", "orchestration", "wide")
WIDE_COLS = ", ".join(gen.WIDE_COLUMNS)

CHECKS = (
    "rows",
    "sum(id)",
    "sum(qty)",
    "sum(amount)",
    "sum(flag)",
    "sum(seconds)",
    "len(name)",
    "len(code)",
    "distinct notes",
    "min(created)",
    "max(created)",
)
_CHECK_SQL = (
    "SELECT COUNT(*), SUM(id), SUM(qty), SUM(amount), SUM(flag), {seconds}, "
    "SUM(CHAR_LENGTH(name)), SUM(CHAR_LENGTH(code)), COUNT(DISTINCT note), MIN(created), "
    "MAX(created) FROM {table}"
)
MYSQL_CHECK = _CHECK_SQL.replace(
    "{seconds}", "SUM(TIMESTAMPDIFF(SECOND, '2020-01-01', created))"
).replace("{table}", "`{table}`")
POSTGRES_CHECK = _CHECK_SQL.replace(
    "{seconds}", "SUM(EXTRACT(EPOCH FROM created - TIMESTAMP '2020-01-01'))"
).replace("{table}", '"{table}"')
WIDE_CHECKS = ("rows", "sum(id)", "len(body)", "distinct heads", "distinct tails")
_WIDE_CHECK_SQL = (
    "SELECT COUNT(*), SUM(id), SUM(CHAR_LENGTH(body)), COUNT(DISTINCT LEFT(body, 40)), "
    "COUNT(DISTINCT RIGHT(body, 40)) FROM {q}{table}{q}"
)
MYSQL_WIDE_CHECK = _WIDE_CHECK_SQL.replace("{q}", "`")
POSTGRES_WIDE_CHECK = _WIDE_CHECK_SQL.replace("{q}", '"')


# --- checks ------------------------------------------------------------------------------------


def _normal(value: Any) -> str:
    """Return a figure as text that does not depend on the driver (Decimal vs int, scale)."""
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, int | Decimal):
        number = Decimal(value)
        if number == number.to_integral_value():
            return str(int(number))
        return str(number.quantize(Decimal("0.01")))
    return str(value)


def checksum(kind: str, table: str, wide: bool = False) -> tuple[str, ...]:
    """Return the check figures of a MariaDB (``mysql``) or PostgreSQL (``pg``) table (``wide``:
    of the wide table's columns)."""
    if kind == "mysql":
        with gen.mysql() as conn, conn.cursor() as cur:
            cur.execute((MYSQL_WIDE_CHECK if wide else MYSQL_CHECK).format(table=table))
            row = cur.fetchone()
    else:
        with gen.postgres() as conn, conn.cursor() as cur:
            cur.execute((POSTGRES_WIDE_CHECK if wide else POSTGRES_CHECK).format(table=table))
            row = cur.fetchone()
    return tuple(_normal(v) for v in row)


def verify(expected: tuple[str, ...], kind: str, table: str, wide: bool = False) -> str:
    """Return ``ok``, or ``FAIL`` naming the figures of ``table`` that differ from the source."""
    got = checksum(kind, table, wide)
    if got == expected:
        return "ok"
    wrong = [
        f"{name} {g} (source {e})"
        for name, g, e in zip(WIDE_CHECKS if wide else CHECKS, got, expected, strict=True)
        if g != e
    ]
    return "FAIL: sink differs: " + "; ".join(wrong)


def recreate(kind: str, table: str, wide: bool = False) -> None:
    """Drop and create an empty sink table with the source's columns."""
    if wide and kind == "mysql":
        gen.create_wide_mysql(table)
    elif wide:
        gen.create_wide_postgres(table, 0)
    else:
        (gen.create_mysql if kind == "mysql" else gen.create_postgres)(table, 0)


def drop(kind: str, table: str) -> None:
    """Drop a table if it exists."""
    if kind == "mysql":
        with gen.mysql() as conn, conn.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS `{table}`")
    else:
        with gen.postgres() as conn, conn.cursor() as cur:
            cur.execute(f'DROP TABLE IF EXISTS "{table}"')


def forget_queue(broker: str, queue: str) -> None:
    """Delete a Celery queue and kombu's binding keys of it from the Redis broker."""
    Redis.from_url(broker).delete(
        queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}"
    )


# --- the run -----------------------------------------------------------------------------------


@dataclass
class Result:
    """The sides of one benchmark, the rows each run moves, and notes for the summary."""

    name: str
    rows: int
    sides: list[Side]
    ratio_note: str = "engine/baseline"
    notes: list[str] = field(default_factory=list)

    def failed(self) -> bool:
        """Return whether any run failed or did not match."""
        return any(
            s.error or s.checked.startswith("FAIL") for side in self.sides for s in side.samples
        )


@dataclass
class Bench:
    """What every benchmark needs: the API, the worker, data sources, sizes."""

    api: Api
    worker: Process
    settings: Settings
    workdir: Path
    rows: int
    runs: int
    table: str
    csv: Path
    subjobs: int
    subjob_rows: int
    wide_rows: int = 0
    wide_table: str = gen.WIDE
    sources: dict[str, int] = field(default_factory=dict)

    def engine(
        self,
        job_id: int,
        expected: tuple[str, ...] | None,
        kind: str,
        table: str,
        wide: bool = False,
    ) -> Sample:
        """Run one execution of ``job_id`` (the sink table fresh), time it and check the sink."""
        if expected is not None:
            recreate(kind, table, wide)
        sample = run_execution(self.api, job_id, self.worker.pid)
        if expected is not None and not sample.error:
            sample.checked = verify(expected, kind, table, wide)
        return sample

    def pipe(
        self, command: str, expected: tuple[str, ...], kind: str, table: str, wide: bool = False
    ) -> Sample:
        """Run one baseline pipe into a fresh ``table`` and check it."""
        recreate(kind, table, wide)
        sample = run_pipeline(command)
        if not sample.error:
            sample.checked = verify(expected, kind, table, wide)
        return sample


def alternate(
    name: str, rows: int, runs: int, sides: list[tuple[str, Callable[[], Sample]]]
) -> Result:
    """Run the sides in turn ``runs`` times, printing each run; stop a side after a failure."""
    result = Result(name, rows, [Side(label) for label, _ in sides])
    broken: set[str] = set()
    for run in range(1, runs + 1):
        for side, (label, action) in zip(result.sides, sides, strict=True):
            if label in broken:
                continue
            sample = action()
            side.samples.append(sample)
            print_run(run, label, sample, rows)
            if sample.error:
                broken.add(label)
    return result


def transfer_job(
    bench: Bench, name: str, source: str, sink: str, table: str | None = None, **settings: Any
) -> int:
    """Save a one-sub-job job ``source type`` → ``sink type`` on the benchmark's tables (the
    source: ``table``, by default the mixed table or its CSV file)."""
    table = table or (bench.csv.name if source == "FILE" else bench.table)
    content = [
        sub_job(
            "copy",
            (source, bench.sources[source], table),
            (sink, bench.sources[sink], ENGINE_SINK),
            settings=settings,
        )
    ]
    return bench.api.job(f"bench-{name}-{uuid.uuid4().hex[:6]}", content)


def pipe_vs_engine(
    bench: Bench, name: str, label: str, command: str, pair: tuple[str, str], sink: str
) -> Result:
    """Alternate the baseline ``command`` with the engine's job from ``pair`` (source, sink
    types); both land in ``sink`` (``pg`` or ``mysql``) and are checked against the source."""
    expected = checksum("mysql" if pair[0] == "MYSQL" else "pg", bench.table)
    print(f"  baseline: {command}")
    job = transfer_job(bench, name, *pair)
    return alternate(
        name,
        bench.rows,
        bench.runs,
        [
            (label, lambda: bench.pipe(command, expected, sink, BASE_SINK)),
            ("engine", lambda: bench.engine(job, expected, sink, ENGINE_SINK)),
        ],
    )


def bench_mysql_to_pg(bench: Bench) -> Result:
    """MariaDB → PostgreSQL: pipe vs engine."""
    query = shlex.quote(f"SELECT {COLS} FROM {bench.table}")
    copy = shlex.quote(f"\\copy {BASE_SINK} ({COLS}) FROM STDIN")
    command = f"{MY} --batch --quick --skip-column-names -e {query} | {PG} -qc {copy}"
    return pipe_vs_engine(
        bench, "mysql-to-pg", "baseline mariadb | psql", command, ("MYSQL", "POSTGRESQL"), "pg"
    )


def bench_pg_to_mysql(bench: Bench) -> Result:
    """PostgreSQL → MariaDB: pipe vs engine."""
    copy = shlex.quote(f"\\copy (SELECT {COLS} FROM {bench.table}) TO STDOUT")
    load = shlex.quote(f"LOAD DATA LOCAL INFILE '/dev/stdin' INTO TABLE {BASE_SINK} ({COLS})")
    command = f"{PG} -qc {copy} | {MY} --local-infile=1 -e {load}"
    return pipe_vs_engine(
        bench, "pg-to-mysql", "baseline psql | LOAD DATA", command, ("POSTGRESQL", "MYSQL"), "mysql"
    )


def bench_csv_to_pg(bench: Bench) -> Result:
    """CSV file → PostgreSQL: psql \\copy vs engine (the source checksum is PostgreSQL's
    table, which holds the same rows as the CSV)."""
    copy = shlex.quote(f"\\copy {BASE_SINK} ({COLS}) FROM '{bench.csv}' CSV HEADER")
    return pipe_vs_engine(
        bench, "csv-to-pg", "baseline psql \\copy", f"{PG} -qc {copy}", ("FILE", "POSTGRESQL"), "pg"
    )


def bench_channels(bench: Bench) -> Result:
    """The MariaDB → PostgreSQL job with setting.speed.channel 1 vs 2."""
    expected = checksum("mysql", bench.table)
    jobs = {
        n: transfer_job(bench, f"channel{n}", "MYSQL", "POSTGRESQL", **{"setting.speed.channel": n})
        for n in (1, 2)
    }

    def run(n: int) -> Callable[[], Sample]:
        return lambda: bench.engine(jobs[n], expected, "pg", ENGINE_SINK)

    result = alternate(
        "channels", bench.rows, bench.runs, [(f"engine channel={n}", run(n)) for n in (1, 2)]
    )
    result.ratio_note = "channel=2 / channel=1"
    one, two = result.sides
    if one.median() and two.median():
        ones = [s.seconds for s in one.good()]
        twos = [s.seconds for s in two.good()]
        ratio = (two.median() or 0) / (one.median() or 1)
        # Faster only when every channel=2 run beats every channel=1 run (one run each: by 10%).
        faster = max(twos) < min(ones) if len(ones) > 1 and len(twos) > 1 else ratio < 0.9
        if faster:
            result.notes.append(f"channel=2 is faster: {ratio:.2f}x the time of channel=1")
        else:
            result.notes.append(
                f"no significant speed-up from channel=2 ({ratio:.2f}x; channel=1 runs "
                f"{min(ones):.2f}-{max(ones):.2f} s, channel=2 runs {min(twos):.2f}-"
                f"{max(twos):.2f} s) on {os.cpu_count()} CPU(s) shared by both databases, "
                "the worker and this script; both figures are reported as measured"
            )
    return result


def bench_orchestration(bench: Bench) -> Result:
    """N sub-jobs of a few rows: a bare Celery group of no-op tasks vs the engine."""
    n, each = bench.subjobs, bench.subjob_rows
    rows = n * each
    gen.ensure_mysql(ORCH_SOURCE, rows)
    expected = checksum("mysql", ORCH_SOURCE)
    memory = bench.api.job(
        f"bench-orch-memory-{uuid.uuid4().hex[:6]}",
        [
            sub_job(
                f"part-{i:03d}",
                ("MEMORY", bench.sources["MEMORY"], f"orch{i}"),
                ("MEMORY", bench.sources["MEMORY"], f"orch{i}"),
                sources={"rows": each},
            )
            for i in range(n)
        ],
    )
    sql = bench.api.job(
        f"bench-orch-sql-{uuid.uuid4().hex[:6]}",
        [
            sub_job(
                f"part-{i:03d}",
                ("MYSQL", bench.sources["MYSQL"], ORCH_SOURCE),
                ("POSTGRESQL", bench.sources["POSTGRESQL"], ORCH_SINK),
                sources={"where": f"id BETWEEN {i * each + 1} AND {(i + 1) * each}"},
            )
            for i in range(n)
        ],
    )
    broker = bench.settings.broker()
    queue = f"bench-noop-{uuid.uuid4().hex[:8]}"
    os.environ.update(BENCH_BROKER_URL=broker, BENCH_BACKEND_URL=broker, BENCH_QUEUE=queue)
    from celery import group
    from noop_celery import noop

    def celery_group() -> Sample:
        with RssMonitor(noop_process.pid) as monitor:
            started = time.perf_counter()
            answer = group(noop.s(i) for i in range(n)).apply_async(queue=queue)
            values = answer.get(timeout=600)
            seconds = time.perf_counter() - started
        answer.forget()
        error = "" if sorted(values) == list(range(n)) else f"unexpected results {values[:5]}..."
        return Sample(
            seconds,
            monitor.peak,
            monitor.before,
            error,
            f"ok ({n} results)",
            rss_process=monitor.peak_process,
            pss_tree=monitor.peak_pss,
        )

    def memory_run() -> Sample:
        sample = bench.engine(memory, None, "", "")
        sample.checked = "ok (status Success)"
        return sample

    concurrency = bench.settings.worker_concurrency
    print(f"  baseline: Celery group of {n} no-op tasks, worker --concurrency={concurrency}")
    noop_process = noop_worker(broker, broker, queue, concurrency, bench.workdir)
    try:
        with running(noop_process):
            warm = group(noop.s(i) for i in range(4)).apply_async(queue=queue)
            warm.get(timeout=60)
            warm.forget()
            result = alternate(
                "orchestration",
                rows,
                bench.runs,
                [
                    (f"baseline celery group x{n}", celery_group),
                    (f"engine MEMORY x{n}", memory_run),
                    (
                        f"engine MariaDB->PG x{n}",
                        lambda: bench.engine(sql, expected, "pg", ORCH_SINK),
                    ),
                ],
            )
    finally:
        forget_queue(broker, queue)
    for side in result.sides[1:]:
        median = side.median()
        if median:
            result.notes.append(f"{side.label}: {median / n * 1000:.1f} ms per sub-job")
    return result


def bench_wide(bench: Bench) -> Result:
    """PostgreSQL → MariaDB of rows of 4 KB: pipe vs engine, the worker child's peak RSS."""
    table, rows = bench.wide_table, bench.wide_rows
    copy = shlex.quote(f"\\copy (SELECT {WIDE_COLS} FROM {table}) TO STDOUT")
    load = shlex.quote(f"LOAD DATA LOCAL INFILE '/dev/stdin' INTO TABLE {BASE_SINK} ({WIDE_COLS})")
    command = f"{PG} -qc {copy} | {MY} --local-infile=1 -e {load}"
    expected = checksum("pg", table, wide=True)
    print(f"  baseline: {command}")
    job = transfer_job(bench, "wide", "POSTGRESQL", "MYSQL", table=table)
    result = alternate(
        "wide",
        rows,
        bench.runs,
        [
            (
                "baseline psql | LOAD DATA",
                lambda: bench.pipe(command, expected, "mysql", BASE_SINK, wide=True),
            ),
            ("engine", lambda: bench.engine(job, expected, "mysql", ENGINE_SINK, wide=True)),
        ],
    )
    engine = result.sides[1]
    if engine.good():
        per_run = ", ".join(mib(s.rss_process) for s in engine.good())
        result.notes.append(
            f"worker child peak RSS {mib(engine.peak_process())} MiB moving {rows:,} rows of "
            f"{gen.WIDE_ROW_BYTES} bytes (runs: {per_run} MiB)"
        )
    return result


BENCHES: dict[str, Callable[[Bench], Result]] = {
    "mysql-to-pg": bench_mysql_to_pg,
    "pg-to-mysql": bench_pg_to_mysql,
    "csv-to-pg": bench_csv_to_pg,
    "channels": bench_channels,
    "orchestration": bench_orchestration,
    "wide": bench_wide,
}


def prepare(
    names: list[str], rows: int, table: str, csv: Path, wide_rows: int = 0, wide: str = ""
) -> None:
    """Generate the source tables and the CSV file the chosen benchmarks need."""
    if "wide" in names:
        gen.ensure_wide_postgres(wide, wide_rows)
    if {"mysql-to-pg", "channels"} & set(names):
        gen.ensure_mysql(table, rows)
    if {"pg-to-mysql", "csv-to-pg"} & set(names):
        fresh = gen.ensure_postgres(table, rows)
        if "csv-to-pg" in names and (fresh or gen.csv_rows(csv) != rows):
            gen.write_csv(table, csv, "pg")


def settle(limit: float = 90.0) -> float:
    """Let the databases finish what the previous benchmark left them, then wait for a quiet host.

    PostgreSQL checkpoints, InnoDB flushes its dirty pages, and then one second must pass with the
    CPUs at least 85 % idle (at most ``limit`` seconds in all). Without it a benchmark pays for
    the flushing of the one before: 100 tiny sub-jobs ran 1.45x a Celery group right after the
    transfers, 1.05x on a quiet host. Return the seconds waited.
    """
    start = time.monotonic()
    with gen.postgres() as pg:
        pg.execute("CHECKPOINT")
    with gen.mysql() as my, my.cursor() as cur:
        cur.execute("SELECT @@GLOBAL.innodb_max_dirty_pages_pct")
        (pct,) = cur.fetchone()
        cur.execute("SET GLOBAL innodb_max_dirty_pages_pct = 0")
        try:
            while time.monotonic() - start < limit:
                cur.execute("SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_pages_dirty'")
                if int(cur.fetchone()[1]) < 100:
                    break
                time.sleep(0.5)
        finally:
            cur.execute("SET GLOBAL innodb_max_dirty_pages_pct = %s", (pct,))
    while time.monotonic() - start < limit and psutil.cpu_times_percent(interval=1.0).idle < 85:
        pass
    return time.monotonic() - start


def summary(results: list[Result]) -> None:
    """Print the medians of every benchmark."""
    print("\n== summary: medians ==")
    print(
        f"{'benchmark':14} {'side':28} {'wall s':>8} {'ratio':>7} {'rows/s':>12} "
        f"{'tree RSS MiB':>13} {'before':>7} {'1 proc MiB':>10} {'tree PSS':>8}  checks"
    )
    for result in results:
        base = result.sides[0].median()
        for position, side in enumerate(result.sides):
            median = side.median()
            ratio = f"{median / base:7.2f}" if median and base and position else ""
            checks = "; ".join(
                sorted({s.error.splitlines()[0] if s.error else s.checked for s in side.samples})
            )
            print(
                f"{result.name if position == 0 else '':14} {side.label:28} "
                f"{median if median is not None else float('nan'):8.2f} {ratio:>7} "
                f"{rate(result.rows, median):>12} {mib(side.peak()):>13} "
                f"{mib(side.before()) if side.before() else '':>7} "
                f"{mib(side.peak_process()):>10} {mib(side.peak_pss()):>8}  {checks}"
            )
        for note in [f"ratio = {result.ratio_note}", *result.notes]:
            print(f"{'':14} NOTE {note}")


def main() -> int:
    """Parse the flags, prepare the data, start a worker, run the benchmarks, print medians."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n", 1)[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--only", default=",".join(NAMES), help="comma-separated: " + ", ".join(NAMES)
    )
    parser.add_argument("--subjobs", type=int, default=100, help="orchestration: sub-jobs per job")
    parser.add_argument("--subjob-rows", type=int, default=10, help="orchestration: rows each")
    parser.add_argument("--concurrency", type=int, default=2, help="worker_concurrency")
    parser.add_argument(
        "--wide-rows", type=int, default=1_000_000, help="wide: rows of 4 KB in bench_wide"
    )
    parser.add_argument("--keep", action="store_true", help="keep the sink tables at the end")
    args = parser.parse_args()
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = sorted(set(names) - set(NAMES))
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {', '.join(NAMES)}")
    table = gen.TABLE if args.rows == 1_000_000 else f"{gen.TABLE}_{args.rows}"
    csv = ROOT / "var" / "bench" / f"{table}.csv"
    wide = gen.WIDE if args.wide_rows == 1_000_000 else f"{gen.WIDE}_{args.wide_rows}"
    prepare(names, args.rows, table, csv, args.wide_rows, wide)

    redis_url = os.environ.get("EXCHANGIS_REDIS_URL", "redis://127.0.0.1:6379/0")
    workdir = Path(tempfile.mkdtemp(prefix="exg-bench-transfer-"))
    run = uuid.uuid4().hex[:8]
    overrides = {
        "task_queue": f"exgbench-{run}",
        "enable_memory_connector": True,
        "worker_concurrency": args.concurrency,
        "data_dir": str(workdir / "var"),
        "file_roots": str(csv.parent),  # the CSV's FILE data source
    }
    results: list[Result] = []
    with served(redis_url, overrides) as (admin, rt):
        api = Api(admin.base, admin.token)
        worker = exchangis_worker(rt.settings, workdir)
        print(f"worker log: {worker.logfile}; metadata {rt.settings.database_url}")
        try:
            with running(worker):
                bench = Bench(
                    api,
                    worker,
                    rt.settings,
                    workdir,
                    args.rows,
                    args.runs,
                    table,
                    csv,
                    args.subjobs,
                    args.subjob_rows,
                    args.wide_rows,
                    wide,
                )
                my, pg = gen.MYSQL, gen.POSTGRES
                connect = {"username": my["user"], "password": my["password"]}
                bench.sources = {
                    "MYSQL": api.datasource(
                        f"bench-my-{run}",
                        "MYSQL",
                        {"host": my["host"], "port": my["port"], "database": gen.MYSQL_DB}
                        | connect,
                    ),
                    "POSTGRESQL": api.datasource(
                        f"bench-pg-{run}",
                        "POSTGRESQL",
                        {
                            "host": pg["host"],
                            "port": pg["port"],
                            "username": pg["user"],
                            "password": "",
                            "database": gen.POSTGRES_DB,
                        },
                    ),
                    "FILE": api.datasource(f"bench-file-{run}", "FILE", {"root": str(csv.parent)}),
                    "MEMORY": api.datasource(f"bench-mem-{run}", "MEMORY", {}),
                }
                warm = api.job(
                    f"bench-warmup-{run}",
                    [
                        sub_job(
                            f"w{i}",
                            ("MEMORY", bench.sources["MEMORY"], "warm"),
                            ("MEMORY", bench.sources["MEMORY"], f"warm{i}"),
                            sources={"rows": 10},
                        )
                        for i in range(2 * args.concurrency)
                    ],
                )
                warm_sample = run_execution(api, warm, worker.pid)
                print(
                    f"worker ready; warm-up execution {warm_sample.seconds:.2f}s "
                    f"{warm_sample.error or 'ok'}; worker tree RSS {mib(warm_sample.rss_peak)} MiB"
                )
                for name in names:
                    if name == "orchestration":
                        heading = f"{args.subjobs} sub-jobs x {args.subjob_rows} rows"
                    elif name == "wide":
                        heading = f"{args.wide_rows:,} rows of 4 KB, table {wide}"
                    else:
                        heading = f"{args.rows:,} rows, table {table}"
                    waited = settle()
                    print(f"\n== {name}: {heading}, {args.runs} run(s) (settled {waited:.0f} s) ==")
                    results.append(BENCHES[name](bench))
        finally:
            forget_queue(rt.settings.broker(), rt.settings.task_queue)
            if not args.keep:
                for kind in ("mysql", "pg"):
                    for sink in (BASE_SINK, ENGINE_SINK):
                        drop(kind, sink)
                drop("pg", ORCH_SINK)
    summary(results)
    failed = [r.name for r in results if r.failed()]
    if failed:
        print(f"\nFAIL: {', '.join(failed)} (see the runs above)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
