"""Reading the synthesized template: what the local platform wires, resolves and reports."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.local.provision import Deployment
from infra.local.template import (
    FUNCTIONS_DIR,
    EventPattern,
    FilterPatternError,
    Physical,
    Resolver,
    TemplateDescription,
    TemplateError,
    UnresolvedReference,
    describe_template,
    rate_seconds,
    read_template,
)


def by_package(description: TemplateDescription) -> dict[str, Any]:
    return {fn.package: fn for fn in description.functions.values()}


def test_functions_are_read_with_handler_code_and_limits(description: TemplateDescription) -> None:
    functions = by_package(description)
    assert {"telemetry", "outbox", "api", "sweeper"} <= set(functions)
    telemetry = functions["telemetry"]
    assert telemetry.handler == "telemetry.handler.handler"
    assert telemetry.module == "functions.telemetry.handler" and telemetry.attribute == "handler"
    assert telemetry.source_dir == FUNCTIONS_DIR / "telemetry"
    assert telemetry.asset_path is not None and (telemetry.asset_path / "telemetry").is_dir()
    assert telemetry.runtime.startswith("python3")
    assert telemetry.timeout_s > 0 and telemetry.memory_mb >= 128
    for fn in description.functions.values():
        assert (fn.source_dir / "__init__.py").is_file()


def test_event_source_mappings_are_read(description: TemplateDescription) -> None:
    functions = by_package(description)
    (sqs,) = description.mappings_for(functions["telemetry"].logical_id)
    assert sqs.source_kind == "sqs"
    assert description.resource_type(sqs.source_id) == "AWS::SQS::Queue"
    assert sqs.batch_size > 10 and sqs.batching_window_s >= 1  # > 10 needs a window
    assert sqs.report_batch_item_failures and not sqs.filters

    (stream,) = description.mappings_for(functions["outbox"].logical_id)
    assert stream.source_kind == "dynamodb" and stream.source_id in description.tables
    assert stream.report_batch_item_failures and stream.bisect_on_error
    assert stream.max_retry_attempts is not None and stream.max_retry_attempts >= 1
    assert stream.on_failure_id in description.queues
    assert stream.starting_position == "TRIM_HORIZON"
    order = {"dynamodb": {"Keys": {"pk": {"S": "ORDER#WO-1"}, "sk": {"S": "META"}}}}
    device = {"dynamodb": {"Keys": {"pk": {"S": "DEVICE#MH-0178"}, "sk": {"S": "META"}}}}
    assert stream.accepts(order) and not stream.accepts(device)


def test_queues_have_their_dead_letter_queues(description: TemplateDescription) -> None:
    functions = by_package(description)
    (sqs,) = description.mappings_for(functions["telemetry"].logical_id)
    buffer = description.queues[sqs.source_id]
    assert buffer.dlq_id in description.queues and buffer.max_receive_count
    # Lambda's guidance: visibility timeout at least six times the function timeout.
    assert buffer.visibility_timeout_s >= 6 * functions["telemetry"].timeout_s


def test_table_topic_buckets_and_rule_are_read(description: TemplateDescription) -> None:
    (table,) = description.tables.values()
    assert [k["AttributeName"] for k in table.key_schema] == ["pk", "sk"]
    assert len(table.index_names) >= 1 and table.stream_view_type == "NEW_AND_OLD_IMAGES"
    # The notifications topic and the operators' alarm topic.
    assert {t.removesuffix(t[-8:]) for t in description.topics} >= {"Notifications", "MonitoringOpsTopic"}
    assert description.buckets
    (rule,) = [r for r in description.topic_rules.values() if "smartzone/manhole/" in r.sql]
    assert "FROM 'smartzone/manhole/+/telemetry'" in rule.sql and rule.enabled
    # The detection rules (camera detections, drone changes) feed one buffer, not the telemetry one.
    detection_rules = [r for r in description.topic_rules.values() if r is not rule]
    assert len(detection_rules) == 2 and len({r.actions[0].target_id for r in detection_rules}) == 1
    kinds = {action.kind: action for action in rule.actions}
    assert description.resource_type(kinds["sqs"].target_id or "") == "AWS::SQS::Queue"
    assert kinds["firehose"].target_id in description.delivery_streams
    assert rule.error_action is not None and rule.error_action.target_id in description.queues


def test_schedules_target_functions(description: TemplateDescription) -> None:
    functions = {lid: f.package for lid, f in description.functions.items()}
    (schedule,) = [
        s for s in description.schedules.values() if functions[s.targets[0].function_id] == "sweeper"
    ]
    (target,) = schedule.targets
    assert description.functions[target.function_id].package == "sweeper"
    assert schedule.period_s is not None and schedule.period_s >= 60


def test_the_rest_api_routes_and_authorizer(description: TemplateDescription) -> None:
    (api,) = description.rest_apis.values()
    functions = by_package(description)
    proxy = [m for m in api.methods if m.path == "/v1/{proxy+}" and m.http_method == "ANY"]
    assert len(proxy) == 1
    assert proxy[0].integration_type == "AWS_PROXY" and proxy[0].function_id == functions["api"].logical_id
    authorizer_id = proxy[0].authorizer_id
    assert authorizer_id is not None and authorizer_id in api.authorizers
    assert api.authorizers[authorizer_id].type in {"COGNITO_USER_POOLS", "TOKEN"}
    public = [m for m in api.methods if m.authorization_type == "NONE" and m.integration_type == "AWS_PROXY"]
    assert [(m.http_method, m.path) for m in public if m.function_id == functions["api"].logical_id] == [
        ("GET", "/v1/openapi.json")
    ]
    # The signed detections webhook: its own function, no user authorizer (HMAC in the function).
    webhook = {(m.http_method, m.path) for m in public if m.function_id == functions["webhook"].logical_id}
    assert webhook == {("POST", "/v1/detections"), ("POST", "/v1/detections/uploads")}
    assert api.stage_name


def test_what_cannot_be_emulated_is_reported_with_a_reason(description: TemplateDescription) -> None:
    reported = {item.type for item in description.unsupported}
    assert {"AWS::IAM::Role", "AWS::KMS::Key", "AWS::Logs::LogGroup", "AWS::IoT::Policy"} <= reported
    assert all(item.reason for item in description.unsupported)
    emulated = {
        "AWS::SQS::Queue",
        "AWS::Lambda::EventSourceMapping",
        "AWS::IoT::TopicRule",
        "AWS::ApiGateway::Method",
    }
    # Every resource is either emulated or reported: nothing is skipped silently.
    for logical_id, resource in description.resources.items():
        kind = resource["Type"]
        assert kind in emulated or kind in reported or logical_id in _described(description), logical_id
    lines = description.unsupported_report()
    assert any(line.startswith("AWS::IAM::Role ×") for line in lines)


def _described(description: TemplateDescription) -> set[str]:
    ids: set[str] = set()
    for group in (
        description.functions,
        description.queues,
        description.tables,
        description.topics,
        description.buckets,
        description.secrets,
        description.delivery_streams,
        description.topic_rules,
        description.schedules,
        description.rest_apis,
        description.user_pools,
    ):
        ids.update(group)
    for api in description.rest_apis.values():
        ids.update(m.logical_id for m in api.methods)
        ids.update(api.authorizers)
    ids.update(lid for lid, r in description.resources.items() if r["Type"] == "AWS::ApiGateway::Resource")
    return ids


def test_telemetry_and_outbox_environments_resolve_to_local_resources(
    deployment: Deployment, description: TemplateDescription
) -> None:
    functions = by_package(description)
    table = next(iter(description.tables))
    telemetry = deployment.environment(functions["telemetry"].logical_id)
    assert telemetry["TABLE_NAME"] == deployment.physical[table].ref
    rejects = telemetry["REJECTS_QUEUE_URL"]
    assert rejects.startswith("https://") and rejects in {p.ref for p in deployment.physical.values()}
    assert telemetry["HEARTBEAT_INTERVAL_S"].isdigit()
    assert telemetry["POWERTOOLS_SERVICE_NAME"] == "smartzone"

    outbox = deployment.environment(functions["outbox"].logical_id)
    topic = description.notifications_topic()
    assert topic.startswith("Notifications") and description.topics_named_by("NOTIFICATIONS_TOPIC_ARN") == [
        topic
    ]
    assert outbox["TABLE_NAME"] == telemetry["TABLE_NAME"]
    assert outbox["NOTIFICATIONS_TOPIC_ARN"] == deployment.physical[topic].ref
    assert outbox["NOTIFICATIONS_TOPIC_ARN"].startswith("arn:aws")
    assert outbox["RETRY_QUEUE_URL"] != rejects
    assert outbox["PUBLISH_ATTEMPTS"].isdigit()
    for fn in description.functions.values():
        for value in deployment.environment(fn.logical_id).values():
            # no unresolved intrinsic left (a JSON value such as DEPARTMENT_API_KEYS is fine)
            assert '"Ref"' not in value and "Fn::" not in value and "${" not in value, value

    # The data-sharing API keys get local key ids (the local gateway checks no key).
    api = deployment.environment(functions["api"].logical_id)
    keys = json.loads(api["DEPARTMENT_API_KEYS"])
    assert keys and set(keys.values()) == {deployment.ref(k) for k in description.api_keys}
    assert all(len(key_id) == 10 and key_id.isalnum() for key_id in keys.values())


def test_outputs_resolve_where_they_have_a_local_value(deployment: Deployment) -> None:
    outputs = deployment.description.resolve_outputs(deployment.resolver)
    assert (
        outputs["TableName"]
        == deployment.environment(deployment.description.function_for_package("telemetry").logical_id)[
            "TABLE_NAME"
        ]
    )
    assert "ApiUrl" not in outputs  # the REST API is served by the local gateway, not provisioned


# -- small templates -------------------------------------------------------------------------


def resolver() -> Resolver:
    physical = {
        "Q": Physical("https://sqs.local/q", {"Arn": "arn:aws-cn:sqs:cn-north-1:123456789012:q"}),
        "T": Physical("table", {"StreamArn": "arn:stream"}),
    }
    return Resolver(physical, region="cn-north-1", stack_name="S", parameters={"Stage": "dev"})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"Ref": "Q"}, "https://sqs.local/q"),
        ({"Fn::GetAtt": ["Q", "Arn"]}, "arn:aws-cn:sqs:cn-north-1:123456789012:q"),
        ({"Fn::GetAtt": "T.StreamArn"}, "arn:stream"),
        ({"Fn::Join": ["-", [{"Ref": "T"}, "x", {"Ref": "AWS::Region"}]]}, "table-x-cn-north-1"),
        (
            {"Fn::Sub": "${AWS::Partition}:${T}:${Q.Arn}:${!Literal}"},
            "aws-cn:table:arn:aws-cn:sqs:cn-north-1:123456789012:q:${Literal}",
        ),
        ({"Fn::Sub": ["${A}/${AWS::AccountId}", {"A": {"Ref": "Stage"}}]}, "dev/123456789012"),
        ({"Fn::Select": [1, {"Fn::Split": [":", {"Fn::GetAtt": ["Q", "Arn"]}]}]}, "aws-cn"),
        ({"Ref": "AWS::URLSuffix"}, "amazonaws.com.cn"),
        ({"nested": [{"Ref": "T"}]}, {"nested": ["table"]}),
    ],
)
def test_intrinsic_functions_resolve(value: Any, expected: Any) -> None:
    assert resolver().resolve(value) == expected


@pytest.mark.parametrize(
    "value",
    [{"Ref": "Missing"}, {"Fn::GetAtt": ["Q", "Nope"]}, {"Fn::ImportValue": "x"}, {"Fn::If": ["c", 1, 2]}],
)
def test_unresolvable_references_say_what_is_missing(value: Any) -> None:
    with pytest.raises(UnresolvedReference, match="fn X"):
        resolver().resolve(value, where="fn X")


def test_filter_patterns() -> None:
    pattern = EventPattern.parse(
        '{"dynamodb": {"Keys": {"pk": {"S": [{"prefix": "ORDER#"}]}}}, "eventName": ["INSERT", "MODIFY"]}'
    )
    record = {"eventName": "INSERT", "dynamodb": {"Keys": {"pk": {"S": "ORDER#1"}}}}
    assert pattern.matches(record)
    assert not pattern.matches({**record, "eventName": "REMOVE"})
    assert not pattern.matches({"eventName": "INSERT", "dynamodb": {"Keys": {}}})
    assert EventPattern.parse('{"body": {"kind": [{"anything-but": "noise"}]}}').matches(
        {"body": {"kind": "a"}}
    )
    assert EventPattern.parse('{"a": [{"exists": false}]}').matches({})
    with pytest.raises(FilterPatternError, match="numeric"):
        EventPattern.parse('{"a": [{"numeric": [">", 1]}]}')


def test_rate_expressions() -> None:
    assert rate_seconds("rate(1 minute)") == 60
    assert rate_seconds("rate(5 minutes)") == 300
    assert rate_seconds("rate(2 hours)") == 7200
    assert rate_seconds("cron(0 12 * * ? *)") is None


def test_a_small_template_with_unemulated_parts() -> None:
    template = {
        "Resources": {
            "Fn": {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "Handler": "sweeper.handler.handler",
                    "Runtime": "python3.14",
                    "Code": {"S3Bucket": "b", "S3Key": "abc.zip"},
                },
            },
            "Node": {
                "Type": "AWS::Lambda::Function",
                "Properties": {"Handler": "index.handler", "Runtime": "nodejs22.x", "Code": {}},
            },
            "Kinesis": {"Type": "AWS::Kinesis::Stream", "Properties": {}},
            "Esm": {
                "Type": "AWS::Lambda::EventSourceMapping",
                "Properties": {
                    "FunctionName": {"Ref": "Fn"},
                    "EventSourceArn": {"Fn::GetAtt": ["Kinesis", "Arn"]},
                },
            },
            "Cron": {
                "Type": "AWS::Events::Rule",
                "Properties": {
                    "ScheduleExpression": "cron(0 1 * * ? *)",
                    "Targets": [{"Id": "t", "Arn": {"Fn::GetAtt": ["Fn", "Arn"]}}],
                },
            },
            "Pattern": {"Type": "AWS::Events::Rule", "Properties": {"EventPattern": {"source": ["x"]}}},
        }
    }
    description = describe_template(template, region="cn-north-1")
    assert list(description.functions) == ["Fn"]
    assert description.functions["Fn"].timeout_s == 3 and description.functions["Fn"].memory_mb == 128
    assert description.event_source_mappings == []
    reasons = {item.logical_id: item.reason for item in description.unsupported}
    assert "Python" in reasons["Node"]
    assert "AWS::Kinesis::Stream" in reasons["Kinesis"]
    assert "not emulated" in reasons["Esm"]
    assert "cron" in reasons["Cron"] and "Cron" in description.schedules
    assert "event-pattern" in reasons["Pattern"]


def test_a_missing_template_says_how_to_make_it(tmp_path: Any) -> None:
    with pytest.raises(TemplateError, match="make synth"):
        read_template(tmp_path / "SmartZone.template.json")
