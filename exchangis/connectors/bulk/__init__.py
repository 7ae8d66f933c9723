"""Bulk fast paths shared by the SQL connectors: Arrow in and out without per-value Python.

* reads: connectorx streams a SELECT as Arrow record batches (Rust drivers, bounded memory):
  :mod:`.reads`, cut into chunks by :mod:`.chunks`;
* PostgreSQL writes: the ADBC driver's ``adbc_ingest`` (binary ``COPY`` straight from Arrow);
* MySQL writes: ``LOAD DATA LOCAL INFILE`` of a tab-separated file built by Arrow compute
  kernels (:mod:`.tsv`), handed from the encoding thread to the loading one by :mod:`.feed`.

Each path is optional: the libraries come as PyPI wheels, and when one cannot be imported (or
the ``bulk`` option is false) the connectors fall back to their per-row driver paths
(:mod:`.drivers`). Text as the sinks write it is in :mod:`.text`.
"""

from exchangis.connectors.bulk.chunks import (
    CHUNK_BYTES,
    CHUNK_ROWS,
    FIRST_VALUE_BYTES,
    MORE,
    READ_BATCH_BYTES,
    TARGET,
    Chunks,
)
from exchangis.connectors.bulk.drivers import available, url
from exchangis.connectors.bulk.feed import Feed, FeedAborted
from exchangis.connectors.bulk.reads import READ_BATCH_ROWS, conform, stream
from exchangis.connectors.bulk.text import decimal_text, text_of
from exchangis.connectors.bulk.tsv import encode_tsv, tsv_supported

__all__ = [
    "CHUNK_BYTES",
    "CHUNK_ROWS",
    "FIRST_VALUE_BYTES",
    "MORE",
    "READ_BATCH_BYTES",
    "READ_BATCH_ROWS",
    "TARGET",
    "Chunks",
    "Feed",
    "FeedAborted",
    "available",
    "conform",
    "decimal_text",
    "encode_tsv",
    "stream",
    "text_of",
    "tsv_supported",
    "url",
]
