"""Exports Lambda: SQS messages ``{"export_id"}`` → a form's submissions as CSV or XLSX in S3.

Each message renders one job (see :mod:`smartzone.domain.form_exports`): the submissions of the
period (Beijing-time days, inclusive) are read with key queries, the file is written to the
private exports bucket (SSE-KMS, expiring) and the job is marked ``done``. A job already done
is skipped (SQS delivers at least once). A job with an unknown id is acknowledged and logged.

Failures never leave a job ``queued`` for ever: a missing form or any non-transient error (a bad
job, rendering, S3 refusing the write) marks it ``failed`` with its reason at once; a transient
one (throttling, timeouts, 5xx) is reported for retry, and on the message's last receive
(``ApproximateReceiveCount`` ≥ ``EXPORTS_MAX_RECEIVES``, the queue's ``maxReceiveCount``,
default 3) the job is marked ``failed`` instead and the message acknowledged.
"""

from __future__ import annotations

import json
import os
from datetime import date, datetime, time, timedelta
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, ReadTimeoutError

from smartzone.domain.form_exports import (
    CONTENT_TYPES,
    ExportFormat,
    ExportJob,
    ExportStatus,
    export_object_key,
    export_table,
    render_csv,
    render_xlsx,
)
from smartzone.domain.masking import MaskDecision
from smartzone.domain.timeutil import SHANGHAI, now_ms, to_iso
from smartzone.observability import logger, metrics, tracer
from smartzone.repositories.clients import client
from smartzone.repositories.exports import ExportRepository
from smartzone.repositories.forms import FormRepository
from smartzone.repositories.submissions import SubmissionRepository
from smartzone.settings import get_settings

processor = BatchProcessor(event_type=EventType.SQS)

DEFAULT_MAX_RECEIVES = 3
"""The export queue's ``maxReceiveCount`` (``infra/constructs/forms.py``) unless the environment
says otherwise (``EXPORTS_MAX_RECEIVES``)."""
TRANSIENT_CODES = frozenset(
    {
        "InternalError",
        "ServiceUnavailable",
        "SlowDown",
        "RequestTimeout",
        "Throttling",
        "ThrottlingException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "InternalServerError",
    }
)


def max_receives() -> int:
    try:
        return max(1, int(os.environ.get("EXPORTS_MAX_RECEIVES", DEFAULT_MAX_RECEIVES)))
    except ValueError:
        return DEFAULT_MAX_RECEIVES


def transient(exc: Exception) -> bool:
    """Whether another delivery may succeed (throttling, timeouts, service errors)."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        return error.get("Code") in TRANSIENT_CODES or status >= 500
    return isinstance(exc, ConnectionError | ReadTimeoutError | BotoCoreError | TimeoutError)


@cache
def _repositories(table: str) -> tuple[ExportRepository, FormRepository, SubmissionRepository]:
    return ExportRepository(table), FormRepository(table), SubmissionRepository(table)


def period_bounds(from_day: str, to_day: str) -> tuple[str, str]:
    """UTC ISO bounds of Beijing-time days ``from_day`` … ``to_day`` (inclusive)."""
    start = datetime.combine(date.fromisoformat(from_day), time(0), SHANGHAI)
    end = datetime.combine(date.fromisoformat(to_day) + timedelta(days=1), time(0), SHANGHAI)
    return to_iso(int(start.timestamp() * 1000)), to_iso(int(end.timestamp() * 1000))


def render(job: ExportJob) -> tuple[bytes, int, list[str]]:
    """The job's file, its row count and its columns."""
    _, forms, submissions = _repositories(get_settings().table_name)
    current = forms.get(job.form_id)
    if current is None:
        raise LookupError(f"form {job.form_id} does not exist")
    since, until = period_bounds(job.from_day, job.to_day)
    found = list(submissions.iterate(job.form_id, since, until))
    versions: dict[int, Any] = {current.version: current}
    for v in sorted({s.form_version for s in found} - {current.version}):
        older = forms.get(job.form_id, v)
        if older is not None:
            versions[v] = older
    # The decision was taken from the requester's role when the job was queued (masking policy:
    # staff see full addresses; names, phones and ID numbers only for UNMASKED_ROLES).
    decision = MaskDecision(unmasked=job.unmasked, full_addresses=True)
    header, rows = export_table(current, versions, found, decision)
    if job.format is ExportFormat.CSV:
        return render_csv(header, rows), len(rows), header
    return render_xlsx(current.title_zh, header, rows), len(rows), header


def _fail(exports: ExportRepository, job: ExportJob, reason: str) -> ExportJob:
    failed = job.model_copy(
        update={"status": ExportStatus.FAILED, "error": reason[:500], "finished_at": to_iso(now_ms())}
    )
    exports.finish(failed)
    logger.warning("export failed", extra={"export_id": job.export_id, "reason": reason[:500]})
    return failed


def process_job(export_id: str, *, last_attempt: bool = False) -> ExportJob | None:
    """Render and store one job; ``last_attempt``: the message will not be delivered again, so a
    transient failure marks the job failed too (otherwise it is raised for SQS to retry)."""
    exports, _, _ = _repositories(get_settings().table_name)
    job = exports.get(export_id)
    if job is None:
        logger.warning("unknown export job", extra={"export_id": export_id})
        return None
    if job.status is ExportStatus.DONE:
        return job
    key = export_object_key(job)
    try:
        body, rows, columns = render(job)
        client("s3").put_object(
            Bucket=get_settings().exports_bucket, Key=key, Body=body, ContentType=CONTENT_TYPES[job.format]
        )
    except LookupError as exc:
        return _fail(exports, job, str(exc))
    except Exception as exc:
        if transient(exc) and not last_attempt:
            raise  # reported for retry; the job stays queued until the last receive
        return _fail(exports, job, f"{type(exc).__name__}: {exc}")
    done = job.model_copy(
        update={
            "status": ExportStatus.DONE,
            "object_key": key,
            "rows": rows,
            "columns": columns,
            "finished_at": to_iso(now_ms()),
        }
    )
    exports.finish(done)
    logger.info("export written", extra={"export_id": export_id, "rows": rows, "format": job.format.value})
    return done


def _record(record: SQSRecord) -> None:
    message = json.loads(record.body)
    export_id = message.get("export_id") if isinstance(message, dict) else None
    if not isinstance(export_id, str) or not export_id:
        logger.warning("export message without export_id", extra={"message_id": record.message_id})
        return
    try:
        receives = int(record.attributes.approximate_receive_count or 1)
    except (TypeError, ValueError, KeyError):
        receives = 1
    process_job(export_id, last_attempt=receives >= max_receives())


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=_record, processor=processor, context=context)
