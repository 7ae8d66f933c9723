"""CSV and JSONL specifics: confinement to the root, options, atomic temp files, progress."""

from __future__ import annotations

import base64
import json
import os
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from exchangis.connectors import files
from exchangis.connectors.base import Endpoint
from exchangis.connectors.files import CsvSink, CsvSource, JsonlSink, JsonlSource, resolve_inside
from exchangis.connectors.registry import Registry
from exchangis.errors import ConnectorError, InvalidInputError, TerminalConnectorError


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "root"
    path.mkdir()
    return path


def endpoint(root: Path, table: str, **options: object) -> Endpoint:
    return Endpoint("FILE", {"root": str(root)}, table, options=options)


def write(registry: Registry, ep: Endpoint, table: pa.Table) -> None:
    with registry.sink(ep) as sink:
        sink.open(table.schema)
        for batch in table.to_batches():
            sink.write(batch)
        sink.commit()


def read(registry: Registry, ep: Endpoint) -> pa.Table:
    with registry.source(ep) as source:
        schema = source.open()
        return pa.Table.from_batches(list(source.batches(1000)), schema=schema)


# --- confinement -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "relative", ["../x.csv", "/etc/passwd", "a/../../x.csv", "a/../b.csv", "..", "", "C:/x.csv"]
)
def test_paths_outside_the_root_are_rejected(registry: Registry, root: Path, relative: str) -> None:
    with pytest.raises(InvalidInputError):
        resolve_inside(str(root), relative)
    with pytest.raises(InvalidInputError):
        registry.source(endpoint(root, relative, format="csv"))
    with pytest.raises(InvalidInputError):
        registry.sink(endpoint(root, relative, format="csv"))


def test_symlinks_pointing_outside_the_root_are_rejected(
    registry: Registry, root: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.csv").write_text("a\n1\n")
    (root / "link.csv").symlink_to(outside / "secret.csv")
    (root / "dir").symlink_to(outside, target_is_directory=True)

    for relative in ("link.csv", "dir/secret.csv", "dir/new.csv"):
        with pytest.raises(InvalidInputError, match="outside"):
            resolve_inside(str(root), relative)
        with pytest.raises(InvalidInputError):
            registry.sink(endpoint(root, relative))


def test_paths_inside_the_root_resolve(root: Path) -> None:
    (root / "in.csv").write_text("a\n")
    (root / "alias.csv").symlink_to(root / "in.csv")

    assert resolve_inside(str(root), "sub/dir/x.csv") == root.resolve() / "sub/dir/x.csv"
    assert resolve_inside(str(root), "alias.csv") == root.resolve() / "in.csv"


def test_sink_creates_parent_directories_inside_the_root(registry: Registry, root: Path) -> None:
    write(registry, endpoint(root, "a/b/c.csv"), pa.table({"x": [1]}))

    assert (root / "a/b/c.csv").read_text() == '"x"\n1\n'


def test_missing_root_is_invalid_input(registry: Registry, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="not a directory"):
        registry.source(endpoint(tmp_path / "nope", "x.csv"))
    with pytest.raises(ConnectorError):
        files.test_connection({"root": str(tmp_path / "nope")})
    files.test_connection({"root": str(tmp_path)})


# --- formats and options -----------------------------------------------------------------------


def test_format_comes_from_the_option_or_the_extension(registry: Registry, root: Path) -> None:
    assert isinstance(registry.source(endpoint(root, "a.csv")), CsvSource)
    assert isinstance(registry.source(endpoint(root, "a.tsv")), CsvSource)
    assert isinstance(registry.source(endpoint(root, "a.ndjson")), JsonlSource)
    assert isinstance(registry.source(endpoint(root, "a.txt", format="jsonl")), JsonlSource)
    assert isinstance(registry.sink(endpoint(root, "a.json")), JsonlSink)
    assert isinstance(registry.sink(endpoint(root, "a.dat", format="csv")), CsvSink)
    assert registry.sink(endpoint(root, "a.json")).traffic == "jsonl"
    with pytest.raises(InvalidInputError, match="format"):
        registry.source(endpoint(root, "a.txt"))
    with pytest.raises(InvalidInputError, match="format"):
        registry.source(endpoint(root, "a.csv", format="parquet"))


def test_csv_without_header_names_columns_col1_to_n(registry: Registry, root: Path) -> None:
    (root / "x.csv").write_text("1;a\n2;\n")

    result = read(registry, endpoint(root, "x.csv", header=False, delimiter=";"))

    assert result.to_pylist() == [{"col1": "1", "col2": "a"}, {"col1": "2", "col2": None}]


def test_csv_reads_numbers_as_exact_text(registry: Registry, root: Path) -> None:
    (root / "x.csv").write_text("id,amount\n1,12345678.90\n2,0.10000000000000000001\n")

    result = read(registry, endpoint(root, "x.csv"))

    assert result.schema == pa.schema([("id", pa.string()), ("amount", pa.string())])
    assert result.column("amount").to_pylist() == ["12345678.90", "0.10000000000000000001"]


def test_csv_null_value_option(registry: Registry, root: Path) -> None:
    (root / "x.tsv").write_text("a\tb\n\\N\t\n")

    result = read(registry, endpoint(root, "x.tsv", nullValue="\\N"))

    assert result.to_pylist() == [{"a": None, "b": ""}]


@pytest.mark.parametrize(
    ("encoding", "quote", "delimiter"),
    [("gbk", '"', ","), ("latin-1", "'", ";"), ("utf-8", "'", "|")],
)
def test_csv_encodings_and_quotes_round_trip(
    registry: Registry, root: Path, encoding: str, quote: str, delimiter: str
) -> None:
    text = "中文" if encoding != "latin-1" else "héllo"
    data = pa.table({"a": [f"{text} 'q' \"d\", x", "", None], "b": ["1", "2", "3"]})
    ep = endpoint(root, "x.csv", encoding=encoding, quoteChar=quote, delimiter=delimiter)

    write(registry, ep, data)

    (root / "x.csv").read_bytes().decode(encoding)  # really in that encoding
    assert read(registry, ep).to_pylist() == data.to_pylist()


def test_csv_append_writes_no_second_header(registry: Registry, root: Path) -> None:
    (root / "x.csv").write_text('"a","b"\n"1","x"')  # no trailing newline

    write(registry, endpoint(root, "x.csv"), pa.table({"a": ["2"], "b": ["y"]}))

    assert (root / "x.csv").read_text() == '"a","b"\n"1","x"\n"2","y"\n'


def test_csv_writes_binary_as_base64(registry: Registry, root: Path) -> None:
    write(registry, endpoint(root, "x.csv"), pa.table({"b": pa.array([b"\x00\xff"], pa.binary())}))

    encoded = base64.b64encode(b"\x00\xff").decode()
    assert (root / "x.csv").read_text() == f'"b"\n"{encoded}"\n'


def test_jsonl_sink_writes_exact_readable_lines(registry: Registry, root: Path) -> None:
    data = pa.table(
        {
            "amount": pa.array([Decimal("12345678.90"), None], pa.decimal128(12, 2)),
            "text": ["😀 中文", None],
            "blob": pa.array([b"\x00\xff", None], pa.binary()),
        }
    )

    write(registry, endpoint(root, "x.jsonl"), data)

    raw = (root / "x.jsonl").read_bytes()
    assert "😀 中文".encode() in raw
    lines = [json.loads(line) for line in raw.decode().splitlines()]
    assert lines == [
        {
            "amount": "12345678.90",
            "text": "😀 中文",
            "blob": base64.b64encode(b"\x00\xff").decode(),
        },
        {"amount": None, "text": None, "blob": None},
    ]


def test_jsonl_nan_is_a_terminal_error(registry: Registry, root: Path) -> None:
    with registry.sink(endpoint(root, "x.jsonl")) as sink:
        sink.open(pa.schema([("f", pa.float64())]))
        with pytest.raises(TerminalConnectorError):
            sink.write(pa.record_batch([pa.array([float("nan")])], names=["f"]))


def test_bad_csv_is_a_terminal_error(registry: Registry, root: Path) -> None:
    (root / "x.csv").write_text("a,b\n1,2\n3\n")

    with pytest.raises(TerminalConnectorError, match=r"x\.csv"):
        read(registry, endpoint(root, "x.csv"))


def test_missing_file_is_a_terminal_error(registry: Registry, root: Path) -> None:
    with pytest.raises(TerminalConnectorError, match="does not exist"):
        read(registry, endpoint(root, "nope.jsonl"))


def test_invalid_options_are_rejected(registry: Registry, root: Path) -> None:
    with pytest.raises(InvalidInputError, match="delimiter"):
        registry.sink(endpoint(root, "x.csv", delimiter=";;"))
    with pytest.raises(InvalidInputError, match="encoding"):
        registry.source(endpoint(root, "x.csv", encoding="klingon"))
    with pytest.raises(InvalidInputError, match="header"):
        registry.sink(endpoint(root, "x.csv", header="maybe"))


# --- atomicity and progress ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["x.csv", "x.jsonl"])
def test_nothing_is_visible_before_commit_and_no_temp_file_survives(
    registry: Registry, root: Path, name: str
) -> None:
    sink = registry.sink(endpoint(root, name))
    sink.open(pa.schema([("a", pa.int64())]))
    sink.write(pa.record_batch([pa.array([1, 2])], names=["a"]))

    assert not (root / name).exists()
    sink.commit()
    sink.close()
    assert (root / name).exists()
    assert sorted(os.listdir(root)) == [name]


@pytest.mark.parametrize("name", ["big.csv", "big.jsonl"])
def test_progress_follows_the_bytes_read(registry: Registry, root: Path, name: str) -> None:
    rows = 200_000
    write(registry, endpoint(root, name), pa.table({"id": range(rows), "t": ["x" * 20] * rows}))

    with registry.source(endpoint(root, name)) as source:
        source.open()
        assert source.progress() == 0.0
        sizes, seen = [], []
        for batch in source.batches(10_000):
            sizes.append(batch.num_rows)
            seen.append(source.progress())
        assert source.progress() == 1.0

    assert sum(sizes) == rows and max(sizes) <= 10_000
    assert seen == sorted(seen)
    assert seen[0] < 0.5 and len(set(seen)) >= 3
