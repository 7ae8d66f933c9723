"""Explicit registry of data source types, sources and sinks; drivers are imported lazily."""

from __future__ import annotations

from dataclasses import dataclass, field

from exchangis.connectors.base import DataSourceType, Endpoint, Sink, Source
from exchangis.errors import InvalidInputError


@dataclass
class Registry:
    """Data source types by name, with the Source and Sink classes that serve them."""

    types: dict[str, DataSourceType] = field(default_factory=dict)
    sources: dict[str, type[Source]] = field(default_factory=dict)
    sinks: dict[str, type[Sink]] = field(default_factory=dict)

    def register(
        self, ds_type: DataSourceType, source: type[Source] | None, sink: type[Sink] | None
    ) -> None:
        """Register a data source type and its connectors."""
        self.types[ds_type.name] = ds_type
        if source is not None:
            self.sources[ds_type.name] = source
        if sink is not None:
            self.sinks[ds_type.name] = sink

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


def default_registry(*, with_memory: bool = False) -> Registry:
    """Return a registry with the built-in connectors (``MEMORY`` only when asked: tests)."""
    from exchangis.connectors import files, mysql, postgres, sqlite

    registry = Registry()
    for module in (mysql, postgres, sqlite, files):
        module.register(registry)
    if with_memory:
        from exchangis.connectors import memory

        memory.register(registry)
    return registry
