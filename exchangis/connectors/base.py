"""Source/Sink contracts every connector implements, and the endpoint spec they are built from.

Data moves as Apache Arrow record batches: a source yields bounded ``pa.RecordBatch`` objects,
a sink writes them inside one transaction (or a temp file) that ``commit`` publishes and
``rollback`` discards, so a failed or cancelled task leaves the sink as it was.
"""

from __future__ import annotations

import ipaddress
import json
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Self

from exchangis.connectors import options as opts
from exchangis.errors import MASK, InvalidInputError

if TYPE_CHECKING:
    import pyarrow as pa

    from exchangis.connectors.catalog import Catalog
    from exchangis.connectors.ledger import Fence

_SECRET_KEY = re.compile(r"(?i)pass|pwd|secret|token|credential|private|api_?key")
"""Keys inside nested connect params (e.g. ``params``) whose values are treated as secrets."""


_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?"
_HOST = re.compile(rf"^(?=.{{1,253}}\Z){_LABEL}(?:\.{_LABEL})*\Z")
"""A host name: dot-separated labels of letters, digits, ``-`` and ``_`` (as in service names)."""


def check_host(value: str) -> str:
    """Return ``value`` when it is a host name or an IP address.

    Nothing else reaches a driver: no socket path (a local socket would log in as the worker's
    own system user), no list of hosts, no URL syntax (``@ / ? # :``) to smuggle options into
    the connection URLs of the bulk drivers.

    Raises:
        InvalidInputError: anything else.
    """
    try:
        ipaddress.ip_address(value)
        return value
    except ValueError:
        pass
    if not _HOST.match(value):
        raise InvalidInputError(f"invalid host {value!r}: a host name or an IP address")
    return value


MAX_CONNECT_TIMEOUT = 60
"""Longest connect timeout a data source may ask for (a call to a dead host holds a worker's
call slot that long)."""


def connect_timeout(value: Any, default: int = 10) -> int:
    """Return a data source's ``connect_timeout`` param as seconds in 1..MAX_CONNECT_TIMEOUT."""
    try:
        seconds = int(value) if value not in (None, "") else default
    except (TypeError, ValueError):
        seconds = default
    return min(max(seconds, 1), MAX_CONNECT_TIMEOUT)


@dataclass(frozen=True)
class ParamSpec:
    """One connect parameter of a data source type."""

    name: str
    kind: type = str
    required: bool = True
    secret: bool = False
    default: Any = None
    check: Callable[[str], str] | None = field(default=None, compare=False)
    """Validates a value (raises InvalidInputError), e.g. :func:`check_host`."""
    local_path: bool = False
    """A path on the workers' disks: it must lie inside one of ``file_roots``."""

    def parse(self, value: Any) -> Any:
        """Return a given value checked; an integer may come as its text (``"3306"``), an
        object as its JSON text (``'{"sslmode": "require"}'``).

        Raises:
            ValueError: the value's type or range is wrong (the message says what it must be).
            InvalidInputError: ``check`` refused it.
        """
        if self.kind is int:
            if isinstance(value, str) and re.fullmatch(r"\s*\d{1,10}\s*", value):
                value = int(value)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError("must be an integer")
            if self.name == "port" and not 0 < value < 65536:
                raise ValueError("must be 1..65535")
            return value
        if self.kind is dict:
            if isinstance(value, str) and value.lstrip().startswith("{"):
                try:
                    value = json.loads(value)
                except ValueError:
                    raise ValueError("must be an object (its JSON text does not parse)") from None
            if not isinstance(value, dict):
                raise ValueError("must be an object")
            return value
        if not isinstance(value, str) or len(value) > 1024:
            raise ValueError("must be a string of at most 1024 chars")
        if self.check is not None:
            self.check(value)
        return value

    def form(self) -> dict[str, Any]:
        """Return the parameter as a form field (``GET /connectors``)."""
        kinds = {int: "integer", bool: "boolean", dict: "object"}
        return {
            "name": self.name,
            "type": kinds.get(self.kind, "string"),
            "required": self.required,
            "secret": self.secret,
            "default": self.default,
        }


WRITE_MODES = ("append", "overwrite")
"""Write modes every atomic sink can take."""
SQL_WRITE_MODES = (*WRITE_MODES, "upsert")
"""Write modes of the SQL sinks: ``upsert`` needs ``primaryKeys`` and a key on them."""


@dataclass(frozen=True)
class Capabilities:
    """What a source or sink can do, declared: ``GET /connectors`` shows it, and a job that asks
    for more is refused when saved (:func:`exchangis.connectors.registry.Registry.check`)."""

    write_modes: tuple[str, ...] = ()
    """Sinks: the ``writeMode`` values taken (``upsert`` among them: an upsert sink)."""
    create_table: bool = False
    """Sinks: a missing table is created from the data's schema (option ``createTable``)."""
    atomic: bool = False
    """Sinks: nothing is visible before ``commit``; a failed or killed task leaves the sink as
    it was."""
    ledger: bool = False
    """Sinks: commits are fenced through a ledger (connectors/ledger.py): a task's rows land
    once even when its attempts overlap or a commit's outcome is unknown."""
    channels: bool = False
    """Sources: a sub-job can be cut into key ranges (``setting.speed.channel`` > 1)."""
    where: bool = False
    """Sources: rows can be filtered (option ``where``)."""
    estimate: bool = False
    """Sources: progress knows how far the read is (a row count or estimate, the bytes or the
    keys read)."""

    def describe(self) -> dict[str, Any]:
        """Return the capabilities as a dict (``upsert``: whether ``write_modes`` has it)."""
        return {**asdict(self), "write_modes": list(self.write_modes), "upsert": self.upsert}

    @property
    def upsert(self) -> bool:
        """Return whether the sink takes ``writeMode: upsert``."""
        return "upsert" in self.write_modes


@dataclass(frozen=True)
class DataSourceType:
    """A data source type: its name, connect parameters (secrets marked) and connectors.

    This is a connector module's whole declaration (its ``TYPE``): the registry lists the
    modules and reads it, so a new connector is one module plus its name in the registry."""

    name: str
    params: tuple[ParamSpec, ...]
    description: str = ""
    tester: Callable[[Mapping[str, Any]], None] | None = field(default=None, compare=False)
    """Check that connect params reach the backend; raise ConnectorError (no secrets) if not."""
    source: type[Source] | None = field(default=None, compare=False)
    sink: type[Sink] | None = field(default=None, compare=False)
    catalog: Catalog | None = field(default=None, compare=False)
    """Lists the data source's databases, tables and columns (None: it cannot be browsed)."""

    @property
    def secret_params(self) -> frozenset[str]:
        """Return the names of the connect parameters that must never be shown or logged."""
        return frozenset(p.name for p in self.params if p.secret)

    def _is_secret(self, key: str, nested: bool) -> bool:
        return key in self.secret_params if not nested else bool(_SECRET_KEY.search(key))

    def secret_values(self, connect: Mapping[str, Any], nested: bool = False) -> list[str]:
        """Return every secret value in ``connect`` (nested objects: keys that look secret)."""
        found: list[str] = []
        for key, value in connect.items():
            if isinstance(value, Mapping):
                found += self.secret_values(value, nested=True)
            elif value not in (None, "") and self._is_secret(key, nested):
                found.append(str(value))
        return found

    def map_secrets(
        self, connect: Mapping[str, Any], func: Callable[[str], str], nested: bool = False
    ) -> dict[str, Any]:
        """Return ``connect`` with ``func`` applied to every (non-empty) secret value."""
        return {
            key: self.map_secrets(value, func, nested=True)
            if isinstance(value, Mapping)
            else func(str(value))
            if value not in (None, "") and self._is_secret(key, nested)
            else value
            for key, value in connect.items()
        }

    def masked(self, connect: Mapping[str, Any]) -> dict[str, Any]:
        """Return ``connect`` with every secret value shown as ``******``."""
        return self.map_secrets(connect, lambda _: MASK)

    def unmasked(self, incoming: Mapping[str, Any], stored: Mapping[str, Any]) -> dict[str, Any]:
        """Return ``incoming`` where each ``******`` takes the stored value at the same place."""
        out: dict[str, Any] = {}
        for key, value in incoming.items():
            old = stored.get(key)
            if isinstance(value, Mapping):
                out[key] = self.unmasked(value, old if isinstance(old, Mapping) else {})
            else:
                out[key] = old if value == MASK else value
        return out


@dataclass(frozen=True)
class Endpoint:
    """Where a source reads or a sink writes: data source connect params plus the sub-job's part.

    ``connect`` holds secrets; never log it — use :meth:`describe`.
    """

    type: str
    connect: Mapping[str, Any]
    table: str
    db: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    split: Mapping[str, Any] | None = None
    """A source's share of a channelled sub-job: ``{key, lower, upper, nulls}`` (see
    :mod:`exchangis.engine.channels`); None reads everything."""
    like: str | None = None
    """A sink's model table: a missing table is created with its columns (channel stages)."""
    shared: bool = False
    """Several tasks write this sink table at once (channels): a missing table is created and
    committed first, under a lock, instead of inside the task's transaction."""

    @classmethod
    def of_plan(cls, kind: str, connect: Mapping[str, Any], spec: Mapping[str, Any]) -> Endpoint:
        """Return the endpoint of a task plan's ``source``/``sink`` spec (table, db, options)."""
        return cls(
            type=kind,
            connect=dict(connect),
            table=spec["table"],
            db=spec.get("db"),
            options=dict(spec.get("options") or {}),
        )

    def option(self, key: str, default: Any = None) -> Any:
        """Return a connector option, or ``default`` when absent or empty."""
        value = self.options.get(key)
        return default if value is None or value == "" else value

    def describe(self) -> str:
        """Return a one-line description that carries no credentials."""
        where = self.connect.get("host") or self.connect.get("path") or self.connect.get("root")
        parts = [self.type.lower()]
        if where:
            port = self.connect.get("port")
            parts.append(f"{where}:{port}" if port else str(where))
        if self.db:
            parts.append(f"db={self.db}")
        parts.append(f"table={self.table}")
        return " ".join(parts)


@dataclass(frozen=True)
class Estimate:
    """The rows a read selects, as its source knows them before reading."""

    rows: int
    exact: bool = False
    """Counted (or read from exact metadata, such as Parquet footers), not a statistic that
    may be far off."""


@dataclass(frozen=True)
class Reject:
    """One row a sink refused (an error record): its values and the sink's reason."""

    row: Mapping[str, Any]
    reason: str


class _Connector(ABC):
    """What a source and a sink share: the endpoint, its typed options, ``with`` to close."""

    type: ClassVar[str]
    """Data source type served (``MYSQL``, ``POSTGRESQL``, ``SQLITE``, ``FILE``...)."""
    options: ClassVar[tuple[opts.Option, ...]] = ()
    """Options (``params.sources`` or ``params.sinks``) it takes; others are refused at job save."""
    capabilities: ClassVar[Capabilities] = Capabilities()

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.opts = opts.parse(self.options, endpoint.options)
        """The options' typed values (every declared option: defaults filled)."""

    @property
    def traffic(self) -> str:
        """Return the name shown in metrics (``mysql``, ``postgresql``, ``csv``, ``jsonl``...)."""
        return self.type.lower()

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections and files (a sink rolls back anything uncommitted); safe twice."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Source(_Connector):
    """Reads one table or file as a stream of bounded Arrow record batches."""

    @abstractmethod
    def open(self) -> pa.Schema:
        """Connect and return the schema of the batches to come (after ``columns``)."""

    def estimate(self) -> Estimate | None:
        """Return the rows the read selects, as known before reading (cheap), or None."""
        return None

    def progress(self) -> float | None:
        """Return the position of the rows yielded so far within everything the read selects
        (0 to 1: the bytes of a file, the last key within the keys selected), or None when
        the source has no such yardstick. The runner reckons progress from it and
        :meth:`estimate` (:mod:`exchangis.engine.progress`)."""
        return None

    def batch_rows(self, batch_size: int) -> int:
        """Return the rows per batch: the runner's ``batch_size``, or ``batchSize`` when smaller."""
        if batch_size <= 0:
            raise InvalidInputError(f"batch size must be positive, got {batch_size}")
        wanted = self.opts.get("batchSize")
        return min(batch_size, wanted) if wanted else batch_size

    def split_points(self, channels: int) -> tuple[str, list[Any]]:
        """Return the key column and up to ``channels - 1`` bounds cutting the source evenly
        (instead of ``open``: a source either reads or is cut; sources that declare the
        capability ``channels``).

        Raises:
            InvalidInputError: the source cannot be cut.
        """
        raise InvalidInputError(f"{self.type} sources cannot be cut into channels")

    @abstractmethod
    def batches(self, batch_size: int) -> Iterator[pa.RecordBatch]:
        """Yield record batches of at most ``batch_size`` rows, streaming (never the whole set)."""


class Sink(_Connector):
    """Writes record batches atomically: nothing is visible until ``commit``."""

    def check_columns(self, names: Sequence[str]) -> None:
        """Check, without I/O, that the sink's options fit the columns a sub-job will write.

        Called when a job is saved with a column mapping (``names``: its sink columns).

        Raises:
            InvalidInputError: an option names a column that is not written.
        """

    def take_rejects(self) -> list[Reject]:
        """Return (and forget) the rows the last writes refused: the error records."""
        return []

    def fence(self, fence: Fence) -> int | None:
        """Before ``open``: take the task's ledger entry for this attempt; return the rows an
        earlier attempt committed (then write nothing), or None when this attempt writes.
        ``commit`` then commits only while the attempt still owns the entry. Sinks without a
        ledger (capability ``ledger`` False, or the option ``ledger: false``) return None."""
        return None

    @abstractmethod
    def open(self, schema: pa.Schema) -> None:
        """Connect and begin: create the table if missing, apply ``writeMode`` inside the txn."""

    @abstractmethod
    def write(self, batch: pa.RecordBatch) -> int:
        """Write one batch inside the open transaction; return the rows written."""

    @abstractmethod
    def commit(self) -> None:
        """Publish everything written since ``open``."""

    @abstractmethod
    def rollback(self) -> None:
        """Discard everything written since ``open``; the sink is left as it was."""
