"""Detections Lambda: SQS batches (IoT rules and the webhook) → merged, routed work orders.

Partial batch responses through Powertools: only transient failures are reported (and retried);
bad detections are acknowledged, logged with a reason, counted and copied to the rejects queue.
What a batch does: :mod:`functions.detections.pipeline`.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from smartzone.observability import NAMESPACE, logger, metrics, tracer
from smartzone.repositories.cameras import CameraRepository
from smartzone.repositories.detections import DetectionStore
from smartzone.repositories.grid_areas import GridAreaRepository
from smartzone.repositories.rejects import RejectSink
from smartzone.repositories.workorders import WorkOrderRepository
from smartzone.settings import get_settings

from .pipeline import BatchOutcome, DetectionPipeline, Message

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


def _emit_metrics(outcome: BatchOutcome) -> None:
    for key, name in _METRICS.items():
        if outcome.counts[key]:
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=outcome.counts[key])
    if outcome.rejected:
        metrics.add_metric(name="DetectionsRejected", unit=MetricUnit.Count, value=len(outcome.rejected))
        for key, count in outcome.counts.items():
            if key.startswith("rejected_"):
                with single_metric(
                    name="DetectionsRejectedByReason", unit=MetricUnit.Count, value=count, namespace=NAMESPACE
                ) as metric:
                    metric.add_dimension(name="reason", value=key.removeprefix("rejected_"))
    if outcome.failed:
        metrics.add_metric(name="DetectionsRetried", unit=MetricUnit.Count, value=len(outcome.failed))


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    records = event.get("Records", [])
    outcome = pipeline().process([Message(r["messageId"], r.get("body", "")) for r in records])
    _emit_metrics(outcome)
    logger.info(
        "batch processed",
        extra={
            "counts": dict(outcome.counts),
            "rejected": len(outcome.rejected),
            "retried": len(outcome.failed),
        },
    )

    def record_handler(record: SQSRecord) -> None:
        if record.message_id in outcome.failed:
            raise RetryLater(record.message_id)

    response: dict[str, Any] = process_partial_response(  # type: ignore[assignment]
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    return response
