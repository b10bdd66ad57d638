"""What the SQS-batch functions (telemetry, detections) share: the message and outcome of a batch,
the rejects hand-off, the batch metrics and the partial batch response.

Only transient failures (``BatchOutcome.failed``) are reported to SQS (and retried); rejected
messages are acknowledged, logged with a reason, counted and copied to the rejects queue.
Powertools' batch utilities are imported when a batch is answered (the handlers load them
anyway), so the pipelines that import this module do not pay for them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric

from smartzone.observability import NAMESPACE, logger, metrics
from smartzone.repositories.rejects import RejectedMessage, RejectSink

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch import BatchProcessor
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext


@dataclass(frozen=True, slots=True)
class Message:
    message_id: str
    body: str


@dataclass
class BatchOutcome:
    failed: set[str] = field(default_factory=set)
    """Message ids to report as batch item failures (transient: retried by SQS)."""
    rejected: list[RejectedMessage] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)


def send_rejects(outcome: BatchOutcome, sink: RejectSink, *, log_message: str, source_key: str) -> None:
    """Log every rejected message (``source_key`` names the rejection's device/source id) and copy
    them to the rejects queue; those that could not be sent are retried."""
    for rejected in outcome.rejected:
        logger.info(
            log_message,
            extra={
                "message_id": rejected.message_id,
                "reason": rejected.rejection.reason.value,
                "detail": rejected.rejection.detail,
                source_key: rejected.rejection.device_id,
            },
        )
    if outcome.rejected:
        outcome.failed.update(sink.send(outcome.rejected))


def emit_metrics(outcome: BatchOutcome, names: Mapping[str, str], prefix: str) -> None:
    """The non-zero ``counts`` named in ``names``, then ``<prefix>Rejected`` (with one
    ``<prefix>RejectedByReason`` metric per reason) and ``<prefix>Retried``."""
    for key, name in names.items():
        if outcome.counts[key]:
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=outcome.counts[key])
    if outcome.rejected:
        metrics.add_metric(name=f"{prefix}Rejected", unit=MetricUnit.Count, value=len(outcome.rejected))
        for key, count in outcome.counts.items():
            if key.startswith("rejected_"):
                with single_metric(
                    name=f"{prefix}RejectedByReason", unit=MetricUnit.Count, value=count, namespace=NAMESPACE
                ) as metric:
                    metric.add_dimension(name="reason", value=key.removeprefix("rejected_"))
    if outcome.failed:
        metrics.add_metric(name=f"{prefix}Retried", unit=MetricUnit.Count, value=len(outcome.failed))


def handle_batch(
    event: dict[str, Any],
    context: LambdaContext,
    process: Callable[[Sequence[Message]], BatchOutcome],
    *,
    processor: BatchProcessor,
    retry: type[Exception],
    metric_names: Mapping[str, str],
    metric_prefix: str,
) -> dict[str, Any]:
    """Process an SQS event's records as one batch, emit its metrics, log it, and answer with a
    partial batch response reporting the failed ids (each raised as ``retry`` in Powertools)."""
    from aws_lambda_powertools.utilities.batch import process_partial_response

    records = event.get("Records", [])
    outcome = process([Message(r["messageId"], r.get("body", "")) for r in records])
    emit_metrics(outcome, metric_names, metric_prefix)
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
            raise retry(record.message_id)

    response: dict[str, Any] = process_partial_response(  # type: ignore[assignment]
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    return response
