"""Test data on the real databases: mixed-type tables, checksums of their rows."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import psycopg
import pymysql

from tests.services import mysql_params, postgres_params

NAMES = ["Ada", "Björk", "Zoë", "李雷", "Ωmega 🚀", "O'Brien", "Smith, Jr.", 'quote "q"']

MYSQL_COLUMNS = (
    "id BIGINT PRIMARY KEY, name VARCHAR(100), amount DECIMAL(14,2), created DATETIME(6), "
    "day DATE, flag TINYINT(1), note TEXT NULL, ratio DOUBLE"
)
POSTGRES_COLUMNS = (
    "id BIGINT PRIMARY KEY, name VARCHAR(100), amount NUMERIC(14,2), created TIMESTAMP, "
    "day DATE, flag BOOLEAN, note TEXT NULL, ratio DOUBLE PRECISION"
)
KEYLESS_POSTGRES_COLUMNS = POSTGRES_COLUMNS.replace(" PRIMARY KEY", "")
"""The same columns without a key: a sink whose rows must land once shows a duplicate."""


def mixed_rows(count: int, start: int = 1) -> Iterator[tuple[Any, ...]]:
    """Yield rows of every type, with NULLs, extremes and Unicode."""
    base = dt.datetime(2024, 1, 1, 8, 30, 0)
    for i in range(start, start + count):
        yield (
            i if i != start else 9_007_199_254_740_993,
            NAMES[i % len(NAMES)],
            Decimal(f"{(i * 7919) % 10**12 - 5 * 10**11}.{i % 100:02d}") / (1 if i % 5 else -1),
            base + dt.timedelta(seconds=i * 37, microseconds=i % 1_000_000),
            dt.date(2000, 1, 1) + dt.timedelta(days=i % 9000),
            i % 3 == 0,
            None if i % 11 == 0 else f"note {i} ✓",
            i / 4,
        )


def normalize(row: Iterable[Any]) -> tuple[Any, ...]:
    """Normalize driver differences (tinyint vs bool, Decimal scale) for comparison."""
    out: list[Any] = []
    for value in row:
        if isinstance(value, bool):
            out.append(int(value))
        elif isinstance(value, Decimal):
            out.append(str(value.quantize(Decimal("0.01"))))
        else:
            out.append(value)
    return tuple(out)


def checksum(rows: Iterable[Iterable[Any]]) -> tuple[int, str]:
    """Return (row count, sha256) of the normalized rows in id order."""
    digest = hashlib.sha256()
    count = 0
    for row in sorted((normalize(r) for r in rows), key=lambda r: r[0]):
        digest.update(repr(row).encode())
        count += 1
    return count, digest.hexdigest()


@contextmanager
def mysql() -> Iterator[Any]:
    """Yield a pymysql connection to the test database (autocommit)."""
    p = mysql_params()
    conn = pymysql.connect(
        host=p["host"],
        port=p["port"],
        user=p["username"],
        password=p["password"],
        database=p["database"],
        autocommit=True,
        charset="utf8mb4",
    )
    try:
        yield conn
    finally:
        conn.close()


@contextmanager
def postgres() -> Iterator[Any]:
    """Yield a psycopg connection to the test database (autocommit)."""
    p = postgres_params()
    with psycopg.connect(
        host=p["host"], port=p["port"], user=p["username"], dbname=p["database"], autocommit=True
    ) as conn:
        yield conn


def mysql_table(name: str, rows: int = 0, columns: str = MYSQL_COLUMNS, start: int = 1) -> None:
    """(Re)create a MariaDB table and fill it with ``rows`` mixed rows."""
    with mysql() as conn, conn.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS `{name}`")
        cur.execute(f"CREATE TABLE `{name}` ({columns}) DEFAULT CHARSET=utf8mb4")
        batch = list(mixed_rows(rows, start))
        for i in range(0, len(batch), 2000):
            cur.executemany(
                f"INSERT INTO `{name}` VALUES (%s,%s,%s,%s,%s,%s,%s,%s)", batch[i : i + 2000]
            )


def postgres_table(
    name: str, rows: int = 0, columns: str = POSTGRES_COLUMNS, start: int = 1
) -> None:
    """(Re)create a PostgreSQL table and fill it with ``rows`` mixed rows."""
    with postgres() as conn, conn.cursor() as cur:
        cur.execute(f'DROP TABLE IF EXISTS "{name}"')
        cur.execute(f'CREATE TABLE "{name}" ({columns})')
        with cur.copy(f'COPY "{name}" FROM STDIN') as copy:
            for row in mixed_rows(rows, start):
                copy.write_row(row)


def mysql_rows(name: str) -> list[tuple[Any, ...]]:
    """Return every row of a MariaDB table."""
    with mysql() as conn, conn.cursor() as cur:
        cur.execute(f"SELECT * FROM `{name}`")
        return list(cur.fetchall())


def postgres_rows(name: str) -> list[tuple[Any, ...]]:
    """Return every row of a PostgreSQL table."""
    with postgres() as conn, conn.cursor() as cur:
        cur.execute(f'SELECT * FROM "{name}"')
        return list(cur.fetchall())


def drop(mysql_tables: Iterable[str] = (), postgres_tables: Iterable[str] = ()) -> None:
    """Drop test tables."""
    with mysql() as conn, conn.cursor() as cur:
        for name in mysql_tables:
            cur.execute(f"DROP TABLE IF EXISTS `{name}`")
    with postgres() as conn, conn.cursor() as cur:
        for name in postgres_tables:
            cur.execute(f'DROP TABLE IF EXISTS "{name}"')
