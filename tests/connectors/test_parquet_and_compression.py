"""Parquet files and compressed CSV/JSONL: exact types, globs, atomic writes, codecs, row groups."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from exchangis.connectors.base import Endpoint, Estimate
from exchangis.connectors.files import (
    CsvSink,
    CsvSource,
    FileSink,
    FileSource,
    JsonlSource,
    ParquetSink,
    ParquetSource,
    RowGroups,
    RowGroupWriter,
    matching_files,
)
from exchangis.connectors.ledger import Fence
from exchangis.connectors.registry import Registry
from exchangis.errors import InvalidInputError, TerminalConnectorError

REPO = Path(__file__).resolve().parents[2]
SHANGHAI = dt.timezone(dt.timedelta(hours=8))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "root"
    path.mkdir()
    return path


def endpoint(root: Path, table: str, **options: object) -> Endpoint:
    return Endpoint("FILE", {"root": str(root)}, table, options=options)


def write(registry: Registry, ep: Endpoint, table: pa.Table, chunk: int = 2) -> None:
    with registry.sink(ep) as sink:
        sink.open(table.schema)
        for batch in table.to_batches(max_chunksize=chunk):
            sink.write(batch)
        sink.commit()


def read(registry: Registry, ep: Endpoint, batch_size: int = 1000) -> pa.Table:
    with registry.source(ep) as source:
        schema = source.open()
        batches = list(source.batches(batch_size))
        assert all(b.num_rows <= batch_size for b in batches)
        return pa.Table.from_batches(batches, schema=schema)


def strict(table: pa.Table) -> str:
    """Return the values as text that tells ``-0.0`` from ``0.0``, NaN from NULL, a scale
    (nanosecond timestamps as their integers: ``datetime`` stops at microseconds)."""
    columns = {}
    for name in table.column_names:
        column = table[name]
        if pa.types.is_timestamp(column.type) and column.type.unit == "ns":
            column = column.cast(pa.int64())
        columns[name] = column.to_pylist()
    return repr(columns)


TRICKY = pa.table(
    {
        "i8": pa.array([-128, 127, None, 0], pa.int8()),
        "u64": pa.array([0, 2**64 - 1, None, 1], pa.uint64()),
        "i64": pa.array([-(2**63), 2**63 - 1, None, 2**53 + 1], pa.int64()),
        "f64": pa.array([-0.0, float("inf"), None, float("nan")], pa.float64()),
        "f32": pa.array([1.5, -3.25, None, 5e-45], pa.float32()),
        "dec": pa.array(
            [Decimal("12345678901234567890.1234567890"), Decimal("-0E-10"), None, Decimal("0.5")],
            pa.decimal128(38, 10),
        ),
        "dec256": pa.array(
            [Decimal("9" * 75 + ".9"), Decimal("-0.1"), None, Decimal("1.0")],
            pa.decimal256(76, 1),
        ),
        "ts_tz": pa.array(
            [
                dt.datetime(2024, 2, 29, 23, 59, 59, 123456, tzinfo=SHANGHAI),
                dt.datetime(1, 1, 1, 8, tzinfo=SHANGHAI),
                None,
                dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=SHANGHAI),
            ],
            pa.timestamp("us", tz="Asia/Shanghai"),
        ),
        "ts_ns": pa.array([1, -1, None, 2**62], pa.timestamp("ns", tz="UTC")),
        "ts_s": pa.array([0, -(2**35), None, 2**35], pa.timestamp("s")),
        "ts_ms": pa.array([1, -1, None, 0], pa.timestamp("ms", tz="America/New_York")),
        "day": pa.array([dt.date(1, 1, 1), dt.date(9999, 12, 31), None, dt.date(1970, 1, 1)]),
        "day64": pa.array([0, 86_400_000, None, -86_400_000], pa.date64()),
        "t32": pa.array([0, 86_399, None, 1], pa.time32("s")),
        "t64": pa.array([dt.time(0), dt.time(23, 59, 59, 999999), None, dt.time(12)]),
        "dur": pa.array([dt.timedelta(0), dt.timedelta(days=-1), None, dt.timedelta(1)]),
        "txt": ["emoji 😀 中文", "", None, 'quote " comma , newline \n'],
        "ltxt": pa.array(["large", "", None, "\x00nul"], pa.large_string()),
        "bin": pa.array([b"\x00\xff", b"", None, bytes(range(256))], pa.binary()),
        "lbin": pa.array([b"\xc3\x28", b"", None, b"x"], pa.large_binary()),
        "fbin": pa.array([b"abcd", b"\x00\x00\x00\x00", None, b"\xff\xfe\xfd\xfc"], pa.binary(4)),
        "flag": pa.array([True, False, None, True]),
        "nothing": pa.array([None, None, None, None], pa.null()),
        "lst": pa.array([[1, None], [], None, [2**63 - 1]], pa.list_(pa.int64())),
        "obj": pa.array(
            [{"a": 1, "b": "x"}, {"a": None, "b": None}, None, {"a": -1, "b": ""}],
            pa.struct([("a", pa.int64()), ("b", pa.string())]),
        ),
        "dict": pa.array(["a", "b", None, "a"]).dictionary_encode(),
        "kv": pa.array(
            [[("k", 1)], [], None, [("k", None), ("l", 2)]], pa.map_(pa.string(), pa.int64())
        ),
    }
)


# --- exact types -------------------------------------------------------------------------------


@pytest.mark.parametrize("compression", [None, "none", "gzip", "zstd"])
@pytest.mark.parametrize("batch_size", [1, 3, 1000])
def test_a_tricky_table_round_trips_exactly_through_parquet(
    registry: Registry, root: Path, compression: str | None, batch_size: int
) -> None:
    options = {} if compression is None else {"compression": compression}

    write(registry, endpoint(root, "tricky.parquet", **options), TRICKY)
    got = read(registry, endpoint(root, "tricky.parquet"), batch_size)

    assert got.schema.equals(TRICKY.schema), (got.schema, TRICKY.schema)
    assert strict(got) == strict(TRICKY)
    codec = pq.ParquetFile(root / "tricky.parquet").metadata.row_group(0).column(0).compression
    assert codec == {None: "ZSTD", "none": "UNCOMPRESSED"}.get(
        compression, str(compression).upper()
    )


def test_a_file_to_file_parquet_copy_is_exact(registry: Registry, root: Path) -> None:
    pq.write_table(TRICKY, root / "by-pyarrow.parquet", row_group_size=3)

    with (
        registry.source(endpoint(root, "by-pyarrow.parquet")) as source,
        registry.sink(endpoint(root, "copy/out.pq")) as sink,
    ):
        sink.open(source.open())
        for batch in source.batches(2):
            sink.write(batch)
        sink.commit()

    copied = read(registry, endpoint(root, "copy/out.pq"))
    assert copied.schema.equals(TRICKY.schema)
    assert strict(copied) == strict(TRICKY)
    # pyarrow's own reader sees both files alike (it widens timestamp[s] to ms in each).
    original, copy = pq.read_table(root / "by-pyarrow.parquet"), pq.read_table(root / "copy/out.pq")
    assert copy.schema.equals(original.schema) and strict(copy) == strict(original)


def test_a_type_parquet_cannot_hold_fails_the_sink_clearly(registry: Registry, root: Path) -> None:
    schema = pa.schema([("span", pa.month_day_nano_interval())])

    with (
        registry.sink(endpoint(root, "x.parquet")) as sink,
        pytest.raises(TerminalConnectorError, match=r"open x\.parquet"),
    ):
        sink.open(schema)
    assert os.listdir(root) == []


def test_an_empty_parquet_table_keeps_its_columns(registry: Registry, root: Path) -> None:
    empty = TRICKY.slice(0, 0)

    write(registry, endpoint(root, "empty.parquet"), empty)

    got = read(registry, endpoint(root, "empty.parquet"))
    assert got.num_rows == 0 and got.schema.equals(TRICKY.schema)


# --- format and compression by suffix and by option ----------------------------------------


def test_the_format_comes_from_the_suffix_before_the_compression(
    registry: Registry, root: Path
) -> None:
    assert isinstance(registry.source(endpoint(root, "a.parquet")), ParquetSource)
    assert isinstance(registry.source(endpoint(root, "a.pq")), ParquetSource)
    assert isinstance(registry.source(endpoint(root, "a.bin", format="parquet")), ParquetSource)
    assert isinstance(registry.sink(endpoint(root, "a.data", format="pq")), ParquetSink)
    assert isinstance(FileSource(endpoint(root, "a.parquet")), ParquetSource)
    assert isinstance(FileSink(endpoint(root, "a.parquet")), ParquetSink)
    assert registry.sink(endpoint(root, "a.parquet")).traffic == "parquet"

    source = registry.source(endpoint(root, "in.jsonl.zst"))
    assert isinstance(source, JsonlSource) and source.codec == "zstd"
    sink = registry.sink(endpoint(root, "out.csv.gz"))
    assert isinstance(sink, CsvSink) and sink.codec == "gzip"
    assert isinstance(registry.source(endpoint(root, "x.tsv.gz")), CsvSource)
    assert registry.source(endpoint(root, "x.csv", compression="zstd")).codec == "zstd"
    assert registry.source(endpoint(root, "x.csv.gz", compression="gz")).codec == "gzip"
    assert registry.source(endpoint(root, "x.csv")).codec is None


@pytest.mark.parametrize(
    ("table", "options", "needle"),
    [
        ("a.csv", {"format": "parquet"}, "format parquet contradicts"),
        ("a.parquet", {"format": "jsonl"}, "format jsonl contradicts"),
        ("a.csv.gz", {"compression": "zstd"}, "compression zstd contradicts"),
        ("a.jsonl.zst", {"compression": "none"}, "compression none contradicts"),
        ("a.parquet.gz", {}, "compresses its columns itself"),
        ("a.csv", {"compression": "brotli"}, "compression must be one of none, gzip, zstd"),
        ("a.gz", {}, "cannot tell the format"),
    ],
)
def test_contradictions_and_unknown_codecs_are_refused(
    registry: Registry, root: Path, table: str, options: dict[str, Any], needle: str
) -> None:
    with pytest.raises(InvalidInputError, match=needle):
        registry.source(endpoint(root, table, **options))
    with pytest.raises(InvalidInputError, match=needle):
        registry.sink(endpoint(root, table, **options))


def test_compressed_by_suffix_other_tools_read_it(registry: Registry, root: Path) -> None:
    data = pa.table({"id": [1, 2], "name": ["a", "中文"]})

    write(registry, endpoint(root, "out.csv.gz"), data)
    write(registry, endpoint(root, "out.tsv.gz"), data)
    write(registry, endpoint(root, "out.jsonl.zst"), data)

    assert gzip.decompress((root / "out.csv.gz").read_bytes()).decode() == (
        '"id","name"\n1,"a"\n2,"中文"\n'
    )
    assert gzip.decompress((root / "out.tsv.gz").read_bytes()).decode().startswith('"id"\t"name"')
    assert (root / "out.jsonl.zst").read_bytes()[:4] == b"\x28\xb5\x2f\xfd"  # a zstd frame
    if shutil.which("zstd"):
        text = subprocess.run(
            ["zstd", "-dc", str(root / "out.jsonl.zst")], check=True, capture_output=True
        ).stdout.decode()
        assert [json.loads(line) for line in text.splitlines()] == data.to_pylist()
    for name in ("out.csv.gz", "out.tsv.gz", "out.jsonl.zst"):
        assert [r["name"] for r in read(registry, endpoint(root, name)).to_pylist()] == [
            "a",
            "中文",
        ]


def test_compressed_by_option_whatever_the_name(registry: Registry, root: Path) -> None:
    data = pa.table({"id": [1, 2]})

    write(registry, endpoint(root, "plain.csv", compression="gzip"), data)
    write(registry, endpoint(root, "plain.jsonl", compression="zstd"), data)

    assert gzip.decompress((root / "plain.csv").read_bytes()) == b'"id"\n1\n2\n'
    with pa.input_stream(str(root / "plain.jsonl"), compression="zstd") as stream:
        assert stream.read() == b'{"id": 1}\n{"id": 2}\n'
    assert read(registry, endpoint(root, "plain.csv", compression="gzip")).to_pylist() == [
        {"id": "1"},
        {"id": "2"},
    ]
    with pytest.raises(TerminalConnectorError, match=r"plain\.csv"):
        read(registry, endpoint(root, "plain.csv"))  # gzip bytes read as text: not CSV


@pytest.mark.parametrize("name", ["x.csv.gz", "x.jsonl.zst"])
def test_compressed_append_keeps_one_header_and_every_row(
    registry: Registry, root: Path, name: str
) -> None:
    write(registry, endpoint(root, name), pa.table({"id": [1, 2], "t": ["a", "b"]}))
    write(registry, endpoint(root, name), pa.table({"id": [3], "t": ["c"]}))
    write(registry, endpoint(root, name), pa.table({"id": [4], "t": ["d"]}), chunk=1)

    got = read(registry, endpoint(root, name)).to_pylist()
    assert [str(r["id"]) for r in got] == ["1", "2", "3", "4"]
    write(registry, endpoint(root, name, writeMode="overwrite"), pa.table({"id": [9], "t": ["z"]}))
    assert [str(r["id"]) for r in read(registry, endpoint(root, name)).to_pylist()] == ["9"]


def test_append_to_a_gzip_file_without_a_final_newline(registry: Registry, root: Path) -> None:
    (root / "x.csv.gz").write_bytes(gzip.compress(b'"a","b"\n"1","x"'))

    write(registry, endpoint(root, "x.csv.gz"), pa.table({"a": ["2"], "b": ["y"]}))

    assert gzip.decompress((root / "x.csv.gz").read_bytes()) == b'"a","b"\n"1","x"\n"2","y"\n'


def test_an_empty_compressed_jsonl_table_reads_as_no_rows(registry: Registry, root: Path) -> None:
    write(registry, endpoint(root, "none.jsonl.zst"), pa.table({"id": pa.array([], pa.int64())}))

    assert (root / "none.jsonl.zst").stat().st_size > 0  # an empty zstd frame
    assert read(registry, endpoint(root, "none.jsonl.zst")).num_rows == 0


# --- parquet write modes -----------------------------------------------------------------------


def test_parquet_append_writes_the_old_rows_then_the_new(registry: Registry, root: Path) -> None:
    first = pa.table({"id": pa.array([1, 2], pa.int64()), "at": TRICKY["ts_s"].slice(0, 2)})
    write(registry, endpoint(root, "x.parquet"), first)

    later = pa.table({"id": pa.array([3], pa.int32()), "at": TRICKY["ts_s"].slice(3, 1)})
    write(registry, endpoint(root, "x.parquet", writeMode="append"), later)

    got = read(registry, endpoint(root, "x.parquet"))
    assert got.schema.equals(first.schema)  # the file's types: the new rows were cast
    assert got["id"].to_pylist() == [1, 2, 3]
    assert got["at"].to_pylist() == [*first["at"].to_pylist(), later["at"][0].as_py()]


def test_parquet_append_with_other_columns_is_refused_before_writing(
    registry: Registry, root: Path
) -> None:
    write(registry, endpoint(root, "x.parquet"), pa.table({"id": [1]}))
    before = (root / "x.parquet").read_bytes()

    with (
        registry.sink(endpoint(root, "x.parquet")) as sink,
        pytest.raises(TerminalConnectorError, match=r"cannot append to x\.parquet"),
    ):
        sink.open(pa.schema([("id", pa.int64()), ("extra", pa.string())]))

    assert (root / "x.parquet").read_bytes() == before
    assert os.listdir(root) == ["x.parquet"]


def test_parquet_append_values_that_do_not_fit_fail_at_commit_leaving_the_file(
    registry: Registry, root: Path
) -> None:
    write(registry, endpoint(root, "x.parquet"), pa.table({"n": pa.array([1], pa.int8())}))
    before = (root / "x.parquet").read_bytes()

    with pytest.raises(TerminalConnectorError, match=r"commit x\.parquet"):
        write(registry, endpoint(root, "x.parquet"), pa.table({"n": pa.array([1000])}))

    assert (root / "x.parquet").read_bytes() == before
    assert os.listdir(root) == ["x.parquet"]


def test_parquet_overwrite_replaces_the_file_and_its_columns(
    registry: Registry, root: Path
) -> None:
    write(registry, endpoint(root, "x.parquet"), pa.table({"id": [1, 2]}))

    write(registry, endpoint(root, "x.parquet", writeMode="overwrite"), pa.table({"n": ["a"]}))

    assert read(registry, endpoint(root, "x.parquet")).to_pylist() == [{"n": "a"}]


def test_the_ledger_fences_parquet_commits_like_any_file(registry: Registry, root: Path) -> None:
    fence = Fence("e1/t1/0", "owner-1")
    with registry.sink(endpoint(root, "x.parquet")) as sink:
        assert sink.fence(fence) is None
        sink.open(pa.schema([("id", pa.int64())]))
        sink.write(pa.record_batch([pa.array([1, 2])], names=["id"]))
        sink.commit()

    with registry.sink(endpoint(root, "x.parquet")) as again:
        assert again.fence(Fence("e1/t1/0", "owner-2")) == 2  # committed: write nothing

    assert read(registry, endpoint(root, "x.parquet")).num_rows == 2
    assert sorted(os.listdir(root)) == [".x.parquet.exg-ledger", "x.parquet"]


# --- atomicity: a failure or a kill mid-write leaves the target ------------------------------

KILLED = """
import sys, json, time
import pyarrow as pa
from exchangis.connectors.base import Endpoint
from exchangis.connectors.registry import default_registry
spec = json.loads(sys.argv[1])
sink = default_registry().sink(Endpoint("FILE", {"root": spec["root"]}, spec["table"],
                                        options=spec["options"]))
schema = pa.schema([("id", pa.int64()), ("name", pa.string())])
sink.open(schema)
for start in range(100, 5100, 100):
    sink.write(pa.record_batch([pa.array(range(start, start + 100)),
                                pa.array(["killed"] * 100)], schema=schema))
print("written", flush=True)
time.sleep(120)
"""

NAMES = ["x.parquet", "x.csv.gz", "x.jsonl.zst"]


def _seed(registry: Registry, root: Path, name: str) -> bytes:
    write(registry, endpoint(root, name), pa.table({"id": [1, 2, 3], "name": ["a", "b", "c"]}))
    return (root / name).read_bytes()


@pytest.mark.parametrize("mode", ["append", "overwrite"])
@pytest.mark.parametrize("name", NAMES)
def test_a_killed_writer_leaves_the_target_unchanged(
    registry: Registry, root: Path, name: str, mode: str
) -> None:
    before = _seed(registry, root, name)
    spec = {"root": str(root), "table": name, "options": {"writeMode": mode}}
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED, json.dumps(spec)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "written"
        assert any(n.endswith(".tmp") for n in os.listdir(root))  # the rows went somewhere
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(30)
        if child.stdout is not None:
            child.stdout.close()

    assert (root / name).read_bytes() == before
    assert [str(r["id"]) for r in read(registry, endpoint(root, name)).to_pylist()] == [
        "1",
        "2",
        "3",
    ]
    # The next writer's fence sweeps the dead writer's temp file.
    with registry.sink(endpoint(root, name)) as sink:
        assert sink.fence(Fence("e1/t1/1", "next")) is None
    assert not any(n.endswith(".tmp") for n in os.listdir(root))


@pytest.mark.parametrize("name", NAMES)
def test_a_failure_mid_write_leaves_the_target_unchanged(
    registry: Registry, root: Path, name: str
) -> None:
    before = _seed(registry, root, name)
    schema = pa.schema([("id", pa.int64()), ("name", pa.string())])

    with registry.sink(endpoint(root, name, writeMode="overwrite")) as sink:
        sink.open(schema)
        sink.write(pa.record_batch([pa.array([7]), pa.array(["new"])], schema=schema))
        with pytest.raises(TerminalConnectorError, match="write"):
            sink.write(pa.record_batch([pa.array(["not", "ints"])], names=["id"]))
        sink.rollback()

    assert (root / name).read_bytes() == before
    assert os.listdir(root) == [name]


# --- globs -------------------------------------------------------------------------------------


def _part(root: Path, relative: str, ids: list[int]) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"id": pa.array(ids, pa.int64()), "part": [relative] * len(ids)}), path)


def test_a_glob_reads_every_matching_file_as_one_source(registry: Registry, root: Path) -> None:
    _part(root, "dt=2026-01-02/part-1.parquet", [3, 4, 5])
    _part(root, "dt=2026-01-01/part-0.parquet", [1])
    _part(root, "dt=2026-01-01/part-1.parquet", [2])
    _part(root, "dt=2025-12-31/part-0.parquet", [0])  # not matched
    _part(root, "dt=2026-01-01/.part-2.parquet", [99])  # hidden: never matched
    (root / "dt=2026-01-01/part-3.parquet.tmp").write_text("not parquet")  # not matched

    with registry.source(endpoint(root, "dt=2026-*/part-*.parquet")) as source:
        assert source.estimate() is None
        schema = source.open()
        assert source.estimate() == Estimate(5, exact=True)  # the footers', before any row
        got = pa.Table.from_batches(list(source.batches(2)), schema=schema)

    assert got["id"].to_pylist() == [1, 2, 3, 4, 5]  # in path order
    assert got.schema.names == ["id", "part"]


def test_a_glob_matching_nothing_is_a_terminal_error_naming_it(
    registry: Registry, root: Path
) -> None:
    _part(root, "a.parquet", [1])

    with pytest.raises(TerminalConnectorError, match=r"no file .* matches the glob 'b\*\.parquet'"):
        read(registry, endpoint(root, "b*.parquet"))


def test_files_with_other_columns_are_refused_naming_the_file(
    registry: Registry, root: Path
) -> None:
    _part(root, "p-0.parquet", [1])
    pq.write_table(pa.table({"id": pa.array([2], pa.int32())}), root / "p-1.parquet")

    with pytest.raises(TerminalConnectorError, match=r"p-1\.parquet has the columns \(id int32\)"):
        read(registry, endpoint(root, "p-*.parquet"))


def test_a_glob_that_escapes_the_root_is_refused(
    registry: Registry, root: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    _part(outside, "secret.parquet", [42])
    _part(root, "in/ok.parquet", [1])

    for pattern in ("../outside/*.parquet", "/tmp/*.parquet", "in/../../outside/*.parquet"):
        with pytest.raises(InvalidInputError):
            registry.source(endpoint(root, pattern))
    (root / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(InvalidInputError, match="outside"):
        registry.source(endpoint(root, "link/*.parquet"))
    with pytest.raises(TerminalConnectorError, match=r"matches link/secret\.parquet.*outside"):
        read(registry, endpoint(root, "*/*.parquet"))
    (root / "in/alias.parquet").symlink_to(outside / "secret.parquet")
    with pytest.raises(TerminalConnectorError, match="outside"):
        matching_files(str(root), "in/*.parquet")
    (root / "in/alias.parquet").unlink()
    assert read(registry, endpoint(root, "in/*.parquet"))["id"].to_pylist() == [1]


def test_a_sink_refuses_a_glob(registry: Registry, root: Path) -> None:
    with pytest.raises(InvalidInputError, match="is a glob"):
        registry.sink(endpoint(root, "out-*.parquet"))


# --- bounded row groups ------------------------------------------------------------------------


def _ints(rows: int) -> pa.RecordBatch:
    return pa.record_batch([pa.array(range(rows), pa.int64())], names=["n"])  # 8 bytes a row


def test_a_row_group_closes_at_the_byte_bound() -> None:
    groups = RowGroups(max_bytes=800, max_rows=1_000_000)

    done = groups.push(_ints(60)) + groups.push(_ints(60)) + groups.push(_ints(250))

    sizes = [sum(b.num_rows for b in group) for group in done]
    assert sizes == [100, 100, 100]  # 800 bytes each: batches cut at the bound
    assert all(sum(b.nbytes for b in group) == 800 for group in done)
    rest = groups.drain()
    assert sum(b.num_rows for b in rest) == 70 and groups.held_bytes == 0


def test_a_row_group_closes_at_the_row_cap_first_when_rows_are_narrow() -> None:
    groups = RowGroups(max_bytes=1 << 30, max_rows=7)

    done = groups.push(_ints(5)) + groups.push(_ints(12))

    assert [sum(b.num_rows for b in group) for group in done] == [7, 7]
    assert sum(b.num_rows for b in groups.drain()) == 3


def test_a_row_wider_than_the_bound_is_a_group_of_its_own() -> None:
    groups = RowGroups(max_bytes=100, max_rows=1000)
    wide = pa.record_batch([pa.array(["x" * 300, "y" * 300])], names=["t"])

    done = groups.push(_ints(2).rename_columns(["t"]).cast(pa.schema([("t", pa.string())])))
    done += groups.push(wide)

    assert [sum(b.num_rows for b in group) for group in done] == [2, 1, 1]
    assert groups.drain() == []


def test_the_writer_writes_one_row_group_per_bound(tmp_path: Path) -> None:
    batches = [_ints(1000) for _ in range(10)]  # 8,000 bytes each
    path = tmp_path / "groups.parquet"

    with path.open("wb") as handle:
        writer = RowGroupWriter(handle, batches[0].schema, "zstd", RowGroups(max_bytes=20_000))
        for batch in batches:
            writer.write(batch)
        writer.close()

    meta = pq.ParquetFile(path).metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [2500] * 4
    assert writer.row_groups == 4
    assert pq.read_table(path)["n"].to_pylist() == list(range(1000)) * 10


class SmallGroupsSink(ParquetSink):
    """The Parquet sink with row groups of 10,000 bytes (1,250 int64 rows)."""

    row_group_bytes = 10_000


def test_the_sink_writes_and_appends_in_bounded_row_groups(root: Path) -> None:
    assert (ParquetSink.row_group_bytes, ParquetSink.row_group_rows) == (64 << 20, 1 << 20)
    ep = endpoint(root, "x.parquet")

    for _ in range(2):  # write, then append: the merged file is cut the same way
        with SmallGroupsSink(ep) as sink:
            sink.open(_ints(1).schema)
            for _ in range(5):
                sink.write(_ints(1000))  # 8,000 bytes each
            sink.commit()

    meta = pq.ParquetFile(root / "x.parquet").metadata
    rows = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    # Read-back batches carry a validity bitmap (8.125 bytes a row): 1,230 rows, not 1,250.
    assert sum(rows) == 10_000 and len(rows) == 9
    assert all(1200 <= n <= 1250 for n in rows[:-1]), rows
    assert pq.read_table(root / "x.parquet")["n"].to_pylist() == list(range(1000)) * 10


# --- estimate and progress -------------------------------------------------------------------


def test_parquet_estimate_is_the_row_count_of_the_footers(registry: Registry, root: Path) -> None:
    pq.write_table(pa.table({"id": range(25_000)}), root / "x.parquet", row_group_size=4_000)

    with registry.source(endpoint(root, "x.parquet")) as source:
        source.open()
        assert source.estimate() == Estimate(25_000, exact=True)
        rows = 0
        for batch in source.batches(3_000):
            rows += batch.num_rows
            assert source.progress() is None  # the runner's rows / estimate is exact
        assert rows == 25_000


@pytest.mark.parametrize("name", ["big.csv.gz", "big.jsonl.zst"])
def test_compressed_progress_follows_the_compressed_bytes_read(
    registry: Registry, root: Path, name: str
) -> None:
    rows = 200_000
    data = pa.table({"id": range(rows), "t": [f"row {i} " * 4 for i in range(rows)]})
    write(registry, endpoint(root, name), data, chunk=50_000)

    with registry.source(endpoint(root, name)) as source:
        source.open()
        assert source.estimate() is None
        assert source.progress() == 0.0
        seen = []
        total = 0
        for batch in source.batches(10_000):
            total += batch.num_rows
            seen.append(source.progress())
        assert source.progress() == 1.0

    assert total == rows
    assert seen == sorted(seen) and all(0.0 <= p <= 1.0 for p in seen)
    assert seen[0] < 0.5 and len(set(seen)) >= 3
