"""Detections Lambda: SQS batches (IoT rules and the webhook) → merged, routed work orders.

Partial batch responses through Powertools: only transient failures are reported (and retried);
bad detections are acknowledged, logged with a reason, counted and copied to the rejects queue.
What a batch does: :mod:`functions.detections.pipeline`.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.typing import LambdaContext

from smartzone.observability import logger, metrics, tracer
from smartzone.repositories.cameras import CameraRepository
from smartzone.repositories.detections import DetectionStore
from smartzone.repositories.grid_areas import GridAreaRepository
from smartzone.repositories.rejects import RejectSink
from smartzone.repositories.workorders import WorkOrderRepository
from smartzone.settings import get_settings
from smartzone.sqs_batch import handle_batch

from .pipeline import DetectionPipeline

processor = BatchProcessor(event_type=EventType.SQS)

_METRICS = {
    "received": "DetectionsReceived",
    "dispatched": "DetectionsDispatched",
    "below_threshold": "DetectionsBelowThreshold",
    "duplicates": "DetectionsDuplicate",
    "orders_created": "DetectionOrdersCreated",
    "orders_joined": "DetectionOrdersJoined",
    "drone_orders": "DroneOrdersCreated",
    "conflicts": "DetectionWriteConflicts",
}


class RetryLater(Exception):
    """A record whose detections could not be merged now (transient): SQS delivers it again."""


@cache
def pipeline() -> DetectionPipeline:
    settings = get_settings()
    return DetectionPipeline(
        settings,
        CameraRepository(settings.table_name),
        DetectionStore(settings.table_name),
        WorkOrderRepository(settings.table_name),
        GridAreaRepository(settings.table_name),
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
        metric_prefix="Detections",
    )
