"""Alarms, the operators' topic and the operations dashboard (CDK assertions on the session synths).

Coverage is checked from the synthesized template itself, so that a function or dead-letter
queue added later without an alarm (or an alarm without a runbook section) fails here.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from infra.constructs.monitoring import Signal
from infra.constructs.queues import QUEUE_ROLE_TAG, QueueRole
from tests.infra.conftest import Synth

RUNBOOK = "docs/runbook.md"


def alarms(synth: Synth) -> dict[str, dict[str, Any]]:
    return {k: v["Properties"] for k, v in synth.resources("AWS::CloudWatch::Alarm").items()}


def ref_id(value: Any) -> str | None:
    if isinstance(value, dict) and "Ref" in value:
        return str(value["Ref"])
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return str(value["Fn::GetAtt"][0])
    return None


def alarmed(synth: Synth, metric: str, dimension: str) -> set[str]:
    """Logical ids whose ``dimension`` appears in an alarm on ``metric``."""
    found: set[str] = set()
    for alarm in alarms(synth).values():
        if alarm.get("MetricName") != metric:
            continue
        for dim in alarm.get("Dimensions", []):
            if dim["Name"] == dimension and ref_id(dim["Value"]):
                found.add(str(ref_id(dim["Value"])))
    return found


def dead_letter_queues(synth: Synth) -> set[str]:
    """Every queue that receives another resource's failures, read from the template."""
    targets: list[Any] = []
    for resource in synth.template_json["Resources"].values():
        p = resource.get("Properties", {}) or {}
        kind = resource["Type"]
        if kind == "AWS::SQS::Queue":
            targets.append((p.get("RedrivePolicy") or {}).get("deadLetterTargetArn"))
        elif kind == "AWS::Lambda::EventSourceMapping":
            targets.append(((p.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination"))
        elif kind == "AWS::Lambda::Function":
            targets.append((p.get("DeadLetterConfig") or {}).get("TargetArn"))
        elif kind == "AWS::Events::Rule":
            targets.extend((t.get("DeadLetterConfig") or {}).get("Arn") for t in p.get("Targets") or [])
    queues = synth.resources("AWS::SQS::Queue")
    return {i for i in (ref_id(t) for t in targets) if i in queues}


def queue_roles(synth: Synth) -> dict[str, str]:
    roles = {}
    for logical_id, queue in synth.resources("AWS::SQS::Queue").items():
        for tag in queue["Properties"].get("Tags", []):
            if tag["Key"] == QUEUE_ROLE_TAG:
                roles[logical_id] = tag["Value"]
    return roles


def test_given_the_stack_when_synthesized_then_every_function_has_errors_and_throttles_alarms(
    synth: Synth,
) -> None:
    functions = set(synth.resources("AWS::Lambda::Function"))
    assert functions
    assert functions <= alarmed(synth, "Errors", "FunctionName")
    assert functions <= alarmed(synth, "Throttles", "FunctionName")


def test_given_the_stack_when_synthesized_then_every_state_machine_has_a_failures_alarm(synth: Synth) -> None:
    machines = set(synth.resources("AWS::StepFunctions::StateMachine"))
    watched = {
        ref_id(dim["Value"])
        for alarm in alarms(synth).values()
        for query in alarm.get("Metrics", [])
        for dim in (query.get("MetricStat") or {}).get("Metric", {}).get("Dimensions", [])
        if dim["Name"] == "StateMachineArn"
    }
    assert machines <= watched


def test_given_the_stack_when_synthesized_then_every_dead_letter_and_parking_queue_has_a_depth_alarm(
    synth: Synth,
) -> None:
    dlqs = dead_letter_queues(synth)
    parking = {q for q, role in queue_roles(synth).items() if role in QueueRole.PARKING}
    # The five EncryptedQueue DLQs and the outbox stream's on-failure destination at least.
    assert len(dlqs) >= 6
    assert {QueueRole.REJECTS, QueueRole.RULE_ERRORS, QueueRole.PUBLISH_RETRY} <= set(
        queue_roles(synth).values()
    )
    assert dlqs | parking <= alarmed(synth, "ApproximateNumberOfMessagesVisible", "QueueName")


def test_given_the_specific_signals_when_synthesized_then_each_has_its_alarm(global_synth: Synth) -> None:
    by_name = {a["AlarmName"]: a for a in alarms(global_synth).values()}
    buffer_id = next(q for q, r in queue_roles(global_synth).items() if r == QueueRole.TELEMETRY_BUFFER)
    errors_id = next(q for q, r in queue_roles(global_synth).items() if r == QueueRole.RULE_ERRORS)

    age = by_name["SmartZone-QueueAge-Ingest-Buffer"]
    assert age["MetricName"] == "ApproximateAgeOfOldestMessage" and age["Threshold"] == 300
    assert ref_id(age["Dimensions"][0]["Value"]) == buffer_id

    iterator = by_name["SmartZone-IteratorAge-Notifications-Outbox"]
    assert iterator["MetricName"] == "IteratorAge" and iterator["Threshold"] == 300_000

    rule = by_name["SmartZone-RuleFailures-Ingest-TelemetryRule"]
    assert (rule["Namespace"], rule["MetricName"]) == ("AWS/IoT", "Failure")
    received = by_name["SmartZone-RuleErrors-Ingest-RuleErrors"]
    assert received["MetricName"] == "NumberOfMessagesSent" and received["Threshold"] == 1
    assert ref_id(received["Dimensions"][0]["Value"]) == errors_id

    assert by_name["SmartZone-Api5xx-Api-RestApi"]["MetricName"] == "5XXError"
    latency = by_name["SmartZone-ApiLatencyP99-Api-RestApi"]
    assert (latency["MetricName"], latency["ExtendedStatistic"]) == ("Latency", "p99")

    sweeper = by_name["SmartZone-ScheduleMissed-Sweeper-Sweeper"]
    assert sweeper["MetricName"] == "Invocations"
    assert sweeper["ComparisonOperator"] == "LessThanThreshold" and sweeper["Threshold"] == 1
    assert sweeper["TreatMissingData"] == "breaching" and sweeper["Period"] == 300
    assert sweeper["EvaluationPeriods"] == 3

    fleet = by_name["SmartZone-FleetReportingDrop-Telemetry"]
    (readings,) = [m for m in fleet["Metrics"] if "MetricStat" in m]
    metric = readings["MetricStat"]["Metric"]
    assert (metric["Namespace"], metric["MetricName"]) == ("SmartZone", "ReadingsReceived")
    assert metric["Dimensions"] == [{"Name": "service", "Value": "smartzone"}]
    # 40 readings/min expected × 5 min × 50 %.
    assert fleet["Threshold"] == 100 and fleet["TreatMissingData"] == "breaching"
    anomaly = by_name["SmartZone-FleetReportingAnomaly-Telemetry"]
    assert anomaly["ComparisonOperator"] == "LessThanLowerThreshold"


def test_given_aws_china_when_synthesized_then_the_fleet_uses_the_expected_rate_without_anomaly_detection(
    cn_synth: Synth,
) -> None:
    names = {a["AlarmName"] for a in alarms(cn_synth).values()}
    assert "SmartZone-FleetReportingDrop-Telemetry" in names
    assert not any(Signal.FLEET_ANOMALY in name for name in names)


def test_given_every_alarm_when_synthesized_then_it_notifies_the_ops_topic_on_alarm_and_on_clear(
    synth: Synth,
) -> None:
    topic_id, topic = synth.only("AWS::SNS::Topic", "MonitoringOpsTopic")
    key_id, _ = synth.only("AWS::KMS::Key", "MonitoringOpsKey")
    assert ref_id(topic["Properties"]["KmsMasterKeyId"]) == key_id
    for alarm in alarms(synth).values():
        assert [ref_id(a) for a in alarm["AlarmActions"]] == [topic_id], alarm["AlarmName"]
        assert [ref_id(a) for a in alarm["OKActions"]] == [topic_id], alarm["AlarmName"]
        assert alarm["AlarmName"].startswith("SmartZone-")
        assert re.search(r"[\u4e00-\u9fff]", alarm["AlarmDescription"]), alarm["AlarmName"]
        assert f"{RUNBOOK}#" in alarm["AlarmDescription"]
    policies = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in synth.resources("AWS::SNS::TopicPolicy").values()
        if any(ref_id(t) == topic_id for t in p["Properties"]["Topics"])
    ]
    (statements,) = policies
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for s in statements
    )


def test_given_the_runbook_when_read_then_it_covers_every_alarm_of_the_template(synth: Synth) -> None:
    from infra.constructs import REPO_ROOT

    runbook = (REPO_ROOT / RUNBOOK).read_text(encoding="utf-8")
    names = [a["AlarmName"] for a in alarms(synth).values()]
    assert names
    for name in names:
        signal = name.removeprefix("SmartZone-").split("-", 1)[0]
        assert signal in Signal.ALL, name
        assert f'<a id="{signal.lower()}"></a>' in runbook, f"{name}: no runbook section #{signal.lower()}"
        assert f"<stack>-{signal}-" in runbook, f"{name}: the runbook does not show the name pattern"


def test_given_the_dashboard_when_synthesized_then_it_shows_the_platform_metrics(global_synth: Synth) -> None:
    _, dashboard = global_synth.only("AWS::CloudWatch::Dashboard")
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    assert dashboard["Properties"]["DashboardName"] == "SmartZone-operations"
    for metric in (
        "ReadingsReceived",  # readings per minute
        "ReadingsRejectedByReason",  # rejects by reason
        "AlarmsRaised",
        "AlarmsCleared",
        "OrdersByStatus",  # orders by status (outbox)
        "NotificationsParked",  # notification failures
        "OutboxSinkFailed",
        "Latency",  # API latency
        "p99",
    ):
        assert metric in body, metric
    assert "alarm" in body  # the alarm status widget


class _Node:
    def __init__(self, context: dict[str, Any]) -> None:
        self.context = context

    def try_get_context(self, key: str) -> Any:
        return self.context.get(key)


def test_given_context_strings_when_reading_settings_then_they_are_converted_and_checked() -> None:
    from infra.constructs.monitoring import MonitoringSettings

    settings = MonitoringSettings.from_context(
        _Node({"alarm_api_5xx": "12", "fleet_drop_ratio": "0.3", "fleet_anomaly_detection": "false"})
    )
    assert (settings.alarm_api_5xx, settings.fleet_drop_ratio, settings.fleet_anomaly_detection) == (
        12,
        0.3,
        False,
    )
    for bad in (
        {"alarm_api_5xx": "many"},
        {"fleet_drop_ratio": 1.5},
        {"ops_alarm_email": "ops"},
        {"alarm_period_s": 7},
    ):
        with pytest.raises(ValueError):
            MonitoringSettings.from_context(_Node(bad))
