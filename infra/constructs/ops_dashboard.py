"""The operations dashboard (CloudWatch): the platform's own metrics on one page.

Rows: readings per minute and rejects by reason (telemetry); sensor alarms raised and cleared,
offline incidents and SLA escalations (telemetry and sweeper); work orders by status (the
outbox's ``OrdersByStatus``, one count per order entering a status) and notification failures
(outbox); API latency and errors (API Gateway); and the state of every alarm of
:class:`~infra.constructs.monitoring.Monitoring`.

Metric names are the Powertools metrics the functions emit (namespace ``SmartZone``, dimension
``service=smartzone``); metrics with a second dimension (``reason``, ``status``) are shown with
a CloudWatch search expression, so a new reason or status appears without a deploy.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct

from infra.constructs.functions import METRICS_NAMESPACE, SERVICE_NAME
from infra.constructs.monitoring import Monitoring

MINUTE = cdk.Duration.minutes(1)
FIVE_MINUTES = cdk.Duration.minutes(5)
WIDTH = 12
HEIGHT = 6

READING_METRICS = (
    "ReadingsReceived",
    "ReadingsApplied",
    "ReadingsRejected",
    "ReadingsStale",
    "ReadingsRetried",
)
SENSOR_ALARM_METRICS = (
    "AlarmsRaised",
    "AlarmsCleared",
    "OfflineAlarmsRaised",
    "OfflineIncidents",
    "OrdersEscalated",
)
NOTIFICATION_FAILURE_METRICS = ("NotificationsParked", "NotificationsParkFailed", "OutboxSinkFailed")
REJECTS_BY_REASON = "ReadingsRejectedByReason"
ORDERS_BY_STATUS = "OrdersByStatus"


def platform_metric(name: str, period: cdk.Duration = MINUTE, label: str | None = None) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace=METRICS_NAMESPACE,
        metric_name=name,
        dimensions_map={"service": SERVICE_NAME},
        statistic="Sum",
        period=period,
        label=label or name,
    )


def search(metric_name: str, dimension: str, period: cdk.Duration, label: str) -> cloudwatch.MathExpression:
    """Every series of ``metric_name`` by ``dimension`` (one line per reason / status)."""
    return cloudwatch.MathExpression(
        expression=(
            f"SEARCH('{{{METRICS_NAMESPACE},service,{dimension}}} MetricName=\"{metric_name}\"', "
            f"'Sum', {int(period.to_seconds())})"
        ),
        using_metrics={},
        label=label,
        period=period,
    )


class OpsDashboard(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, monitoring: Monitoring) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=f"{stack.stack_name}-operations",
            default_interval=cdk.Duration.hours(6),
        )
        self.dashboard_name = f"{stack.stack_name}-operations"
        self.dashboard.add_widgets(
            cloudwatch.TextWidget(
                markdown=(
                    f"# {stack.stack_name} 运行看板 operations\n"
                    "Alarms: see docs/runbook.md · redrive: `python -m tools.redrive` · "
                    "replay: `python -m tools.replay_readings`"
                ),
                width=24,
                height=2,
            )
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="设备上报 Readings per minute",
                left=[platform_metric(name) for name in READING_METRICS],
                width=WIDTH,
                height=HEIGHT,
            ),
            cloudwatch.GraphWidget(
                title="拒收原因 Rejects by reason",
                left=[search(REJECTS_BY_REASON, "reason", FIVE_MINUTES, "rejected")],
                width=WIDTH,
                height=HEIGHT,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="告警产生与解除 Alarms raised and cleared",
                left=[platform_metric(name, FIVE_MINUTES) for name in SENSOR_ALARM_METRICS],
                width=WIDTH,
                height=HEIGHT,
            ),
            cloudwatch.GraphWidget(
                title="工单状态 Orders by status (orders entering each status)",
                left=[search(ORDERS_BY_STATUS, "status", FIVE_MINUTES, "orders")],
                width=WIDTH,
                height=HEIGHT,
                stacked=True,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="通知失败 Notification failures",
                left=[platform_metric(name, FIVE_MINUTES) for name in NOTIFICATION_FAILURE_METRICS],
                right=[platform_metric("NotificationsPublished", FIVE_MINUTES)],
                width=WIDTH,
                height=HEIGHT,
            ),
            *[
                cloudwatch.GraphWidget(
                    title=f"接口延迟 API latency ({name})",
                    left=[
                        stage.metric_latency(period=MINUTE, statistic=stat, label=f"latency {stat}")
                        for stat in ("p50", "p90", "p99")
                    ],
                    right=[
                        stage.metric_client_error(period=MINUTE, statistic="Sum", label="4xx"),
                        stage.metric_server_error(period=MINUTE, statistic="Sum", label="5xx"),
                    ],
                    width=WIDTH,
                    height=HEIGHT,
                )
                for name, stage in monitoring.api_stages
            ],
        )
        self.dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(
                title="告警状态 Alarm states",
                alarms=list(monitoring.alarms),
                width=24,
                height=max(4, 2 + len(monitoring.alarms) // 4),
            )
        )
