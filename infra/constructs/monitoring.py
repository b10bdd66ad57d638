"""Operators' alarms: every function, queue, stream consumer, API, schedule and IoT rule of the stack.

:class:`Monitoring` is created LAST in the stack: it walks the construct tree and gives

- every Lambda function (ours and CDK's own) an errors and a throttles alarm;
- every dead-letter queue (named in a redrive policy, an event-source on-failure destination,
  a function's or an EventBridge target's dead-letter config) and every parking queue (tagged
  ``smartzone:queue`` rejects / rule-errors / publish-retry / stream-failures) a depth alarm;
- every SQS queue a Lambda consumes an oldest-message-age alarm (the telemetry buffer's is
  ``alarm_buffer_age_s``);
- every stream consumer (DynamoDB / Kinesis event source) an iterator-age alarm;
- every IoT topic rule a failure alarm, and its error queue a "received anything" alarm;
- every REST API stage a 5xx and a p99-latency alarm;
- every function on a ``rate(…)`` schedule a "not running" alarm (missing data breaches);
- the fleet's reporting rate (the telemetry function's ``ReadingsReceived``) a drop alarm
  against an expected rate, plus an anomaly-detection alarm where enabled.

Alarm names are ``<stack>-<Signal>-<subject>`` (stack ``SmartZone-prod`` → ``SmartZone-prod-…``);
each description says, in Chinese and English, what it means and where the runbook section is
(``docs/runbook.md#<signal>``). Alarms and their clearing go to the operators' SNS topic
(KMS-encrypted with its own key, TLS-only); ``ops_alarm_email`` subscribes an address.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk import region_info
from constructs import Construct

from infra.constructs.functions import METRICS_NAMESPACE, SERVICE_NAME
from infra.constructs.queues import QueueRole, queue_role

RUNBOOK = "docs/runbook.md"
FLEET_METRIC = "ReadingsReceived"
"""The telemetry function's Powertools metric (namespace ``SmartZone``, dimension ``service``)."""
LAMBDA_TYPE = "AWS::Lambda::Function"


class Signal:
    """Alarm kinds: the middle part of every alarm name and the runbook's section anchors."""

    FUNCTION_ERRORS = "FunctionErrors"
    FUNCTION_THROTTLES = "FunctionThrottles"
    DEAD_LETTERS = "DeadLetters"
    PARKED = "Parked"
    QUEUE_AGE = "QueueAge"
    ITERATOR_AGE = "IteratorAge"
    RULE_FAILURES = "RuleFailures"
    RULE_ERRORS = "RuleErrors"
    API_5XX = "Api5xx"
    API_LATENCY = "ApiLatencyP99"
    SCHEDULE_MISSED = "ScheduleMissed"
    FLEET_DROP = "FleetReportingDrop"
    FLEET_ANOMALY = "FleetReportingAnomaly"
    WORKFLOW_FAILURES = "WorkflowFailures"

    ALL = (
        FUNCTION_ERRORS,
        FUNCTION_THROTTLES,
        DEAD_LETTERS,
        PARKED,
        QUEUE_AGE,
        ITERATOR_AGE,
        RULE_FAILURES,
        RULE_ERRORS,
        API_5XX,
        API_LATENCY,
        SCHEDULE_MISSED,
        FLEET_DROP,
        FLEET_ANOMALY,
        WORKFLOW_FAILURES,
    )


def runbook_anchor(signal: str) -> str:
    return f"{RUNBOOK}#{signal.lower()}"


@dataclass(frozen=True)
class MonitoringSettings:
    """Thresholds (CDK context keys of the same names; presets per environment)."""

    ops_alarm_email: str = ""
    """Subscribes this address to the operators' topic (confirm the e-mail AWS sends)."""
    alarm_period_s: int = 300
    alarm_queue_depth: int = 1
    """Dead-letter and parking queues: alarm at this many visible messages."""
    alarm_queue_age_s: int = 900
    """Any queue a function consumes: alarm when its oldest message is this old."""
    alarm_buffer_age_s: int = 300
    """The telemetry buffer: alarm when its oldest message is this old."""
    alarm_iterator_age_s: int = 300
    """Stream consumers: alarm when records wait this long (the stream keeps them 24 h)."""
    alarm_function_errors: int = 1
    alarm_function_throttles: int = 1
    alarm_api_5xx: int = 5
    """API 5xx responses per period."""
    alarm_api_p99_ms: int = 3000
    alarm_schedule_missed_periods: int = 3
    """A scheduled function with no invocation for this many schedule intervals."""
    fleet_expected_readings_per_min: float = 40.0
    """Readings per minute of the healthy fleet (600 covers every 15 min = 40); 0 disables."""
    fleet_drop_ratio: float = 0.5
    """Alarm when the fleet reports less than this share of the expected rate (for 15 min)."""
    fleet_anomaly_detection: bool | None = None
    """CloudWatch anomaly detection on the reading rate (default: on, except in aws-cn)."""

    @classmethod
    def from_context(cls, node: Any) -> MonitoringSettings:
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = node.try_get_context(f.name)
            if raw is None:
                continue
            if f.name == "fleet_anomaly_detection":
                values[f.name] = raw if isinstance(raw, bool) else str(raw).lower() in {"true", "1", "yes"}
                continue
            kind = {"int": int, "float": float, "str": str}[str(f.type).split(" ")[0]]
            try:
                values[f.name] = kind(raw)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"context {f.name}={raw!r} is not a valid {kind.__name__}") from exc
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.alarm_period_s not in (60, 120, 180, 240, 300, 600, 900, 1800, 3600):
            raise ValueError("alarm_period_s must be a whole number of minutes that divides an hour")
        positive = (
            "alarm_queue_depth",
            "alarm_queue_age_s",
            "alarm_buffer_age_s",
            "alarm_iterator_age_s",
            "alarm_function_errors",
            "alarm_function_throttles",
            "alarm_api_5xx",
            "alarm_api_p99_ms",
            "alarm_schedule_missed_periods",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.fleet_expected_readings_per_min < 0 or not 0 < self.fleet_drop_ratio < 1:
            raise ValueError("fleet_expected_readings_per_min ≥ 0 and 0 < fleet_drop_ratio < 1")
        if self.ops_alarm_email and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", self.ops_alarm_email):
            raise ValueError(f"ops_alarm_email={self.ops_alarm_email!r} is not an e-mail address")


def _subject(path: str, stack_path: str) -> str:
    """``SmartZone/Ingest/Buffer/Dlq`` → ``Ingest-Buffer-Dlq`` (a readable, unique name part)."""
    parts = path.removeprefix(stack_path + "/").split("/")
    while len(parts) > 1 and parts[-1] in {"Resource", "Function", "Queue", "Default"}:
        parts.pop()
    return re.sub(r"[^A-Za-z0-9_.-]", "-", "-".join(parts))[:160]


def _logical_id(stack: cdk.Stack, value: Any) -> str | None:
    """The logical id a resolved ``Ref`` / ``Fn::GetAtt`` points at."""
    resolved = stack.resolve(value)
    if isinstance(resolved, dict) and len(resolved) == 1:
        ((fn, arg),) = resolved.items()
        if fn == "Ref" and isinstance(arg, str):
            return arg
        if fn == "Fn::GetAtt":
            return str(arg[0]) if isinstance(arg, list) else str(arg).split(".", 1)[0]
    return None


def _get(mapping: Any, name: str) -> Any:
    """``name`` of a resolved struct, whichever case its first letter has (CDK vs. CloudFormation)."""
    if not isinstance(mapping, dict):
        return None
    return mapping.get(name, mapping.get(name[:1].upper() + name[1:]))


def _rate_seconds(expression: str) -> int | None:
    match = re.fullmatch(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)", expression.strip())
    if match is None:
        return None
    return int(match.group(1)) * {"minute": 60, "hour": 3600, "day": 86400}[match.group(2).rstrip("s")]


class Monitoring(Construct):
    """The operators' topic and every alarm (see the module docstring). Create it last."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: MonitoringSettings,
        removal_policy: cdk.RemovalPolicy = cdk.RemovalPolicy.RETAIN,
    ) -> None:
        super().__init__(scope, construct_id)
        self.stack = cdk.Stack.of(self)
        self.settings = settings
        self.prefix = self.stack.stack_name
        self.period = cdk.Duration.seconds(settings.alarm_period_s)
        self.alarms: list[cloudwatch.AlarmBase] = []
        self.api_stages: list[tuple[str, apigateway.Stage]] = []
        region = self.stack.region
        self.partition = (
            "aws"
            if cdk.Token.is_unresolved(region)
            else (region_info.RegionInfo.get(region).partition or "aws")
        )

        self.key = kms.Key(
            self,
            "OpsKey",
            description="SmartZone operators' alarm topic (CloudWatch publishes with it)",
            enable_key_rotation=True,
            removal_policy=removal_policy,
        )
        # CloudWatch alarms publish to an encrypted topic only if the key lets the service use it.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
            )
        )
        self.topic = sns.Topic(
            self,
            "OpsTopic",
            display_name="SmartZone operators",
            master_key=self.key,
            enforce_ssl=True,
        )
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsOfThisAccount",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={"StringEquals": {"aws:SourceAccount": cdk.Aws.ACCOUNT_ID}},
            )
        )
        if settings.ops_alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(settings.ops_alarm_email))
        self.action = cw_actions.SnsAction(self.topic)

        resources = [c for c in self.stack.node.find_all() if isinstance(c, cdk.CfnResource)]
        self._functions = {
            self.stack.resolve(c.logical_id): c for c in resources if c.cfn_resource_type == LAMBDA_TYPE
        }
        self._queues = {self.stack.resolve(c.logical_id): c for c in resources if isinstance(c, sqs.CfnQueue)}
        for logical_id, fn in sorted(self._functions.items()):
            self._function_alarms(logical_id, fn)
        self._queue_alarms(resources)
        self._event_source_alarms(resources)
        self._rule_alarms(resources)
        self._api_alarms()
        self._schedule_alarms(resources)
        self._workflow_alarms(resources)
        self._fleet_alarms()

    # -- helpers ---------------------------------------------------------------------------

    def alarm(
        self,
        signal: str,
        subject: str,
        metric: cloudwatch.IMetric,
        *,
        threshold: float,
        comparison: cloudwatch.ComparisonOperator = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluation_periods: int = 1,
        datapoints: int | None = None,
        missing: cloudwatch.TreatMissingData = cloudwatch.TreatMissingData.NOT_BREACHING,
        zh: str,
        en: str,
    ) -> cloudwatch.Alarm:
        name = f"{self.prefix}-{signal}-{subject}"
        description = f"{zh}\n{en}\nRunbook: {runbook_anchor(signal)}"
        alarm = cloudwatch.Alarm(
            self,
            f"{signal}-{subject}",
            alarm_name=name,
            alarm_description=description[:1024],
            metric=metric,
            threshold=threshold,
            comparison_operator=comparison,
            evaluation_periods=evaluation_periods,
            datapoints_to_alarm=datapoints,
            treat_missing_data=missing,
        )
        alarm.add_alarm_action(self.action)
        alarm.add_ok_action(self.action)
        self.alarms.append(alarm)
        return alarm

    def _metric(
        self, namespace: str, name: str, dimensions: dict[str, Any], statistic: str = "Sum"
    ) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace=namespace,
            metric_name=name,
            dimensions_map=dimensions,
            statistic=statistic,
            period=self.period,
        )

    def _name(self, resource: cdk.CfnResource) -> str:
        return _subject(resource.node.path, self.stack.node.path)

    # -- functions -------------------------------------------------------------------------

    def _function_alarms(self, _logical_id: str, fn: cdk.CfnResource) -> None:
        dims = {"FunctionName": fn.ref}
        subject = self._name(fn)
        self.alarm(
            Signal.FUNCTION_ERRORS,
            subject,
            self._metric("AWS/Lambda", "Errors", dims),
            threshold=self.settings.alarm_function_errors,
            zh=f"函数 {subject} 调用出错（未处理的异常或超时）。",
            en=f"Lambda function {subject} failed invocations (unhandled errors or timeouts).",
        )
        self.alarm(
            Signal.FUNCTION_THROTTLES,
            subject,
            self._metric("AWS/Lambda", "Throttles", dims),
            threshold=self.settings.alarm_function_throttles,
            zh=f"函数 {subject} 被限流（并发不足）。",
            en=f"Lambda function {subject} was throttled (not enough concurrency).",
        )

    # -- queues ----------------------------------------------------------------------------

    def dead_letter_queue_ids(self, resources: Iterable[cdk.CfnResource]) -> set[str]:
        """Queues that receive what another resource gave up on."""
        targets: list[Any] = []
        for r in resources:
            if isinstance(r, sqs.CfnQueue):
                policy = self.stack.resolve(r.redrive_policy) or {}
                if isinstance(policy, str):
                    policy = json.loads(policy)
                targets.append(_get(policy, "deadLetterTargetArn"))
            elif isinstance(r, lambda_.CfnEventSourceMapping):
                config = self.stack.resolve(r.destination_config) or {}
                targets.append(_get(_get(config, "onFailure") or {}, "destination"))
            elif isinstance(r, lambda_.CfnFunction):
                targets.append(_get(self.stack.resolve(r.dead_letter_config) or {}, "targetArn"))
            elif isinstance(r, events.CfnRule):
                for target in self.stack.resolve(r.targets) or []:
                    targets.append(_get(_get(target, "deadLetterConfig") or {}, "arn"))
        ids = {_logical_id(self.stack, t) for t in targets if t is not None}
        return {i for i in ids if i is not None and i in self._queues}

    def _queue_alarms(self, resources: list[cdk.CfnResource]) -> None:
        dlqs = self.dead_letter_queue_ids(resources)
        for logical_id, queue in sorted(self._queues.items()):
            role = queue_role(queue)
            dims = {"QueueName": queue.attr_queue_name}
            subject = self._name(queue)
            depth = self._metric("AWS/SQS", "ApproximateNumberOfMessagesVisible", dims, "Maximum")
            if logical_id in dlqs:
                self.alarm(
                    Signal.DEAD_LETTERS,
                    subject,
                    depth,
                    threshold=self.settings.alarm_queue_depth,
                    zh=f"死信队列 {subject} 有消息：处理多次失败的消息停在这里，需排查后重新投递。",
                    en=f"Dead-letter queue {subject} holds messages that failed repeatedly: "
                    "find the cause, then redrive them (python -m tools.redrive).",
                )
            elif role in QueueRole.PARKING:
                self.alarm(
                    Signal.PARKED,
                    subject,
                    depth,
                    threshold=self.settings.alarm_queue_depth,
                    zh=f"队列 {subject}（{role}）有待处理的消息：被拒绝或发送失败的记录。",
                    en=f"Parking queue {subject} ({role}) holds refused or failed records: inspect them, "
                    "then redrive or discard them.",
                )

    # -- event sources -----------------------------------------------------------------------

    def _event_source_alarms(self, resources: list[cdk.CfnResource]) -> None:
        for r in resources:
            if not isinstance(r, lambda_.CfnEventSourceMapping):
                continue
            source_id = _logical_id(self.stack, r.event_source_arn)
            function_id = _logical_id(self.stack, r.function_name)
            fn = self._functions.get(function_id or "")
            if source_id in self._queues:
                queue = self._queues[source_id]
                buffer = queue_role(queue) == QueueRole.TELEMETRY_BUFFER
                limit = self.settings.alarm_buffer_age_s if buffer else self.settings.alarm_queue_age_s
                subject = self._name(queue)
                self.alarm(
                    Signal.QUEUE_AGE,
                    subject,
                    self._metric(
                        "AWS/SQS",
                        "ApproximateAgeOfOldestMessage",
                        {"QueueName": queue.attr_queue_name},
                        "Maximum",
                    ),
                    threshold=limit,
                    evaluation_periods=2,
                    zh=f"队列 {subject} 最旧消息已等待超过 {limit} 秒：消费函数停滞或处理不过来。",
                    en=f"The oldest message of {subject} is older than {limit} s: its consumer is "
                    "stalled, failing or too slow.",
                )
            elif fn is not None and r.starting_position is not None:
                subject = self._name(fn)
                limit_ms = self.settings.alarm_iterator_age_s * 1000
                self.alarm(
                    Signal.ITERATOR_AGE,
                    subject,
                    self._metric("AWS/Lambda", "IteratorAge", {"FunctionName": fn.ref}, "Maximum"),
                    threshold=limit_ms,
                    evaluation_periods=2,
                    zh=f"流消费函数 {subject} 落后超过 {self.settings.alarm_iterator_age_s} 秒"
                    "（流记录只保留 24 小时）。",
                    en=f"Stream consumer {subject} lags more than {self.settings.alarm_iterator_age_s} s "
                    "behind (stream records expire after 24 h).",
                )

    # -- IoT rules -----------------------------------------------------------------------------

    def _rule_alarms(self, resources: list[cdk.CfnResource]) -> None:
        for r in resources:
            if r.cfn_resource_type != "AWS::IoT::TopicRule":
                continue
            subject = self._name(r)
            self.alarm(
                Signal.RULE_FAILURES,
                subject,
                self._metric("AWS/IoT", "Failure", {"RuleName": r.ref}),
                threshold=1,
                zh=f"IoT 规则 {subject} 的动作执行失败。",
                en=f"IoT topic rule {subject} failed to run an action (its error action keeps the message).",
            )
        for queue in self._queues.values():
            if queue_role(queue) != QueueRole.RULE_ERRORS:
                continue
            subject = self._name(queue)
            self.alarm(
                Signal.RULE_ERRORS,
                subject,
                self._metric("AWS/SQS", "NumberOfMessagesSent", {"QueueName": queue.attr_queue_name}),
                threshold=1,
                zh=f"IoT 规则错误队列 {subject} 收到消息：设备数据未能进入缓冲队列或归档。",
                en=f"The IoT rule error queue {subject} received messages: readings did not reach "
                "the buffer or the archive.",
            )

    # -- API -------------------------------------------------------------------------------------

    def _api_alarms(self) -> None:
        for api in (c for c in self.stack.node.find_all() if isinstance(c, apigateway.RestApi)):
            stage = api.deployment_stage
            subject = _subject(api.node.path, self.stack.node.path)
            self.api_stages.append((subject, stage))
            self.alarm(
                Signal.API_5XX,
                subject,
                stage.metric_server_error(period=self.period, statistic="Sum"),
                threshold=self.settings.alarm_api_5xx,
                zh=f"接口 {subject} 返回 5xx 错误过多。",
                en=f"API {subject} answered 5xx at least {self.settings.alarm_api_5xx} times in a period.",
            )
            self.alarm(
                Signal.API_LATENCY,
                subject,
                stage.metric_latency(period=self.period, statistic="p99"),
                threshold=self.settings.alarm_api_p99_ms,
                evaluation_periods=3,
                datapoints=2,
                zh=f"接口 {subject} 的 p99 延迟超过 {self.settings.alarm_api_p99_ms} 毫秒。",
                en=f"API {subject} p99 latency is above {self.settings.alarm_api_p99_ms} ms.",
            )

    # -- schedules -------------------------------------------------------------------------------

    def _schedule_alarms(self, resources: list[cdk.CfnResource]) -> None:
        for r in resources:
            if not isinstance(r, events.CfnRule):
                continue
            interval = _rate_seconds(str(r.schedule_expression or ""))
            if interval is None:
                continue
            for target in self.stack.resolve(r.targets) or []:
                fn = self._functions.get(_logical_id(self.stack, _get(target, "arn")) or "")
                if fn is None:
                    continue
                period = max(60, interval)
                periods = self.settings.alarm_schedule_missed_periods
                subject = self._name(fn)
                self.alarm(
                    Signal.SCHEDULE_MISSED,
                    subject,
                    cloudwatch.Metric(
                        namespace="AWS/Lambda",
                        metric_name="Invocations",
                        dimensions_map={"FunctionName": fn.ref},
                        statistic="Sum",
                        period=cdk.Duration.seconds(period),
                    ),
                    threshold=1,
                    comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                    evaluation_periods=periods,
                    missing=cloudwatch.TreatMissingData.BREACHING,
                    zh=f"定时函数 {subject} 已有 {periods} 个周期未运行（SLA 升级和离线检测停止）。",
                    en=f"Scheduled function {subject} has not run for {periods} intervals of {period} s.",
                )

    # -- workflows (Step Functions) ---------------------------------------------------------------

    def _workflow_alarms(self, resources: list[cdk.CfnResource]) -> None:
        for r in resources:
            if r.cfn_resource_type != "AWS::StepFunctions::StateMachine":
                continue
            subject = self._name(r)
            failed = cloudwatch.MathExpression(
                expression="FILL(failed, 0) + FILL(timedout, 0) + FILL(aborted, 0)",
                using_metrics={
                    name: self._metric("AWS/States", metric, {"StateMachineArn": r.ref})
                    for name, metric in (
                        ("failed", "ExecutionsFailed"),
                        ("timedout", "ExecutionsTimedOut"),
                        ("aborted", "ExecutionsAborted"),
                    )
                },
                label="executions failed, timed out or aborted",
                period=self.period,
            )
            self.alarm(
                Signal.WORKFLOW_FAILURES,
                subject,
                failed,
                threshold=1,
                zh=f"工作流 {subject} 有执行失败、超时或中止。",
                en=f"State machine {subject} had executions that failed, timed out or were aborted.",
            )

    # -- the fleet -------------------------------------------------------------------------------

    def fleet_metric(self, period: cdk.Duration | None = None) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace=METRICS_NAMESPACE,
            metric_name=FLEET_METRIC,
            dimensions_map={"service": SERVICE_NAME},
            statistic="Sum",
            period=period or self.period,
        )

    def _fleet_alarms(self) -> None:
        expected = self.settings.fleet_expected_readings_per_min
        if expected > 0:
            minutes = self.settings.alarm_period_s / 60
            floor = expected * minutes * self.settings.fleet_drop_ratio
            rate = cloudwatch.MathExpression(
                expression="FILL(readings, 0)",
                using_metrics={"readings": self.fleet_metric()},
                label="readings per period",
                period=self.period,
            )
            self.alarm(
                Signal.FLEET_DROP,
                "Telemetry",
                rate,
                threshold=floor,
                comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                evaluation_periods=3,
                missing=cloudwatch.TreatMissingData.BREACHING,
                zh=f"设备上报量骤降：每分钟少于预期 {expected:g} 条的 {self.settings.fleet_drop_ratio:.0%}"
                "（IoT 接入、规则或网络故障）。",
                en=f"The fleet reports less than {self.settings.fleet_drop_ratio:.0%} of the expected "
                f"{expected:g} readings per minute (IoT, rule or network outage).",
            )
        anomaly = self.settings.fleet_anomaly_detection
        if anomaly is None:
            anomaly = self.partition != "aws-cn"
        self.anomaly_alarm: cloudwatch.AnomalyDetectionAlarm | None = None
        if anomaly:
            self.anomaly_alarm = cloudwatch.AnomalyDetectionAlarm(
                self,
                f"{Signal.FLEET_ANOMALY}-Telemetry",
                alarm_name=f"{self.prefix}-{Signal.FLEET_ANOMALY}-Telemetry",
                alarm_description=(
                    "设备上报量低于历史规律（CloudWatch 异常检测）。\n"
                    "The fleet's reading rate fell below the band CloudWatch learned from its history.\n"
                    f"Runbook: {runbook_anchor(Signal.FLEET_ANOMALY)}"
                ),
                metric=self.fleet_metric(),
                std_devs=3,
                comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_LOWER_THRESHOLD,
                evaluation_periods=3,
                treat_missing_data=cloudwatch.TreatMissingData.BREACHING,
            )
            self.anomaly_alarm.add_alarm_action(self.action)
            self.anomaly_alarm.add_ok_action(self.action)
            self.alarms.append(self.anomaly_alarm)
