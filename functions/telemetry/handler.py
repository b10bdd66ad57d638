"""Telemetry Lambda: SQS batches of IoT-rule messages → alarm evaluation → conditional writes.

Partial batch responses through Powertools: only transient failures are reported (and retried);
bad records are acknowledged, logged with a reason, counted and copied to the rejects queue.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.typing import LambdaContext

from smartzone.observability import logger, metrics, tracer
from smartzone.repositories.alarm_store import AlarmStore
from smartzone.repositories.devices import DeviceRepository
from smartzone.repositories.rejects import RejectSink
from smartzone.settings import get_settings
from smartzone.sqs_batch import handle_batch

from .pipeline import TelemetryPipeline

processor = BatchProcessor(event_type=EventType.SQS)

_METRICS = {
    "received": "ReadingsReceived",
    "applied": "ReadingsApplied",
    "stale": "ReadingsStale",
    "duplicates": "ReadingsDuplicate",
    "writes": "DeviceWrites",
    "conflicts": "WriteConflicts",
    "alarms_raised": "AlarmsRaised",
    "alarms_cleared": "AlarmsCleared",
}


class RetryLater(Exception):
    """A record whose device could not be updated now (transient): SQS delivers it again."""


@cache
def pipeline() -> TelemetryPipeline:
    settings = get_settings()
    return TelemetryPipeline(
        settings,
        DeviceRepository(settings.table_name),
        AlarmStore(settings.table_name),
        RejectSink(settings.rejects_queue_url),
    )


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle_batch(
        event,
        context,
        lambda messages: pipeline().process(messages),
        processor=processor,
        retry=RetryLater,
        metric_names=_METRICS,
        metric_prefix="Readings",
    )
