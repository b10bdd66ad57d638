"""Ingest and query as the functions run them: the engine in the middle, the repositories around it.

- :func:`ingest_batch`: one file (dropped in S3 or pushed to the API) → validated Parquet and
  rejects in the bucket, the batch report in ``reports/``, the Glue table kept in step with the
  items (cloud), and the resource's last-load time moved on when rows were loaded.
- :func:`run_query`: a checked spec → DuckDB over the resource's Parquet files (mirrored from the
  bucket) or Athena over the same files, then masking per item rule. Whatever DuckDB raises while
  running a built query is :class:`~smartzone.repositories.datalake.QueryFailed`, as Athena's
  failures are (the API answers 502 with a message, never an unhandled error).
- :func:`stale_resources`: the catalogue entries whose last load is older than their update cycle.
"""

from __future__ import annotations

import hashlib
import tempfile
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from smartzone.datalake.ingest import IngestReport, connect, ingest_file
from smartzone.datalake.layout import REPORTS, FileFormat, parquet_key, rejects_key, report_key, slug
from smartzone.datalake.query import (
    QueryPage,
    QueryRefused,
    QuerySpec,
    build_query,
    duckdb_view_sql,
    from_athena_text,
    run_duckdb,
    shape_page,
    to_athena,
)
from smartzone.domain.catalogue import Resource, is_stale
from smartzone.domain.timeutil import SHANGHAI
from smartzone.repositories.catalogue import CatalogueRepository
from smartzone.repositories.datalake import (
    AthenaQueries,
    DataLakeBucket,
    GlueTables,
    QueryFailed,
    presign_s3_url,
)
from smartzone.settings import Settings


def load_date(now: datetime) -> date:
    """The partition date of a load: the day in Asia/Shanghai."""
    return now.astimezone(SHANGHAI).date()


def file_batch_id(key: str, etag: str) -> str:
    """A dropped file's batch id: the same object ingested twice (a redelivered event) writes the
    same Parquet key, so a second run replaces the first instead of duplicating rows."""
    return "f" + hashlib.sha256(f"{key}|{etag}".encode()).hexdigest()[:20]


@dataclass
class DataLake:
    """What ingest and queries talk to (built from settings; tests pass their own)."""

    bucket: DataLakeBucket
    catalogue: CatalogueRepository
    glue: GlueTables | None
    athena: AthenaQueries | None
    engine: str
    cache_dir: Path
    memory_limit: str = "256MB"
    athena_timeout_s: float = 25.0

    @classmethod
    def from_settings(cls, settings: Settings) -> DataLake:
        cloud = settings.query_engine == "athena"
        return cls(
            bucket=DataLakeBucket(settings.datalake_bucket),
            catalogue=CatalogueRepository(settings.table_name),
            glue=GlueTables(settings.glue_database) if settings.glue_database else None,
            athena=AthenaQueries(
                settings.athena_workgroup, settings.glue_database, output=settings.athena_output
            )
            if cloud
            else None,
            engine=settings.query_engine,
            cache_dir=Path(settings.datalake_cache_dir),
            memory_limit=settings.datalake_memory_limit,
            athena_timeout_s=float(settings.athena_timeout_s),
        )


def ingest_batch(
    lake: DataLake,
    source: Path,
    fmt: FileFormat,
    resource: Resource,
    *,
    batch_id: str,
    now: datetime | None = None,
) -> IngestReport:
    """Ingest one file; raises :class:`smartzone.datalake.ingest.IngestError` when refused whole."""
    now = now or datetime.now(UTC)
    dt = load_date(now)
    lake.cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=lake.cache_dir, prefix="ingest-") as tmp:
        out = ingest_file(
            source,
            fmt,
            resource,
            batch_id=batch_id,
            dt=dt,
            work_dir=Path(tmp),
            now=now,
            memory_limit=lake.memory_limit,
        )
        report = out.report
        if out.parquet is not None:
            report.parquet_key = parquet_key(resource.code, dt, batch_id)
            lake.bucket.upload(report.parquet_key, out.parquet)
        if out.rejects is not None:
            report.rejects_key = rejects_key(resource.code, dt, batch_id)
            lake.bucket.upload(report.rejects_key, out.rejects, "application/x-ndjson")
    if report.rows_loaded:
        if lake.glue is not None:
            lake.glue.ensure(resource, lake.bucket.bucket)
        lake.catalogue.record_load(resource.code, now)
    lake.bucket.put_json(report_key(resource.code, batch_id), report.model_dump(mode="json"))
    return report


def refused_report(
    lake: DataLake,
    resource: Resource,
    fmt: FileFormat,
    batch_id: str,
    message: str,
    now: datetime | None = None,
) -> IngestReport:
    """The report of a file refused whole (kept in ``reports/`` like any other)."""
    now = now or datetime.now(UTC)
    report = IngestReport(
        resource_code=resource.code,
        batch_id=batch_id,
        dt=load_date(now),
        format=fmt,
        error=message,
        loaded_at=now,
    )
    lake.bucket.put_json(report_key(resource.code, batch_id), report.model_dump(mode="json"))
    return report


def run_query(
    lake: DataLake, resource: Resource, spec: QuerySpec, unmasked: Iterable[str], offset: int
) -> QueryPage:
    """Run ``spec`` on the configured engine; personal items masked unless in ``unmasked``."""
    keep = frozenset(unmasked)
    built = build_query(resource, spec, keep, offset)
    if lake.engine == "athena":
        if lake.athena is None:
            raise RuntimeError("Athena is not configured")
        sql = to_athena(built.sql)
        result = lake.athena.run(sql, lake.athena_timeout_s, max_rows=built.page + 1)
        rows: list[tuple[Any, ...]] = [
            tuple(
                from_athena_text(resource, built, column, value)
                for column, value in zip(built.columns, row, strict=True)
            )
            for row in result.rows
        ]
        return shape_page(resource, spec, built, rows, keep, "athena", sql)
    files = lake.bucket.mirror_resource(resource.code, lake.cache_dir / "mirror")
    import duckdb

    try:
        con = connect(lake.cache_dir, lake.memory_limit)
        try:
            rows = run_duckdb(con, resource, files, built)
        finally:
            con.close()
    except duckdb.Error as exc:
        raise QueryFailed(f"DuckDB could not run the query: {type(exc).__name__}") from exc
    return shape_page(resource, spec, built, rows, keep, "duckdb", built.sql)


@dataclass(frozen=True)
class Export:
    url: str
    """A presigned GET link to the CSV file (expires after ``expires_in`` seconds)."""
    expires_in: int
    engine: str


EXPORT_LINK_S = 900
"""How long an export link stays valid at most (less when the caller's grant ends sooner)."""


def export_link_seconds(valid_until: datetime | None, now: datetime) -> int:
    """The link's lifetime: :data:`EXPORT_LINK_S`, cut to the time left on the caller's grant
    (``valid_until``; None when the read needs no grant). A link never outlives the access that
    produced it; with no time left the export is refused (403, as the expired grant would be)."""
    if valid_until is None:
        return EXPORT_LINK_S
    left = int((valid_until - now).total_seconds())
    if left < 1:
        raise QueryRefused("export: the approved access has expired", "export", 403)
    return min(EXPORT_LINK_S, left)


def run_export(
    lake: DataLake,
    resource: Resource,
    spec: QuerySpec,
    unmasked: Iterable[str],
    *,
    valid_until: datetime | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Export:
    """All matching rows as one CSV file behind a short-lived link: Athena's own result file in the
    cloud; locally, DuckDB writes it and it is uploaded under ``reports/<code>/exports/``.
    :func:`build_query` refuses exports that would carry masked columns. The link expires after
    :data:`EXPORT_LINK_S` or when the grant (``valid_until``) ends, whichever comes first."""
    built = build_query(resource, spec, frozenset(unmasked))
    if lake.engine == "athena":
        if lake.athena is None:
            raise RuntimeError("Athena is not configured")
        result = lake.athena.run(to_athena(built.sql), lake.athena_timeout_s, max_rows=0)
        if not result.output_location:
            raise RuntimeError("Athena reported no output location")
        seconds = export_link_seconds(valid_until, clock())
        return Export(presign_s3_url(result.output_location, seconds), seconds, "athena")
    files = lake.bucket.mirror_resource(resource.code, lake.cache_dir / "mirror")
    lake.cache_dir.mkdir(parents=True, exist_ok=True)
    import duckdb

    with tempfile.TemporaryDirectory(dir=lake.cache_dir, prefix="export-") as tmp:
        target = Path(tmp) / "export.csv"
        try:
            con = connect(lake.cache_dir, lake.memory_limit)
            try:
                con.execute(duckdb_view_sql(resource, files))
                location = "'" + str(target).replace("'", "''") + "'"
                con.execute(f"COPY ({built.sql}) TO {location} (HEADER, DELIMITER ',')")
            finally:
                con.close()
        except duckdb.Error as exc:
            raise QueryFailed(f"DuckDB could not run the export: {type(exc).__name__}") from exc
        seconds = export_link_seconds(valid_until, clock())
        key = f"{REPORTS}{slug(resource.code)}/exports/{uuid.uuid4().hex}.csv"
        lake.bucket.upload(key, target, "text/csv")
    return Export(lake.bucket.presign(key, seconds), seconds, "duckdb")


@dataclass(frozen=True)
class StaleResource:
    code: str
    name: str
    department_id: str
    update_cycle: str
    last_loaded_at: datetime | None


def stale_resources(resources: Iterable[Resource], now: datetime) -> list[StaleResource]:
    """Resources whose last load is older than their update cycle (or never loaded), by code."""
    return [
        StaleResource(r.code, r.name, r.department_id, r.update_cycle.value, r.last_loaded_at)
        for r in sorted(resources, key=lambda r: r.code)
        if is_stale(r, now)
    ]
