"""Explicit registry of data source types, sources and sinks; drivers are imported lazily.

A connector is one module that declares ``TYPE`` (a :class:`DataSourceType` naming its source
and sink classes); :data:`MODULES` lists them. The registry imports the modules it is asked for
and nothing imports the registry back.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from exchangis.connectors.base import DataSourceType, Endpoint, Sink, Source
from exchangis.connectors.options import Side
from exchangis.errors import InvalidInputError, NotFoundError

MODULES = (
    "exchangis.connectors.mysql",
    "exchangis.connectors.postgres",
    "exchangis.connectors.sqlite",
    "exchangis.connectors.files",
)
"""The built-in connector modules, in the order ``GET /connectors`` lists them."""

TEST_MODULES = ("exchangis.connectors.memory",)
"""Connectors registered only when asked (tests, benchmarks)."""


@dataclass
class Registry:
    """Data source types by name, with the Source and Sink classes that serve them."""

    types: dict[str, DataSourceType] = field(default_factory=dict)
    sources: dict[str, type[Source]] = field(default_factory=dict)
    sinks: dict[str, type[Sink]] = field(default_factory=dict)

    def register(self, ds_type: DataSourceType) -> None:
        """Register a data source type and the connectors it declares."""
        self.types[ds_type.name] = ds_type
        if ds_type.source is not None:
            self.sources[ds_type.name] = ds_type.source
        if ds_type.sink is not None:
            self.sinks[ds_type.name] = ds_type.sink

    def load(self, modules: Iterable[str]) -> Registry:
        """Import each connector module and register its ``TYPE``; return self."""
        for name in modules:
            self.register(importlib.import_module(name).TYPE)
        return self

    def type(self, name: str) -> DataSourceType:
        """Return the data source type called ``name``."""
        try:
            return self.types[name]
        except KeyError:
            known = ", ".join(sorted(self.types))
            raise InvalidInputError(f"unknown data source type {name!r} (known: {known})") from None

    def source(self, endpoint: Endpoint) -> Source:
        """Build the source for ``endpoint``."""
        cls = self.sources.get(endpoint.type)
        if cls is None:
            raise InvalidInputError(f"data source type {endpoint.type} cannot be a source")
        return cls(endpoint)

    def sink(self, endpoint: Endpoint) -> Sink:
        """Build the sink for ``endpoint``."""
        cls = self.sinks.get(endpoint.type)
        if cls is None:
            raise InvalidInputError(f"data source type {endpoint.type} cannot be a sink")
        return cls(endpoint)

    def describe(self, name: str) -> dict[str, Any]:
        """Return connector ``name`` as a form: type, label, sides, options and capabilities.

        Raises:
            NotFoundError: no such connector.
        """
        ds_type = self.types.get(name)
        if ds_type is None:
            raise NotFoundError(f"connector {name} does not exist")
        source, sink = ds_type.source, ds_type.sink
        capabilities: dict[str, Any] = {
            "read": source is not None,
            "write": sink is not None,
            "browse": ds_type.catalog is not None,
        }
        for side in (source, sink):
            if side is not None:  # a source declares read-side fields, a sink write-side ones
                for key, value in side.capabilities.describe().items():
                    capabilities[key] = capabilities.get(key) or value
        return {
            "type": ds_type.name,
            "label": ds_type.description or ds_type.name,
            "source": source is not None,
            "sink": sink is not None,
            "params": [param.form() for param in ds_type.params],
            "options": [
                option.form(which)
                for which, cls in ((Side.SOURCE, source), (Side.SINK, sink))
                if cls is not None
                for option in cls.options
            ],
            "capabilities": capabilities,
        }

    def describe_all(self) -> list[dict[str, Any]]:
        """Return every registered connector as :meth:`describe` does."""
        return [self.describe(name) for name in self.types]


def default_registry(*, with_memory: bool = False) -> Registry:
    """Return a registry with the built-in connectors (``MEMORY`` only when asked: tests)."""
    return Registry().load(MODULES + (TEST_MODULES if with_memory else ()))
