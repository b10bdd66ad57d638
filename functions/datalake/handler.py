"""Data-lake ingest Lambda: a file dropped under ``incoming/<resource>/`` becomes Parquet; a daily
schedule flags stale resources.

Handler string: ``datalake.handler.handler``. Events (both from EventBridge):

- ``Object Created`` (S3, the data-lake bucket, key under ``incoming/``; see
  ``events/datalake_object_created.json``): the file is ingested
  (:func:`smartzone.datalake.service.ingest_batch`: Parquet, rejects and report in the bucket,
  last-load time recorded) and moved to ``processed/``. A file refused whole gets a report
  with the reason and is moved too; a redelivered event finds the file gone and does nothing.
- ``Scheduled Event``: the stale check: every catalogue resource whose last load is older than
  its update cycle is logged, counted (metric ``StaleResources``) and listed in
  ``reports/stale/<date>.json``.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from smartzone.datalake.ingest import IngestError
from smartzone.datalake.layout import REPORTS, parse_incoming_key
from smartzone.datalake.service import DataLake, file_batch_id, ingest_batch, refused_report, stale_resources
from smartzone.observability import logger, metrics, tracer
from smartzone.settings import get_settings


@cache
def lake() -> DataLake:
    return DataLake.from_settings(get_settings())


def _missing(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound")


def ingest_object(key: str, etag: str, now: datetime | None = None) -> dict[str, Any]:
    """Ingest one dropped object; the outcome as a small dict (also logged)."""
    data_lake = lake()
    try:
        dropped = parse_incoming_key(key)
    except ValueError as exc:
        logger.warning("ignored object", extra={"key": key, "reason": str(exc)})
        return {"status": "ignored", "reason": str(exc)}
    resource = data_lake.catalogue.get(dropped.code)
    if resource is None:
        logger.warning("object for an unknown resource left in place", extra={"key": key})
        return {"status": "unknown_resource", "code": dropped.code}
    batch_id = file_batch_id(key, etag)
    data_lake.cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=data_lake.cache_dir, prefix="drop-") as tmp:
        local = Path(tmp) / ("source" + dropped.name[dropped.name.rfind(".") :])
        try:
            data_lake.bucket.download(key, local)
        except ClientError as exc:
            if _missing(exc):
                logger.info("object already processed", extra={"key": key})
                return {"status": "gone"}
            raise
        try:
            report = ingest_batch(data_lake, local, dropped.format, resource, batch_id=batch_id, now=now)
        except IngestError as exc:
            report = refused_report(data_lake, resource, dropped.format, batch_id, str(exc), now)
    data_lake.bucket.move(key, dropped.processed_key)
    metrics.add_metric(name="DatalakeRowsLoaded", unit=MetricUnit.Count, value=report.rows_loaded)
    metrics.add_metric(name="DatalakeRowsRejected", unit=MetricUnit.Count, value=report.rows_rejected)
    outcome = {
        "status": "refused" if report.error else "ingested",
        "code": resource.code,
        "batch_id": batch_id,
        "rows_loaded": report.rows_loaded,
        "rows_rejected": report.rows_rejected,
        "error": report.error,
    }
    logger.info("dropped file ingested", extra=outcome)
    return outcome


def check_stale(now: datetime | None = None) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    data_lake = lake()
    stale = stale_resources(data_lake.catalogue.all(), now)
    listing = [
        {
            "code": s.code,
            "name": s.name,
            "department_id": s.department_id,
            "update_cycle": s.update_cycle,
            "last_loaded_at": s.last_loaded_at.isoformat() if s.last_loaded_at else None,
        }
        for s in stale
    ]
    data_lake.bucket.put_json(
        f"{REPORTS}stale/{now.date().isoformat()}.json", {"at": now.isoformat(), "stale": listing}
    )
    metrics.add_metric(name="StaleResources", unit=MetricUnit.Count, value=len(stale))
    logger.info("stale check", extra={"stale": len(stale), "codes": [s.code for s in stale][:200]})
    return {"status": "checked", "stale": len(stale)}


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if event.get("source") == "aws.s3":
        obj = (event.get("detail") or {}).get("object") or {}
        key = str(obj.get("key", ""))
        if "%" in key or "+" in key:
            key = unquote_plus(key)
        return ingest_object(key, str(obj.get("etag", "")))
    if event.get("detail-type") == "Scheduled Event":
        return check_stale()
    logger.warning("unexpected event", extra={"source": event.get("source")})
    return {"status": "ignored"}
