"""The outbox's table-backed sinks: the in-app inbox and the statistics.

Both are idempotent by the event id, as every sink must be (a failing sink has the stream deliver
the record again, and every sink then sees the event again):

- :class:`InboxSink`: one entry per recipient (the order's grid's workers and its assignee),
  written with a conditional put on ``INBOX#<user>`` / ``<event at>#<event_id>``;
- :class:`StatsSink`: one transaction per event: the marker ``EVENT#<event_id>`` / ``stats``
  (must not exist yet) and the ``ADD`` counter updates; a duplicate is skipped as a whole.

They raise on transient DynamoDB failures so that the record is retried.
"""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit, single_metric

from smartzone.domain.inbox import (
    DEFAULT_INBOX_TTL_DAYS,
    addressed_to_dispatchers,
    entry_of,
    expires_at,
    recipients,
)
from smartzone.domain.notifications import OutboundEvent
from smartzone.domain.statistics import stats_update
from smartzone.domain.timeutil import now_ms
from smartzone.observability import NAMESPACE, logger, metrics
from smartzone.repositories.devices import DeviceRepository
from smartzone.repositories.inbox import InboxRepository
from smartzone.repositories.stats import StatsRepository
from smartzone.repositories.users import dispatcher_usernames
from smartzone.settings import Settings

DEFAULT_MARKER_TTL_DAYS = 14


class InboxSink:
    """The in-app inbox of every person the event concerns."""

    name = "inbox"

    def __init__(
        self, inbox: InboxRepository, devices: DeviceRepository, *, ttl_days: int = DEFAULT_INBOX_TTL_DAYS
    ) -> None:
        self.inbox = inbox
        self.devices = devices
        self.ttl_days = ttl_days

    @classmethod
    def from_settings(cls, settings: Settings) -> InboxSink:
        return cls(
            InboxRepository(settings.table_name),
            DeviceRepository(settings.table_name),
            ttl_days=settings.inbox_ttl_days,
        )

    def deliver(self, event: OutboundEvent) -> None:
        grid = self.devices.get_grid(event.grid_id)
        workers = [worker.worker_id for worker in grid.workers] if grid is not None else []
        dispatchers = dispatcher_usernames(self.devices.table_name) if addressed_to_dispatchers(event) else []
        people = recipients(event, workers, dispatchers)
        if not people:
            logger.warning("nobody to file the event in an inbox for", extra={"grid_found": grid is not None})
            return
        entry = entry_of(event)
        ttl = expires_at(event, self.ttl_days)
        added = sum(1 for person in people if self.inbox.add(person, event, entry, ttl))
        if added:
            metrics.add_metric(name="InboxEntriesAdded", unit=MetricUnit.Count, value=added)
        if added < len(people):
            metrics.add_metric(
                name="InboxDuplicatesSkipped", unit=MetricUnit.Count, value=len(people) - added
            )


class StatsSink:
    """Daily counters and duration histograms (``GET /v1/stats``)."""

    name = "stats"

    def __init__(self, stats: StatsRepository, *, marker_ttl_days: int = DEFAULT_MARKER_TTL_DAYS) -> None:
        self.stats = stats
        self.marker_ttl_days = marker_ttl_days

    @classmethod
    def from_settings(cls, settings: Settings) -> StatsSink:
        return cls(StatsRepository(settings.table_name), marker_ttl_days=settings.event_marker_ttl_days)

    def deliver(self, event: OutboundEvent) -> None:
        update = stats_update(event)
        if update.empty:
            return
        marker_expires = now_ms() // 1000 + self.marker_ttl_days * 86_400
        if self.stats.record(event.event_id, update, marker_expires):
            metrics.add_metric(name="StatsEventsCounted", unit=MetricUnit.Count, value=1)
            # The operations dashboard's "orders by status": one count per order entering a status.
            if event.status != event.previous_status:
                with single_metric(
                    name="OrdersByStatus", unit=MetricUnit.Count, value=1, namespace=NAMESPACE
                ) as metric:
                    metric.add_dimension(name="status", value=event.status)
        else:
            metrics.add_metric(name="StatsDuplicatesSkipped", unit=MetricUnit.Count, value=1)
            logger.info("statistics already counted this event", extra={"day": update.day})
