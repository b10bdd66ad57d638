"""Sweeper Lambda, run by an EventBridge schedule: SLA escalation and offline devices.

Handler string: ``sweeper.handler.handler``. The event (a scheduled event, see
``events/schedule_sweeper.json``) carries nothing the sweep needs: the time is the clock's
(the module's ``clock``, replaceable for tests and the local platform). What the sweeps do:
:mod:`functions.sweeper.sweeps`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from smartzone.domain.timeutil import now_ms
from smartzone.observability import logger, metrics, tracer
from smartzone.repositories.alarm_store import AlarmStore
from smartzone.repositories.detections import DetectionStore
from smartzone.repositories.devices import DeviceRepository
from smartzone.repositories.last_seen import LastSeenIndex
from smartzone.repositories.workorders import WorkOrderRepository
from smartzone.settings import get_settings

from .sweeps import Sweeper, SweepOutcome
from .transient import TransientSweep

_METRICS = {
    "overdue": "OrdersOverdue",
    "escalated": "OrdersEscalated",
    "offline_raised": "OfflineAlarmsRaised",
    "incidents": "OfflineIncidents",
    "errors": "SweepErrors",
    "expired": "TransientOrdersExpired",
}


clock: Callable[[], int] = now_ms
"""The sweep's clock, read at each run (tests and the local platform may replace it)."""


@cache
def sweeper() -> Sweeper:
    settings = get_settings()
    return Sweeper(
        settings,
        WorkOrderRepository(settings.table_name),
        DeviceRepository(settings.table_name),
        LastSeenIndex(settings.table_name),
        AlarmStore(settings.table_name),
        lambda: clock(),
        TransientSweep(DetectionStore(settings.table_name), WorkOrderRepository(settings.table_name)),
    )


def _emit_metrics(outcome: SweepOutcome) -> None:
    for key, name in _METRICS.items():
        if outcome.counts[key]:
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=outcome.counts[key])


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    outcome = sweeper().run()
    _emit_metrics(outcome)
    summary: dict[str, Any] = {
        "counts": dict(outcome.counts),
        "escalated": outcome.escalated,
        "offline_raised": outcome.raised,
        "incidents": outcome.incidents,
        "expired": outcome.expired,
    }
    logger.info("sweep done", extra={"schedule_time": event.get("time"), **summary})
    return summary
