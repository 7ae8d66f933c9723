"""Type mapping: every Arrow type a SQL sink accepts, through every SQL backend and back.

Each dialect declares one table, ``Dialect.column_types`` (family → ``Rule``): the column a sink
creates for an Arrow type and the Arrow type the source reads that column back as. Here a real
sink creates a table for each type of ``types.ACCEPTED`` (an ``id`` primary key, so that the bulk
reads run, and the typed column), writes the type's edge values and a NULL, and the real source
reads it back: the type read is the one the table declares and the values are the written ones
cast to it. MariaDB and PostgreSQL run each write path (``bulk`` on: LOAD DATA / ADBC binary
COPY; off: row inserts / psycopg COPY), each read back by both read paths (``bulk`` on:
connectorx where it reads the column exactly; off: the driver's cursor).

A rule that declares a ``loss`` fails the exact round trip (xfail, strict); what it loses instead
is pinned by a test of its own. Known faults of a write path are listed in :data:`KNOWN`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from decimal import Context, Decimal
from typing import Any

import pyarrow as pa
import pytest

from exchangis.connectors import mysql, postgres, sqlite
from exchangis.connectors.dialect import Dialect
from exchangis.connectors.types import ACCEPTED, Family, Rule, family
from exchangis.errors import BulkRowRefusedError, InvalidInputError
from tests.connectors.conftest import SQL_BACKENDS, Backend

Factory = Callable[[str], Backend]

DIALECTS: dict[str, Dialect] = {
    "mysql": mysql.DIALECT,
    "postgres": postgres.DIALECT,
    "sqlite": sqlite.DIALECT,
}
WRITE_PATHS: dict[str, tuple[bool | None, ...]] = {
    "mysql": (True, False),
    "postgres": (True, False),
    "sqlite": (None,),  # one path: no bulk option
}
KNOWN: dict[tuple[str, bool | None, pa.DataType], str] = {
    ("postgres", True, pa.large_binary()): "ADBC sink sends large_binary to bytea as UTF-8 text",
    ("postgres", True, pa.binary(16)): "ADBC sink sends fixed_size_binary to bytea as UTF-8 text",
}
"""Write paths that refuse a type today (``BulkRowRefusedError``: the runner then starts the
transfer again on the row path): (backend, bulk, type) → the fault."""
REFUSED = (
    pa.string_view(),
    pa.binary_view(),
    pa.duration("us"),
    pa.month_day_nano_interval(),
    pa.list_(pa.int64()),
    pa.struct([("a", pa.int64())]),
    pa.dictionary(pa.int32(), pa.string()),
    pa.map_(pa.string(), pa.int64()),
)
"""Arrow types no SQL column takes."""


def _ids(t: pa.DataType) -> str:
    return str(t).replace(" ", "")


def _zone(data_type: pa.DataType) -> dt.tzinfo | None:
    if data_type.tz is None:
        return None
    if data_type.tz == "UTC":
        return dt.UTC
    sign = -1 if data_type.tz.startswith("-") else 1
    hours, minutes = data_type.tz[1:].split(":")
    return dt.timezone(sign * dt.timedelta(hours=int(hours), minutes=int(minutes)))


def _integer_edges(t: pa.DataType) -> list[Any]:
    if pa.types.is_unsigned_integer(t):
        return [2**t.bit_width - 1, 0]
    return [-(2 ** (t.bit_width - 1)), 2 ** (t.bit_width - 1) - 1]


def _float_edges(t: pa.DataType) -> list[Any]:
    if pa.types.is_float16(t):
        return [65504.0, -0.5]
    return [1.7976931348623157e308, -2.2250738585072014e-308]


def _decimal_edges(t: pa.DataType) -> list[Any]:
    most = Decimal(10**t.precision - 1).scaleb(-t.scale, Context(prec=t.precision))
    return [most, most.copy_negate()]


def _timestamp_edges(t: pa.DataType) -> list[Any]:
    if t.unit == "ns":  # the range of 64-bit nanoseconds, in whole microseconds
        values = [dt.datetime(2262, 4, 11, 23, 47, 16, 854775), dt.datetime(1677, 9, 22)]
    else:
        micros = {"s": 0, "ms": 999_000, "us": 999_999}[t.unit]
        values = [dt.datetime(9999, 12, 31, 23, 59, 59, micros), dt.datetime(1000, 1, 2)]
    return [v.replace(tzinfo=_zone(t)) for v in values]  # local time in the zone


def _time_edges(t: pa.DataType) -> list[Any]:
    micros = {"s": 0, "ms": 999_000, "us": 999_999, "ns": 999_999}[t.unit]
    return [dt.time(23, 59, 59, micros), dt.time(0, 0)]


EDGES: dict[Family, Callable[[pa.DataType], list[Any]]] = {
    Family.BOOLEAN: lambda t: [True, False],
    Family.INTEGER: _integer_edges,
    Family.UINT64: _integer_edges,
    Family.FLOAT32: lambda t: [3.4028234663852886e38, 0.1],  # 0.1: no short float32 decimal
    Family.FLOAT64: _float_edges,
    Family.DECIMAL: _decimal_edges,
    Family.STRING: lambda t: ["héllo wörld 😀 中文", ""],
    Family.BINARY: lambda t: [b"\x00\xff\x80", b""],
    Family.FIXED_BINARY: lambda t: [b"\x00" * (t.byte_width - 1) + b"\xff", b"\xff" * t.byte_width],
    Family.DATE: lambda t: [dt.date(9999, 12, 31), dt.date(1000, 1, 1)],
    Family.TIMESTAMP: _timestamp_edges,
    Family.TIMESTAMP_TZ: _timestamp_edges,
    Family.TIME: _time_edges,
    Family.NULL: lambda t: [None, None],
}
"""Two non-null values of each family at its edges (where the type has them)."""


def edges(data_type: pa.DataType) -> list[Any]:
    """Return two non-null values of ``data_type`` at its edges (where the type has them)."""
    return EDGES[family(data_type)](data_type)


def sample(data_type: pa.DataType) -> pa.Table:
    """Return rows 1-2: the edge values of ``data_type``; row 3: NULL."""
    return pa.table(
        {
            "id": pa.array([1, 2, 3], pa.int64()),
            "v": pa.array([*edges(data_type), None], data_type),
        }
    )


def expected(written: pa.Array, read_type: pa.DataType) -> list[Any]:
    """Return what reading back ``written`` as ``read_type`` gives: the values cast to it."""
    try:
        return written.cast(read_type).to_pylist()
    except pa.ArrowInvalid as exc:
        raise AssertionError(f"the values written do not fit {read_type}: {exc}") from None


def comparable(read: pa.Array, written: pa.DataType) -> list[Any]:
    """Return the values read, as they compare with :func:`expected`'s: a float32 is compared
    as a float32 (readers that parse the server's text widen its shortest decimal)."""
    if pa.types.is_float32(written):
        return read.cast(pa.float32()).cast(read.type).to_pylist()
    return read.to_pylist()


def read_all(backend: Backend, table: str, **options: Any) -> pa.Table:
    """Return ``table`` read back through the backend's source, in ``id`` order."""
    return backend.read(table, **options).sort_by("id")


def _refused(dialect: Dialect, data_type: pa.DataType, key: bool) -> bool:
    """Return whether ``dialect`` refuses a (``key``) column for ``data_type``."""
    try:
        (dialect.key_column_type if key else dialect.column_type)(data_type)
    except InvalidInputError:
        return True
    return False


def cases(key: bool = False) -> Iterator[Any]:
    """Yield a ``pytest.param`` per (backend, write path, type), marked where it fails today."""
    for kind in SQL_BACKENDS:
        dialect = DIALECTS[kind]
        for bulk in WRITE_PATHS[kind]:
            for t in ACCEPTED:
                if key and pa.types.is_null(t):
                    continue  # a key column is NOT NULL
                refused = _refused(dialect, t, key)
                if key and refused:
                    continue  # the refusal is the column test's
                marks = []
                if not refused and dialect.rule(t, key).loss:
                    marks.append(
                        pytest.mark.xfail(
                            strict=True, raises=AssertionError, reason=dialect.rule(t, key).loss
                        )
                    )
                fault = KNOWN.get((kind, bulk, t))
                if fault is not None:
                    marks.append(
                        pytest.mark.xfail(strict=True, raises=BulkRowRefusedError, reason=fault)
                    )
                path = "" if bulk is None else ("-bulk" if bulk else "-rows")
                yield pytest.param(kind, bulk, t, marks=marks, id=f"{kind}{path}-{_ids(t)}")


def _options(bulk: bool | None) -> dict[str, Any]:
    return {} if bulk is None else {"bulk": bulk}


# --- the tables ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", SQL_BACKENDS)
def test_every_family_has_a_rule_in_every_dialect(kind: str) -> None:
    dialect = DIALECTS[kind]

    assert set(dialect.column_types) == set(Family)
    assert set(dialect.key_column_types) <= set(Family)
    for found, rule in dialect.column_types.items():
        assert isinstance(rule, Rule), found


def test_accepted_types_cover_every_family() -> None:
    assert {family(t) for t in ACCEPTED} == set(Family)


@pytest.mark.parametrize("kind", SQL_BACKENDS)
@pytest.mark.parametrize("data_type", REFUSED, ids=_ids)
def test_types_no_column_takes_are_refused_by_name(kind: str, data_type: pa.DataType) -> None:
    with pytest.raises(InvalidInputError, match="cannot store Arrow type") as refused:
        DIALECTS[kind].column_type(data_type)

    assert str(data_type) in str(refused.value)


def test_a_family_missing_from_a_table_is_refused_naming_dialect_and_family() -> None:
    class IntegersOnly(Dialect):
        name = "integers-only"
        column_types = {Family.INTEGER: Rule("BIGINT", pa.int64())}

    assert IntegersOnly().column_type(pa.int32()) == "BIGINT"
    with pytest.raises(InvalidInputError, match="integers-only has no column type for string"):
        IntegersOnly().column_type(pa.string())


@pytest.mark.parametrize(
    ("data_type", "column", "reason"),
    [
        (pa.decimal256(65, 30), "DECIMAL(65,30)", None),
        (pa.decimal256(66, 2), None, "precision 66 is above 65"),
        (pa.decimal128(38, 31), None, "scale 31 is above 30"),
    ],
    ids=_ids,
)
def test_mysql_decimals_past_its_limits_are_refused_naming_the_limit(
    data_type: pa.DataType, column: str | None, reason: str | None
) -> None:
    if reason is None:
        assert mysql.DIALECT.column_type(data_type) == column
        return
    with pytest.raises(InvalidInputError, match=reason):
        mysql.DIALECT.column_type(data_type)


@pytest.mark.parametrize(
    ("data_type", "column"),
    [
        (pa.string(), "VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"),
        (pa.large_string(), "VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"),
        (pa.binary(), "VARBINARY(255)"),
        (pa.binary(16), "BINARY(16)"),
        (pa.int32(), "BIGINT"),
    ],
    ids=_ids,
)
def test_mysql_keys_take_varchar_and_varbinary_for_text_and_blobs(
    data_type: pa.DataType, column: str
) -> None:
    assert mysql.DIALECT.key_column_type(data_type) == column
    assert mysql.DIALECT.read_type(data_type, key=True) == mysql.DIALECT.read_type(data_type)


# --- round trips through the real backends ---------------------------------------------------


@pytest.mark.parametrize(("kind", "bulk", "data_type"), list(cases()))
def test_every_accepted_type_round_trips_as_its_table_declares(
    make_backend: Factory, kind: str, bulk: bool | None, data_type: pa.DataType
) -> None:
    backend = make_backend(kind)
    dialect = DIALECTS[kind]
    table = backend.new_table("types")
    data = sample(data_type)
    try:
        read_type = dialect.read_type(data_type)
        dialect.column_type(data_type)
    except InvalidInputError as refused:  # a declared limit: the sink refuses it alike
        with pytest.raises(InvalidInputError, match=re.escape(str(refused))):
            backend.write(table, data, primaryKeys=["id"], **_options(bulk))
        return

    backend.write(table, data, primaryKeys=["id"], **_options(bulk))

    for read_bulk in WRITE_PATHS[kind]:
        result = read_all(backend, table, **_options(read_bulk))
        assert result.schema.field("v").type == read_type, f"read bulk={read_bulk}"
        assert result.column("id").to_pylist() == [1, 2, 3]
        got = comparable(result.column("v").combine_chunks(), data_type)
        assert got == expected(data.column("v").combine_chunks(), read_type), (
            f"read bulk={read_bulk}"
        )


@pytest.mark.parametrize(
    ("kind", "bulk", "data_type"),
    [p for p in cases(key=True) if p.values[1] is not False],  # the default write path
)
def test_every_accepted_type_round_trips_as_a_primary_key(
    make_backend: Factory, kind: str, bulk: bool | None, data_type: pa.DataType
) -> None:
    backend = make_backend(kind)
    table = backend.new_table("keys")
    data = sample(data_type).slice(0, 2)
    read_type = DIALECTS[kind].read_type(data_type, key=True)

    backend.write(table, data, primaryKeys=["v"], **_options(bulk))

    result = read_all(backend, table)
    assert result.schema.field("v").type == read_type
    got = comparable(result.column("v").combine_chunks(), data_type)
    assert got == expected(data.column("v").combine_chunks(), read_type)


# --- what the declared losses lose -----------------------------------------------------------


def test_mysql_float_reads_back_six_significant_digits(make_backend: Factory) -> None:
    backend = make_backend("mysql")
    table = backend.new_table("float")
    values = [16777215.0, 0.1, 123456.0, None]
    backend.write(
        table,
        pa.table({"id": pa.array([1, 2, 3, 4]), "v": pa.array(values, pa.float32())}),
        primaryKeys=["id"],
    )

    result = read_all(backend, table)

    assert mysql.DIALECT.rule(pa.float32()).loss
    assert result.column("v").to_pylist() == [16777200.0, 0.1, 123456.0, None]


def test_sqlite_refuses_uint64_values_past_int64_as_error_records(make_backend: Factory) -> None:
    backend = make_backend("sqlite")
    table = backend.new_table("uint64")
    data = pa.table(
        {"id": pa.array([1, 2, 3]), "v": pa.array([2**63 - 1, 2**63, None], pa.uint64())}
    )

    with backend.registry.sink(backend.endpoint(table, primaryKeys=["id"])) as sink:
        sink.open(data.schema)
        sink.write(data.to_batches()[0])
        rejects = sink.take_rejects()
        sink.commit()
    result = read_all(backend, table)

    assert sqlite.DIALECT.rule(pa.uint64()).loss
    assert [r.row for r in rejects] == [{"id": 2, "v": 2**63}]
    assert result.to_pylist() == [{"id": 1, "v": 2**63 - 1}, {"id": 3, "v": None}]
