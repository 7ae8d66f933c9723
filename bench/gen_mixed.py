"""Generate the ``bench_mixed`` table of the transfer benchmarks in MariaDB and/or PostgreSQL.

Run: ``make bench-gen`` (= ``.venv/bin/python bench/gen_mixed.py``) or e.g.
``.venv/bin/python bench/gen_mixed.py --rows 100000 --target pg --csv var/bench/t.csv``.

Rows are generated server-side (MariaDB's SEQUENCE engine, PostgreSQL's generate_series),
about 6 s per million rows on MariaDB and 3 s on PostgreSQL. Row ``n`` is the same on both
servers::

    id n | qty n % 100000 - 5000 | code 'code-' || n % 9973 | name 'name ' || md5(n)
    amount (n % 1000000) / 100 - 2000 | created 2020-01-01 + n seconds | flag n % 3
    note 'note ' || left(sha256(n), 40) || ' tail'     (50 characters)

No value is NULL and none holds a tab, newline or backslash. ``--csv`` writes the table
(PostgreSQL's if it is there, else MariaDB's) as a CSV file with a header line.

``--wide`` generates ``bench_wide`` instead: rows of 4 KB (``WIDE_ROW_BYTES``), the table of the
memory benchmark (``bench/transfer.py --only wide``)::

    id n | body 4,088 characters: md5(n) || md5(n + 1) repeated, cut     (8 + 4,088 bytes)
"""

from __future__ import annotations

import argparse
import csv
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pymysql
import pymysql.cursors

MYSQL: dict[str, Any] = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": ""}
MYSQL_DB = "test"
POSTGRES: dict[str, Any] = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
POSTGRES_DB = "test"

TABLE = "bench_mixed"
COLUMNS = ("id", "qty", "code", "name", "amount", "created", "flag", "note")
CHUNK = 1_000_000
"""Rows per INSERT ... SELECT statement."""

MYSQL_DDL = (
    "CREATE TABLE `{t}` (id BIGINT PRIMARY KEY, qty INT, code VARCHAR(64), name VARCHAR(128), "
    "amount DECIMAL(12,2), created DATETIME, flag TINYINT, note TEXT) "
    "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
)
POSTGRES_DDL = (
    'CREATE TABLE "{t}" (id BIGINT PRIMARY KEY, qty INT, code VARCHAR(64), name VARCHAR(128), '
    "amount NUMERIC(12,2), created TIMESTAMP, flag SMALLINT, note TEXT)"
)
MYSQL_FILL = (
    "INSERT INTO `{t}` SELECT seq, CAST(seq % 100000 AS SIGNED) - 5000, "
    "CONCAT('code-', seq % 9973), CONCAT('name ', MD5(seq)), "
    "CAST(seq % 1000000 AS SIGNED) / 100 - 2000, TIMESTAMP('2020-01-01') + INTERVAL seq SECOND, "
    "seq % 3, CONCAT('note ', LEFT(SHA2(seq, 256), 40), ' tail') FROM seq_{a}_to_{b}"
)
POSTGRES_FILL = (
    "INSERT INTO \"{t}\" SELECT g, g % 100000 - 5000, 'code-' || g % 9973, "
    "'name ' || md5(g::text), (g % 1000000)::numeric / 100 - 2000, "
    "timestamp '2020-01-01' + g * interval '1 second', g % 3, "
    "'note ' || left(encode(sha256(g::text::bytea), 'hex'), 40) || ' tail' "
    "FROM generate_series({a}::bigint, {b}::bigint) AS g"
)

WIDE = "bench_wide"
WIDE_COLUMNS = ("id", "body")
WIDE_ROW_BYTES = 4096
"""Bytes of a wide row's values: an 8-byte id and ``WIDE_ROW_BYTES - 8`` characters of text."""
WIDE_CHUNK = 250_000
"""Rows per INSERT ... SELECT of the wide table (a statement's rows stay about 1 GB)."""
MYSQL_WIDE_DDL = (
    "CREATE TABLE `{t}` (id BIGINT PRIMARY KEY, body TEXT) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
)
POSTGRES_WIDE_DDL = 'CREATE TABLE "{t}" (id BIGINT PRIMARY KEY, body TEXT)'
POSTGRES_WIDE_FILL = (
    'INSERT INTO "{t}" SELECT g, left(repeat(md5(g::text) || md5((g + 1)::text), 64), '
    f"{WIDE_ROW_BYTES - 8}) FROM generate_series({{a}}::bigint, {{b}}::bigint) AS g"
)


@contextmanager
def mysql() -> Iterator[Any]:
    """Yield an autocommit pymysql connection to the MariaDB ``test`` database."""
    conn = pymysql.connect(**MYSQL, database=MYSQL_DB, autocommit=True, charset="utf8mb4")
    try:
        yield conn
    finally:
        conn.close()


@contextmanager
def postgres() -> Iterator[Any]:
    """Yield an autocommit psycopg connection to the PostgreSQL ``test`` database."""
    with psycopg.connect(**POSTGRES, dbname=POSTGRES_DB, autocommit=True) as conn:
        yield conn


def chunks(rows: int) -> Iterator[tuple[int, int]]:
    """Yield (first, last) row numbers of each INSERT."""
    for first in range(1, rows + 1, CHUNK):
        yield first, min(rows, first + CHUNK - 1)


def create_mysql(table: str, rows: int = 0) -> None:
    """(Re)create ``table`` in MariaDB with ``rows`` generated rows."""
    with mysql() as conn, conn.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS `{table}`")
        cur.execute(MYSQL_DDL.format(t=table))
        for first, last in chunks(rows):
            cur.execute(MYSQL_FILL.format(t=table, a=first, b=last))
        if rows:
            cur.execute(f"ANALYZE TABLE `{table}`")
            cur.fetchall()


def create_postgres(table: str, rows: int = 0) -> None:
    """(Re)create ``table`` in PostgreSQL with ``rows`` generated rows."""
    with postgres() as conn, conn.cursor() as cur:
        cur.execute(f'DROP TABLE IF EXISTS "{table}"')
        cur.execute(POSTGRES_DDL.format(t=table))
        for first, last in chunks(rows):
            cur.execute(POSTGRES_FILL.format(t=table, a=first, b=last))
        if rows:
            cur.execute(f'VACUUM ANALYZE "{table}"')


def create_wide_mysql(table: str) -> None:
    """(Re)create an empty wide ``table`` in MariaDB (a sink of the wide benchmark)."""
    with mysql() as conn, conn.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS `{table}`")
        cur.execute(MYSQL_WIDE_DDL.format(t=table))


def create_wide_postgres(table: str, rows: int) -> None:
    """(Re)create the wide ``table`` in PostgreSQL with ``rows`` generated rows of 4 KB."""
    with postgres() as conn, conn.cursor() as cur:
        cur.execute(f'DROP TABLE IF EXISTS "{table}"')
        cur.execute(POSTGRES_WIDE_DDL.format(t=table))
        for first in range(1, rows + 1, WIDE_CHUNK):
            last = min(rows, first + WIDE_CHUNK - 1)
            cur.execute(POSTGRES_WIDE_FILL.format(t=table, a=first, b=last))
        if rows:
            cur.execute(f'VACUUM ANALYZE "{table}"')


def ensure_wide_postgres(table: str, rows: int) -> bool:
    """Generate the wide ``table`` in PostgreSQL unless it has ``rows`` rows; return if it did."""
    if count_postgres(table) == rows:
        return False
    started = time.perf_counter()
    create_wide_postgres(table, rows)
    print(f"generated PostgreSQL {table}: {rows:,} rows in {time.perf_counter() - started:.1f}s")
    return True


def count_mysql(table: str) -> int | None:
    """Return the row count of a MariaDB table, None when it does not exist."""
    with mysql() as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT COUNT(*) FROM information_schema.tables "
            "WHERE table_schema = DATABASE() AND table_name = %s",
            (table,),
        )
        if not cur.fetchone()[0]:
            return None
        cur.execute(f"SELECT COUNT(*) FROM `{table}`")
        return int(cur.fetchone()[0])


def count_postgres(table: str) -> int | None:
    """Return the row count of a PostgreSQL table, None when it does not exist."""
    with postgres() as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass(%s)", (f'public."{table}"',))
        row = cur.fetchone()
        if row is None or row[0] is None:
            return None
        cur.execute(f'SELECT COUNT(*) FROM "{table}"')
        found = cur.fetchone()
        return int(found[0]) if found else 0


def ensure_mysql(table: str, rows: int) -> bool:
    """Generate ``table`` in MariaDB unless it already has ``rows`` rows; return if it did."""
    if count_mysql(table) == rows:
        return False
    started = time.perf_counter()
    create_mysql(table, rows)
    print(f"generated MariaDB {table}: {rows:,} rows in {time.perf_counter() - started:.1f}s")
    return True


def ensure_postgres(table: str, rows: int) -> bool:
    """Generate ``table`` in PostgreSQL unless it already has ``rows`` rows; return if it did."""
    if count_postgres(table) == rows:
        return False
    started = time.perf_counter()
    create_postgres(table, rows)
    print(f"generated PostgreSQL {table}: {rows:,} rows in {time.perf_counter() - started:.1f}s")
    return True


def write_csv(table: str, path: Path, source: str = "pg") -> None:
    """Write ``table`` of ``source`` (``pg`` or ``mysql``) to ``path`` as CSV with a header."""
    path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    tmp = path.with_name(path.name + ".tmp")
    if source == "pg":
        with postgres() as conn, conn.cursor() as cur, tmp.open("wb") as out:
            select = f'SELECT {", ".join(COLUMNS)} FROM "{table}" ORDER BY id'
            with cur.copy(f"COPY ({select}) TO STDOUT (FORMAT csv, HEADER)") as copy:
                for block in copy:
                    out.write(block)
    else:
        with mysql() as conn, tmp.open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(COLUMNS)
            with conn.cursor(pymysql.cursors.SSCursor) as cur:
                cur.execute(f"SELECT {', '.join(COLUMNS)} FROM `{table}` ORDER BY id")
                while rows := cur.fetchmany(10_000):
                    writer.writerows(rows)
    tmp.replace(path)
    size = path.stat().st_size / 2**20
    print(f"wrote {path} ({size:.0f} MiB) in {time.perf_counter() - started:.1f}s")


def csv_rows(path: Path) -> int | None:
    """Return the data lines of a CSV file (its lines minus the header), None when missing."""
    if not path.is_file():
        return None
    lines = 0
    with path.open("rb") as file:
        while block := file.read(1 << 22):
            lines += block.count(b"\n")
    return lines - 1


def main() -> None:
    """Create the table(s), and the CSV file when asked."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--table", default=TABLE)
    parser.add_argument("--target", choices=("mysql", "pg", "both"), default="both")
    parser.add_argument("--csv", type=Path, help="also write the table to this CSV file")
    parser.add_argument(
        "--wide", action="store_true", help=f"generate {WIDE} (4 KB rows, PostgreSQL) instead"
    )
    parser.add_argument(
        "--force", action="store_true", help="regenerate even when the row count already matches"
    )
    args = parser.parse_args()
    if args.wide:
        table = WIDE if args.table == TABLE else args.table
        if args.force:
            create_wide_postgres(table, args.rows)
            print(f"generated pg {table}: {args.rows:,} rows")
        elif not ensure_wide_postgres(table, args.rows):
            print(f"pg {table} already has {args.rows:,} rows (--force regenerates)")
        return
    targets = ("mysql", "pg") if args.target == "both" else (args.target,)
    for target in targets:
        if args.force:
            started = time.perf_counter()
            (create_mysql if target == "mysql" else create_postgres)(args.table, args.rows)
            print(
                f"generated {target} {args.table}: {args.rows:,} rows in "
                f"{time.perf_counter() - started:.1f}s"
            )
        elif not (ensure_mysql if target == "mysql" else ensure_postgres)(args.table, args.rows):
            print(f"{target} {args.table} already has {args.rows:,} rows (--force regenerates)")
    if args.csv:
        write_csv(args.table, args.csv, "pg" if "pg" in targets else "mysql")


if __name__ == "__main__":
    main()
