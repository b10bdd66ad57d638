"""Outbox dispatcher: the one consumer of the table's stream.

Per stream record: order change → at most one outbound event (``<order_id>:v<version>``) → each
sink in turn: SNS (e-mail and webhooks), the in-app inbox and the statistics (``sinks.py``) — fan-out
after the one stream reader rather than further readers (a stream allows only two per shard).
Every sink is tried even when an earlier one fails; if any failed, the record is retried and every
sink sees the event again (each deduplicates by the event id; SNS subscribers may get it twice).

Nothing is lost: an event SNS refuses after the configured attempts is parked in full in the retry
queue (``NotificationsParked``; ``tools/redrive_notifications.py`` publishes it again) and the
record counts as a success. Only when parking fails too does the record become a batch item
failure, so that the stream delivers it again (the event-source mapping bisects the batch). A
record is delivered at least once: consumers deduplicate on the event id.

Handler string: ``outbox.handler.handler``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from smartzone.domain.notifications import OutboundEvent, derive_event
from smartzone.observability import logger, metrics, tracer
from smartzone.repositories.event_markers import EventMarkers
from smartzone.repositories.notifier import Notifier, ParkError, PublishError
from smartzone.settings import get_settings

from .models import order_change, record_keys
from .sinks import InboxSink, StatsSink

# Entire-batch failures are reported like partial ones (every record listed) instead of raised:
# the stream retries them the same way, and the response stays one shape.
processor = BatchProcessor(event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False)


class Sink(Protocol):
    """One destination of outbound events (SNS, the in-app inbox, the statistics).

    ``deliver`` raises to have the record retried: the stream then delivers the record again and
    every sink sees the event again, so a sink must tolerate duplicates (by the event id).
    """

    name: str

    def deliver(self, event: OutboundEvent) -> None: ...


class NotificationSink:
    """SNS (grid workers' e-mail and webhook subscriptions); the retry queue when SNS fails."""

    name = "sns"

    def __init__(
        self, notifier: Notifier, markers: EventMarkers | None = None, marker_ttl_days: int = 14
    ) -> None:
        self.notifier = notifier
        self.markers = markers
        self.marker_ttl_days = marker_ttl_days

    def deliver(self, event: OutboundEvent) -> None:
        """Publish once per event id: a record retried because another sink failed is not sent
        to people's e-mail and webhooks again (the marker is set once published or parked)."""
        if self.markers is not None and self.markers.seen(event.event_id, self.name):
            metrics.add_metric(name="NotificationsAlreadySent", unit=MetricUnit.Count, value=1)
            return
        try:
            message_id = self.notifier.publish(event)
        except PublishError as exc:
            self._park(event, exc)
        else:
            metrics.add_metric(name="NotificationsPublished", unit=MetricUnit.Count, value=1)
            logger.info("notification published", extra={"sns_message_id": message_id})
        if self.markers is not None:
            self.markers.mark(event.event_id, self.name, int(time.time()) + self.marker_ttl_days * 86_400)

    def _park(self, event: OutboundEvent, error: PublishError) -> None:
        try:
            parked_id = self.notifier.park(event, error)
        except ParkError:
            metrics.add_metric(name="NotificationsParkFailed", unit=MetricUnit.Count, value=1)
            logger.exception("notification neither published nor parked: the stream will retry it")
            raise
        metrics.add_metric(name="NotificationsParked", unit=MetricUnit.Count, value=1)
        logger.warning(
            "notification parked in the retry queue",
            extra={"error": str(error), "attempts": error.attempts, "sqs_message_id": parked_id},
        )


@dataclass
class Dispatcher:
    """The per-record pipeline: derive the event, hand it to every sink in order."""

    sinks: Sequence[Sink]

    def process(self, record: DynamoDBRecord) -> str | None:
        """The event id dispatched for the record, or ``None`` when it carries no event."""
        try:
            change = order_change(record)
        except (ValidationError, ValueError):
            # A malformed order item is a bug, not a transient failure: retrying cannot fix it and
            # would hold up the shard for 24 h. The order itself is in the table; log and count.
            metrics.add_metric(name="OutboxRecordsInvalid", unit=MetricUnit.Count, value=1)
            logger.exception(
                "stream record cannot be read as an order change",
                extra={"keys": record_keys(record), "sequence_number": _sequence_number(record)},
            )
            return None
        event = derive_event(change) if change is not None else None
        if event is None:
            return None
        with logger.append_context_keys(
            event_id=event.event_id, event_type=event.event_type.value, grid_id=event.grid_id
        ):
            failure: Exception | None = None
            for sink in self.sinks:
                try:
                    sink.deliver(event)
                except Exception as exc:
                    metrics.add_metric(name="OutboxSinkFailed", unit=MetricUnit.Count, value=1)
                    logger.exception(
                        "sink failed: the stream will retry the record", extra={"sink": sink.name}
                    )
                    failure = failure or exc
            if failure is not None:
                raise failure
        return event.event_id


def _sequence_number(record: DynamoDBRecord) -> str | None:
    return record.dynamodb.sequence_number if record.dynamodb is not None else None


def build_dispatcher() -> Dispatcher:
    """The sinks, in order, from the function's settings (cheap: boto3 clients are cached per
    process; built per invocation so the notifier's circuit breaker starts closed each time).

    SNS first (people's e-mail and webhooks are the most urgent, and it parks instead of failing),
    then the inbox and the statistics (both in the table: ``TABLE_NAME``)."""
    settings = get_settings()
    return Dispatcher(
        sinks=(
            NotificationSink(
                Notifier.from_settings(settings),
                EventMarkers(settings.table_name) if settings.table_name else None,
                settings.event_marker_ttl_days,
            ),
            InboxSink.from_settings(settings),
            StatsSink.from_settings(settings),
        )
    )


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    dispatcher = build_dispatcher()
    records = len(event.get("Records", []))
    metrics.add_metric(name="OutboxRecordsReceived", unit=MetricUnit.Count, value=records)
    response: dict[str, Any] = process_partial_response(  # type: ignore[assignment]
        event=event, record_handler=dispatcher.process, processor=processor, context=context
    )
    failures = len(response.get("batchItemFailures", []))
    logger.info("stream batch dispatched", extra={"records": records, "failed": failures})
    return response
