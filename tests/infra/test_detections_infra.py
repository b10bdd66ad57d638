"""CDK assertions for the detections path: IoT rules, buffer, function, webhook route, snapshots."""

from __future__ import annotations

import json

from aws_cdk.assertions import Match

from infra.constructs.detections import CAMERA_SQL, DRONE_SQL
from tests.infra.conftest import Synth


def test_given_the_stack_then_both_detection_rules_feed_one_buffer_with_an_error_action(synth: Synth) -> None:
    rules = {
        rid: r["Properties"]["TopicRulePayload"]
        for rid, r in synth.resources("AWS::IoT::TopicRule").items()
        if "Detections" in rid
    }
    assert sorted(p["Sql"] for p in rules.values()) == sorted([CAMERA_SQL, DRONE_SQL])
    targets = {json.dumps(p["Actions"][0]["Sqs"]["QueueUrl"]) for p in rules.values()}
    assert len(targets) == 1 and "DetectionsBuffer" in targets.pop()
    for payload in rules.values():
        assert payload["AwsIotSqlVersion"] == "2016-03-23"
        assert "DetectionsRuleErrors" in json.dumps(payload["ErrorAction"])
    assert "topic(3) AS camera_id" in CAMERA_SQL and "topic(3) AS flight_id" in DRONE_SQL


def test_given_the_stack_then_the_detections_function_reads_the_buffer_in_partial_batches(
    synth: Synth,
) -> None:
    synth.template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "detections.handler.handler",
            "Environment": {"Variables": Match.object_like({"REJECTS_QUEUE_URL": Match.any_value()})},
        },
    )
    (mapping,) = [
        m
        for m in synth.resources("AWS::Lambda::EventSourceMapping").values()
        if "DetectionsBuffer" in json.dumps(m["Properties"]["EventSourceArn"])
    ]
    assert mapping["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    _, buffer = synth.only("AWS::SQS::Queue", "DetectionsBufferQueue")
    assert "RedrivePolicy" in buffer["Properties"] and "KmsMasterKeyId" in buffer["Properties"]


def test_given_the_stack_then_the_webhook_is_not_behind_the_user_authorizer_but_needs_an_api_key(
    synth: Synth,
) -> None:
    methods = [
        m["Properties"]
        for m in synth.resources("AWS::ApiGateway::Method").values()
        if m["Properties"].get("HttpMethod") == "POST"
        and "Webhook" in json.dumps(m["Properties"]["Integration"])
    ]
    assert len(methods) == 2
    assert all(m["AuthorizationType"] == "NONE" and m["ApiKeyRequired"] is True for m in methods)
    plans = [p["Properties"] for p in synth.resources("AWS::ApiGateway::UsagePlan").values()]
    assert [p["Throttle"] for p in plans if "detection-vendors" in json.dumps(p.get("UsagePlanName"))] == [
        {"BurstLimit": 40, "RateLimit": 20}
    ]
    synth.template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "webhook.handler.handler",
            "Environment": {"Variables": Match.object_like({"VENDOR_KEYS_SECRET_ARN": Match.any_value()})},
        },
    )


def test_given_the_stack_then_snapshots_are_private_kms_encrypted_and_expire(synth: Synth) -> None:
    _, bucket = synth.only("AWS::S3::Bucket", "DetectionsSnapshots")
    props = bucket["Properties"]
    sse = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert sse["SSEAlgorithm"] == "aws:kms"
    assert props["PublicAccessBlockConfiguration"]["BlockPublicAcls"] is True
    (rule,) = props["LifecycleConfiguration"]["Rules"]
    assert rule["ExpirationInDays"] == 365
