"""Where data-lake objects live (one private, KMS-encrypted bucket) and what they are called.

| prefix | what |
|---|---|
| ``incoming/<slug>/<file>.csv|.xlsx|.json|.ndjson`` | files dropped by the providing department (an S3 event ingests them) |
| ``datalake/resource=<slug>/dt=<yyyy-mm-dd>/part-<batch>.parquet`` | the loaded rows (Hive partitions: resource, load date) |
| ``rejects/<slug>/dt=<yyyy-mm-dd>/<batch>.jsonl`` | rejected rows with their reasons and raw values |
| ``reports/<slug>/<batch>.json`` | the ingest report of one batch (counts, first rejects) |
| ``processed/<slug>/<file>`` | a dropped file after it was ingested (moved out of ``incoming/``) |

A resource code contains ``/`` (``211007000/000012``): in keys and table names it becomes its
*slug* ``211007000-000012`` (Glue / Athena table ``r_211007000_000012``), reversibly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

INCOMING = "incoming/"
DATALAKE = "datalake/"
REJECTS = "rejects/"
REPORTS = "reports/"
PROCESSED = "processed/"

_SLUG = re.compile(r"^[0-9]{9}-[0-9]{6}$")
_BATCH = re.compile(r"^[A-Za-z0-9_-]{1,80}$")


class FileFormat(StrEnum):
    CSV = "csv"
    XLSX = "xlsx"
    JSON = "json"
    """A JSON array of objects, or newline-delimited JSON objects."""


_SUFFIXES = {
    ".csv": FileFormat.CSV,
    ".xlsx": FileFormat.XLSX,
    ".json": FileFormat.JSON,
    ".ndjson": FileFormat.JSON,
}


def slug(code: str) -> str:
    """``211007000/000012`` → ``211007000-000012`` (safe in keys and Hive partition values)."""
    return code.replace("/", "-")


def code_of(slug_text: str) -> str:
    """The inverse of :func:`slug`; ValueError for anything that is not a resource slug."""
    if not _SLUG.match(slug_text):
        raise ValueError(f"not a resource slug: {slug_text!r}")
    return slug_text.replace("-", "/")


def table_name(code: str) -> str:
    """The Glue / Athena table (and the local DuckDB view) of a resource: ``r_211007000_000012``."""
    return "r_" + slug(code).replace("-", "_")


def check_batch_id(batch_id: str) -> str:
    if not _BATCH.match(batch_id):
        raise ValueError(f"not a batch id: {batch_id!r}")
    return batch_id


def resource_prefix(code: str) -> str:
    """Every Parquet file of one resource is under this prefix (the Glue table's location)."""
    return f"{DATALAKE}resource={slug(code)}/"


def partition_prefix(code: str, dt: date) -> str:
    return f"{resource_prefix(code)}dt={dt.isoformat()}/"


def parquet_key(code: str, dt: date, batch_id: str) -> str:
    return f"{partition_prefix(code, dt)}part-{check_batch_id(batch_id)}.parquet"


def rejects_key(code: str, dt: date, batch_id: str) -> str:
    return f"{REJECTS}{slug(code)}/dt={dt.isoformat()}/{check_batch_id(batch_id)}.jsonl"


def report_key(code: str, batch_id: str) -> str:
    return f"{REPORTS}{slug(code)}/{check_batch_id(batch_id)}.json"


def incoming_prefix(code: str) -> str:
    return f"{INCOMING}{slug(code)}/"


@dataclass(frozen=True)
class DroppedFile:
    """A file a department dropped under ``incoming/<slug>/``."""

    key: str
    code: str
    name: str
    format: FileFormat

    @property
    def processed_key(self) -> str:
        return f"{PROCESSED}{slug(self.code)}/{self.name}"


def parse_incoming_key(key: str) -> DroppedFile:
    """``incoming/211007000-000012/2025-01-02.csv`` → the dropped file; ValueError when the key is
    not ``incoming/<slug>/<name>.<csv|xlsx|json|ndjson>`` (no deeper folders)."""
    if not key.startswith(INCOMING):
        raise ValueError(f"not under {INCOMING}: {key!r}")
    parts = key[len(INCOMING) :].split("/")
    if len(parts) != 2 or not parts[1]:
        raise ValueError(f"expected {INCOMING}<resource>/<file>, got {key!r}")
    code = code_of(parts[0])
    name = parts[1]
    suffix = name[name.rfind(".") :].lower() if "." in name else ""
    if suffix not in _SUFFIXES:
        raise ValueError(f"unsupported file type {suffix or '(none)'!r}: use .csv, .xlsx, .json or .ndjson")
    return DroppedFile(key=key, code=code, name=name, format=_SUFFIXES[suffix])
