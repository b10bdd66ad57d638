"""The synthesized SmartZone stack has the properties the design depends on."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match

from infra.constructs.device_policy import THING_NAME
from tests.infra.conftest import Synth

FUNCTIONS = {
    "telemetry": "IngestTelemetryFunction",
    "outbox": "NotificationsOutboxFunction",
    "api": "ApiHandlerFunction",
    "sweeper": "SweeperFunction",
    "datalake": "DataLakeIngestFunction",
    "detections": "DetectionsFunction",
    "webhook": "DetectionsWebhookFunction",
    "exports": "FormsExporterFunction",
    "population_partition": "PopulationPartitionFunction",
    "population_merge": "PopulationMergeFunction",
    "population_reduce": "PopulationReduceFunction",
}
"""The functions of every region (the TOKEN authorizer exists only in aws-cn: see test_api.py)."""
COMMON_ENV = {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "LOG_LEVEL"}
DATALAKE_API_ENV = {
    "DATALAKE_BUCKET",
    "QUERY_ENGINE",
    "GLUE_DATABASE",
    "ATHENA_WORKGROUP",
    "ATHENA_OUTPUT",
    "ATHENA_TIMEOUT_S",
    "DATALAKE_CACHE_DIR",
}
"""What the data lake (infra/constructs/datalake.py) adds to the API function."""
WITH_DATALAKE_LAYER = {"api", "datalake"}
EXPECTED_ENV = {
    "telemetry": COMMON_ENV
    | {"TABLE_NAME", "REJECTS_QUEUE_URL", "HEARTBEAT_INTERVAL_S", "MAX_READING_AGE_S", "MAX_FUTURE_SKEW_S"},
    "outbox": COMMON_ENV
    | {"TABLE_NAME", "NOTIFICATIONS_TOPIC_ARN", "RETRY_QUEUE_URL", "PUBLISH_ATTEMPTS", "INBOX_TTL_DAYS"},
    "api": COMMON_ENV
    | {"TABLE_NAME", "UPLOADS_BUCKET", "CURSOR_SECRET_ARN", "NOTIFICATIONS_TOPIC_ARN"}
    | {"AUDIT_RETENTION_DAYS"}
    | {"SNAPSHOTS_BUCKET"}  # detections (infra/constructs/detections.py): presigned snapshot links
    | {"EXPORTS_BUCKET", "EXPORTS_QUEUE_URL"}  # forms exports (infra/constructs/forms.py)
    | {"ID_HMAC_SECRET_ARN", "PERSONAL_DATA_KEY_ID"}  # residents (infra/constructs/population.py)
    | {"DEPARTMENT_API_KEYS"}  # data sharing (infra/constructs/sharing.py)
    | DATALAKE_API_ENV,
    "sweeper": COMMON_ENV | {"TABLE_NAME"},
    "detections": COMMON_ENV | {"TABLE_NAME", "REJECTS_QUEUE_URL", "MAX_FUTURE_SKEW_S", "MAX_READING_AGE_S"},
    "webhook": COMMON_ENV
    | {
        "TABLE_NAME",
        "DETECTIONS_QUEUE_URL",
        "VENDOR_KEYS_SECRET_ARN",
        "SNAPSHOTS_BUCKET",
        "MAX_FUTURE_SKEW_S",
        "MAX_READING_AGE_S",
    },
    "datalake": COMMON_ENV
    | {"TABLE_NAME", "DATALAKE_BUCKET", "GLUE_DATABASE", "DATALAKE_CACHE_DIR", "DATALAKE_MEMORY_LIMIT"},
    "exports": COMMON_ENV | {"TABLE_NAME", "EXPORTS_BUCKET"},
    "population_partition": COMMON_ENV
    | {"TABLE_NAME", "POPULATION_BUCKET", "ID_HMAC_SECRET_ARN", "PERSONAL_DATA_KEY_ID"},
    "population_merge": COMMON_ENV | {"TABLE_NAME", "POPULATION_BUCKET", "PERSONAL_DATA_KEY_ID"},
    "population_reduce": COMMON_ENV | {"TABLE_NAME", "POPULATION_BUCKET"},
}
STATE_MACHINE_LOG_DELIVERY_ACTIONS = {
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
}
TELEMETRY_SQL = (
    "SELECT ts, tilt_deg, battery_pct, seq, topic(3) AS device_id, timestamp() AS received_at "
    "FROM 'smartzone/manhole/+/telemetry'"
)


def ref(logical_id: str) -> dict[str, str]:
    return {"Ref": logical_id}


def arn_of(logical_id: str) -> dict[str, list[str]]:
    return {"Fn::GetAtt": [logical_id, "Arn"]}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def statements_of_role(synth: Synth, role_id: str) -> list[dict[str, Any]]:
    """Every statement of the role's inline policies and attached AWS::IAM::Policy resources."""
    role = synth.template_json["Resources"][role_id]
    statements = [s for p in role["Properties"].get("Policies", []) for s in p["PolicyDocument"]["Statement"]]
    for policy in synth.resources("AWS::IAM::Policy").values():
        if ref(role_id) in policy["Properties"]["Roles"]:
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def actions_on(statements: list[dict[str, Any]], resource: Any) -> set[str]:
    return {
        action
        for s in statements
        if s["Effect"] == "Allow" and resource in as_list(s["Resource"])
        for action in as_list(s["Action"])
    }


# --- storage ---------------------------------------------------------------------------------


def test_given_the_table_then_it_is_single_table_on_demand_with_stream_pitr_ttl_and_kms(synth: Synth) -> None:
    key_id, key = synth.only("AWS::KMS::Key", "StorageDataKey")
    assert key["Properties"]["EnableKeyRotation"] is True
    assert key["DeletionPolicy"] == "Retain"

    synth.template.has_resource(
        "AWS::DynamoDB::Table",
        {
            "DeletionPolicy": "Retain",
            "Properties": Match.object_like(
                {
                    "KeySchema": [
                        {"AttributeName": "pk", "KeyType": "HASH"},
                        {"AttributeName": "sk", "KeyType": "RANGE"},
                    ],
                    "BillingMode": "PAY_PER_REQUEST",
                    "StreamSpecification": {"StreamViewType": "NEW_AND_OLD_IMAGES"},
                    "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
                    "SSESpecification": {
                        "SSEEnabled": True,
                        "SSEType": "KMS",
                        "KMSMasterKeyId": arn_of(key_id),
                    },
                    "TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True},
                    "DeletionProtectionEnabled": True,
                }
            ),
        },
    )


def test_given_the_table_then_gsi1_to_gsi4_are_string_keyed_and_project_all(synth: Synth) -> None:
    _, table = synth.only("AWS::DynamoDB::Table")
    props = table["Properties"]
    index_names = ("gsi1", "gsi2", "gsi3", "gsi4")
    assert {a["AttributeName"]: a["AttributeType"] for a in props["AttributeDefinitions"]} == {
        name: "S" for name in ("pk", "sk", *(f"{i}{part}" for i in index_names for part in ("pk", "sk")))
    }
    indexes = {i["IndexName"]: i for i in props["GlobalSecondaryIndexes"]}
    assert set(indexes) == set(index_names)
    for name, index in indexes.items():
        assert index["KeySchema"] == [
            {"AttributeName": f"{name}pk", "KeyType": "HASH"},
            {"AttributeName": f"{name}sk", "KeyType": "RANGE"},
        ]
        assert index["Projection"] == {"ProjectionType": "ALL"}


def test_given_the_archive_bucket_then_it_is_private_encrypted_versioned_logged_and_tiered(
    synth: Synth,
) -> None:
    logs_id, _ = synth.only("AWS::S3::Bucket", "AccessLogs")
    _, archive = synth.only("AWS::S3::Bucket", "Archive")
    props = archive["Properties"]

    assert archive["DeletionPolicy"] == "Retain"
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert props["PublicAccessBlockConfiguration"] == dict.fromkeys(
        ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"), True
    )
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["LoggingConfiguration"]["DestinationBucketName"] == ref(logs_id)
    (rule,) = props["LifecycleConfiguration"]["Rules"]
    assert rule["Transitions"] == [
        {"StorageClass": "STANDARD_IA", "TransitionInDays": 30},
        {"StorageClass": "GLACIER", "TransitionInDays": 180},
    ]
    assert rule["ExpirationInDays"] == 3 * 365


def test_given_any_bucket_then_its_policy_denies_requests_without_tls(synth: Synth) -> None:
    buckets = synth.resources("AWS::S3::Bucket")
    policies = synth.resources("AWS::S3::BucketPolicy").values()
    for bucket_id in buckets:
        (policy,) = [p for p in policies if p["Properties"]["Bucket"] == ref(bucket_id)]
        assert {
            "Action": "s3:*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
        }.items() <= policy["Properties"]["PolicyDocument"]["Statement"][0].items()


# --- queues and topic ------------------------------------------------------------------------


def test_given_any_queue_then_it_is_kms_encrypted_and_tls_only(synth: Synth) -> None:
    key_id, _ = synth.only("AWS::KMS::Key", "StorageDataKey")
    queues = synth.resources("AWS::SQS::Queue")
    policies = list(synth.resources("AWS::SQS::QueuePolicy").values())
    # telemetry, detections, notifications, exports, data lake: every queue, however many there are
    for name in ("IngestBufferQueue", "DetectionsBuffer", "FormsExportJobs"):
        assert any(queue_id.startswith(name) for queue_id in queues), name
    for queue_id, queue in queues.items():
        assert queue["Properties"]["KmsMasterKeyId"] == arn_of(key_id), queue_id
        (policy,) = [p for p in policies if ref(queue_id) in p["Properties"]["Queues"]]
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(
            statement["Effect"] == "Deny"
            and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            for statement in statements
        ), queue_id
        for statement in statements:  # other statements only let AWS services deliver (e.g. EventBridge)
            assert statement["Effect"] == "Deny" or "Service" in statement["Principal"], statement


def test_given_any_queue_then_it_has_a_dead_letter_queue_or_is_one(synth: Synth) -> None:
    queues = synth.resources("AWS::SQS::Queue")
    dlq_ids = {
        q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        for q in queues.values()
        if "RedrivePolicy" in q["Properties"]
    }
    assert len(dlq_ids) >= 5  # telemetry buffer, rule errors, rejects, publish retry, stream failures, …
    # a function's own dead-letter queue (Lambda on-failure destination), e.g. the data lake's
    function_dlqs = {
        config["Properties"]["DestinationConfig"]["OnFailure"]["Destination"]["Fn::GetAtt"][0]
        for config in synth.resources("AWS::Lambda::EventInvokeConfig").values()
    }
    for queue_id, queue in queues.items():
        assert "RedrivePolicy" in queue["Properties"] or queue_id in dlq_ids | function_dlqs, queue_id
    for dlq_id in function_dlqs:
        assert queues[dlq_id]["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600
    for dlq_id in dlq_ids:
        assert queues[dlq_id]["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600


def test_given_the_buffer_then_messages_are_retried_five_times_and_outlast_six_function_timeouts(
    synth: Synth,
) -> None:
    _, buffer = synth.only("AWS::SQS::Queue", "IngestBufferQueue")
    _, function = synth.only("AWS::Lambda::Function", FUNCTIONS["telemetry"])
    assert buffer["Properties"]["RedrivePolicy"]["maxReceiveCount"] == 5
    assert buffer["Properties"]["VisibilityTimeout"] >= 6 * function["Properties"]["Timeout"]


def test_given_the_publish_retry_queue_then_events_are_kept_fourteen_days(synth: Synth) -> None:
    _, retry = synth.only("AWS::SQS::Queue", "PublishRetryQueue")
    assert retry["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600
    assert "RedrivePolicy" in retry["Properties"]


def test_given_the_notifications_topic_then_it_is_kms_encrypted_and_publish_requires_tls(
    synth: Synth,
) -> None:
    key_id, _ = synth.only("AWS::KMS::Key", "StorageDataKey")
    topic_id, topic = synth.only("AWS::SNS::Topic", "Notifications")
    assert topic["Properties"]["KmsMasterKeyId"] == arn_of(key_id)
    synth.template.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "Topics": [ref(topic_id)],
            "PolicyDocument": Match.object_like(
                {
                    "Statement": Match.array_with(
                        [
                            Match.object_like(
                                {"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
                            )
                        ]
                    )
                }
            ),
        },
    )


# --- IoT rule and archive --------------------------------------------------------------------


def test_given_the_telemetry_rule_then_its_sql_takes_the_device_from_the_topic_and_adds_receive_time(
    synth: Synth,
) -> None:
    _, rule = synth.only("AWS::IoT::TopicRule", "IngestTelemetryRule")
    payload = rule["Properties"]["TopicRulePayload"]
    assert payload["AwsIotSqlVersion"] == "2016-03-23"
    assert payload["Sql"] == TELEMETRY_SQL
    assert payload["RuleDisabled"] is False


def test_given_the_telemetry_rule_then_it_buffers_archives_and_reports_errors(synth: Synth) -> None:
    _, rule = synth.only("AWS::IoT::TopicRule", "IngestTelemetryRule")
    buffer_id, _ = synth.only("AWS::SQS::Queue", "IngestBufferQueue")
    errors_id, _ = synth.only("AWS::SQS::Queue", "IngestRuleErrorsQueue")
    stream_id, _ = synth.only("AWS::KinesisFirehose::DeliveryStream")
    payload = rule["Properties"]["TopicRulePayload"]

    sqs_action, firehose_action = payload["Actions"]
    assert sqs_action["Sqs"]["QueueUrl"] == ref(buffer_id)
    assert firehose_action["Firehose"]["DeliveryStreamName"] == ref(stream_id)
    assert firehose_action["Firehose"]["Separator"] == "\n"
    assert payload["ErrorAction"]["Sqs"]["QueueUrl"] == ref(errors_id)


def test_given_the_rule_role_then_it_may_only_deliver_to_its_queues_and_stream(synth: Synth) -> None:
    _, rule = synth.only("AWS::IoT::TopicRule", "IngestTelemetryRule")
    role_id = rule["Properties"]["TopicRulePayload"]["Actions"][0]["Sqs"]["RoleArn"]["Fn::GetAtt"][0]
    statements = statements_of_role(synth, role_id)
    key_id, _ = synth.only("AWS::KMS::Key", "StorageDataKey")
    buffer_id, _ = synth.only("AWS::SQS::Queue", "IngestBufferQueue")
    errors_id, _ = synth.only("AWS::SQS::Queue", "IngestRuleErrorsQueue")
    stream_id, _ = synth.only("AWS::KinesisFirehose::DeliveryStream")

    assert actions_on(statements, arn_of(buffer_id)) == {"sqs:SendMessage"}
    assert actions_on(statements, arn_of(errors_id)) == {"sqs:SendMessage"}
    assert actions_on(statements, arn_of(key_id)) == {"kms:GenerateDataKey", "kms:Decrypt"}
    assert actions_on(statements, arn_of(stream_id)) == {"firehose:PutRecord", "firehose:PutRecordBatch"}
    granted = {json.dumps(r, sort_keys=True) for s in statements for r in as_list(s["Resource"])}
    expected = [arn_of(buffer_id), arn_of(errors_id), arn_of(key_id), arn_of(stream_id)]
    assert granted == {json.dumps(r, sort_keys=True) for r in expected}


def test_given_the_archive_stream_then_it_is_encrypted_batched_and_partitioned_by_date(synth: Synth) -> None:
    archive_id, _ = synth.only("AWS::S3::Bucket", "Archive")
    _, stream = synth.only("AWS::KinesisFirehose::DeliveryStream")
    props = stream["Properties"]
    destination = props["ExtendedS3DestinationConfiguration"]

    assert props["DeliveryStreamEncryptionConfigurationInput"]["KeyType"] in {
        "AWS_OWNED_CMK",
        "CUSTOMER_MANAGED_CMK",
    }
    assert destination["BucketARN"] == arn_of(archive_id)
    assert (
        destination["Prefix"]
        == "raw/manhole/year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/"
    )
    assert destination["ErrorOutputPrefix"].startswith("errors/manhole/!{firehose:error-output-type}/")
    assert destination["BufferingHints"] == {"IntervalInSeconds": 60, "SizeInMBs": 5}
    assert destination["CloudWatchLoggingOptions"]["Enabled"] is True


# --- functions -------------------------------------------------------------------------------


@pytest.mark.parametrize("package", sorted(FUNCTIONS))
def test_given_a_function_then_it_runs_python314_on_arm64_with_json_logs_in_its_own_log_group(
    synth: Synth, package: str
) -> None:
    _, function = synth.only("AWS::Lambda::Function", FUNCTIONS[package])
    props = function["Properties"]
    assert props["Runtime"] == "python3.14"
    assert props["Architectures"] == ["arm64"]
    assert props["Handler"] == f"{package}.handler.handler"
    assert props["LoggingConfig"]["LogFormat"] == "JSON"
    log_group_id = props["LoggingConfig"]["LogGroup"]["Ref"]
    log_group = synth.template_json["Resources"][log_group_id]
    assert log_group["Properties"]["RetentionInDays"] == 365
    assert len(props["Layers"]) == 2 + (package in WITH_DATALAKE_LAYER)  # + the data-lake layer (DuckDB)


@pytest.mark.parametrize("package", sorted(FUNCTIONS))
def test_given_a_function_then_it_gets_exactly_the_environment_it_needs(synth: Synth, package: str) -> None:
    _, function = synth.only("AWS::Lambda::Function", FUNCTIONS[package])
    env = function["Properties"]["Environment"]["Variables"]
    expected = set(EXPECTED_ENV[package])
    if synth.region.startswith("cn-"):
        expected.add("POWERTOOLS_TRACE_DISABLED")
    assert set(env) == expected
    assert env["POWERTOOLS_SERVICE_NAME"] == "smartzone"
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "SmartZone"


def test_given_a_global_region_then_functions_trace_with_xray(global_synth: Synth) -> None:
    for function in global_synth.resources("AWS::Lambda::Function").values():
        assert function["Properties"]["TracingConfig"] == {"Mode": "Active"}


def test_given_china_then_functions_have_no_tracing_and_powertools_tracing_is_off(cn_synth: Synth) -> None:
    for function in cn_synth.resources("AWS::Lambda::Function").values():
        assert "TracingConfig" not in function["Properties"]
        assert function["Properties"]["Environment"]["Variables"]["POWERTOOLS_TRACE_DISABLED"] == "true"
    assert "xray:" not in json.dumps(cn_synth.template_json)


def test_given_the_functions_then_each_has_its_own_role_without_managed_policies(synth: Synth) -> None:
    functions = synth.resources("AWS::Lambda::Function").values()
    roles = [f["Properties"]["Role"]["Fn::GetAtt"][0] for f in functions]
    assert len(set(roles)) == len(roles) == len(FUNCTIONS) + synth.region.startswith("cn-")
    for role in synth.resources("AWS::IAM::Role").values():
        assert "ManagedPolicyArns" not in role["Properties"]


def test_given_the_telemetry_role_then_it_may_read_and_write_the_table_but_never_scan_or_delete(
    synth: Synth,
) -> None:
    _, function = synth.only("AWS::Lambda::Function", FUNCTIONS["telemetry"])
    table_id, _ = synth.only("AWS::DynamoDB::Table")
    rejects_id, _ = synth.only("AWS::SQS::Queue", "IngestRejectsQueue")
    statements = statements_of_role(synth, function["Properties"]["Role"]["Fn::GetAtt"][0])

    table_actions = actions_on(statements, arn_of(table_id))
    assert {"dynamodb:BatchGetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"} <= table_actions
    assert not {"dynamodb:Scan", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"} & table_actions
    assert actions_on(statements, arn_of(rejects_id)) == {"sqs:SendMessage"}


def test_given_the_outbox_role_then_it_reads_the_stream_writes_inbox_and_stats_and_sends_to_sns_and_queues(
    synth: Synth,
) -> None:
    _, function = synth.only("AWS::Lambda::Function", FUNCTIONS["outbox"])
    table_id, _ = synth.only("AWS::DynamoDB::Table")
    topic_id, _ = synth.only("AWS::SNS::Topic", "Notifications")
    retry_id, _ = synth.only("AWS::SQS::Queue", "PublishRetryQueue")
    statements = statements_of_role(synth, function["Properties"]["Role"]["Fn::GetAtt"][0])

    assert actions_on(statements, arn_of(table_id)) == {
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:ConditionCheckItem",
    }
    assert actions_on(statements, {"Fn::GetAtt": [table_id, "StreamArn"]}) == {
        "dynamodb:DescribeStream",
        "dynamodb:GetRecords",
        "dynamodb:GetShardIterator",
    }
    assert actions_on(statements, ref(topic_id)) == {"sns:Publish"}
    assert actions_on(statements, arn_of(retry_id)) == {"sqs:SendMessage"}


def test_given_any_role_then_no_action_is_a_wildcard(synth: Synth) -> None:
    for policy_holder in [
        *synth.resources("AWS::IAM::Policy").values(),
        *synth.resources("AWS::IAM::Role").values(),
    ]:
        documents = [p["PolicyDocument"] for p in policy_holder["Properties"].get("Policies", [])]
        documents += (
            [policy_holder["Properties"]["PolicyDocument"]]
            if "PolicyDocument" in policy_holder["Properties"]
            else []
        )
        for document in documents:
            for statement in document["Statement"]:
                assert not any("*" in action for action in as_list(statement["Action"])), statement
                if statement["Resource"] == "*":
                    assert set(as_list(statement["Action"])) <= {
                        "dynamodb:ListStreams",
                        "xray:PutTraceSegments",
                        "xray:PutTelemetryRecords",
                        "xray:GetSamplingRules",  # the state machine's tracing (global regions)
                        "xray:GetSamplingTargets",
                        # Step Functions' log delivery (the population workflow): CloudWatch Logs'
                        # vended-log APIs have no resource-level permissions.
                        *STATE_MACHINE_LOG_DELIVERY_ACTIONS,
                    }


# --- event sources ---------------------------------------------------------------------------


def test_given_the_buffer_event_source_then_batches_are_large_windowed_and_partially_retried(
    synth: Synth,
) -> None:
    buffer_id, _ = synth.only("AWS::SQS::Queue", "IngestBufferQueue")
    synth.template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "EventSourceArn": arn_of(buffer_id),
            "BatchSize": 500,
            "MaximumBatchingWindowInSeconds": 2,
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
        },
    )


def test_given_the_stream_event_source_then_only_order_items_invoke_the_outbox_with_bounded_retries(
    synth: Synth,
) -> None:
    table_id, _ = synth.only("AWS::DynamoDB::Table")
    failures_id, _ = synth.only("AWS::SQS::Queue", "StreamFailuresQueue")
    (mapping,) = [
        m
        for m in synth.resources("AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["EventSourceArn"] == {"Fn::GetAtt": [table_id, "StreamArn"]}
    ]
    props = mapping["Properties"]

    assert props["StartingPosition"] == "TRIM_HORIZON"
    assert props["BatchSize"] == 100
    assert props["BisectBatchOnFunctionError"] is True
    assert props["MaximumRetryAttempts"] == 5
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert 60 <= props["MaximumRecordAgeInSeconds"] <= 24 * 3600
    assert props["DestinationConfig"]["OnFailure"]["Destination"] == arn_of(failures_id)
    (pattern,) = [json.loads(f["Pattern"]) for f in props["FilterCriteria"]["Filters"]]
    assert pattern == {"dynamodb": {"Keys": {"pk": {"S": [{"prefix": "ORDER#"}]}}}}


# --- devices ---------------------------------------------------------------------------------


def test_given_the_device_policy_then_a_device_connects_only_as_its_attached_thing(synth: Synth) -> None:
    _, policy = synth.only("AWS::IoT::Policy", "DevicePolicy")
    statements = {s["Action"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    assert set(statements) == {"iot:Connect", "iot:Publish"}
    assert all(s["Effect"] == "Allow" for s in statements.values())

    connect = statements["iot:Connect"]
    assert connect["Condition"] == {"Bool": {"iot:Connection.Thing.IsAttached": "true"}}
    assert json.dumps(connect["Resource"]).endswith(f':client/{THING_NAME}"]]}}')


def test_given_the_device_policy_then_a_device_publishes_only_to_its_own_telemetry_topic(
    synth: Synth,
) -> None:
    _, policy = synth.only("AWS::IoT::Policy", "DevicePolicy")
    (publish,) = [
        s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Action"] == "iot:Publish"
    ]
    parts = publish["Resource"]["Fn::Join"][1]
    assert parts[0] == "arn:"
    assert {"Ref": "AWS::Partition"} in parts
    assert {"Ref": "AWS::AccountId"} in parts or any(isinstance(p, str) and p.isdigit() for p in parts)
    assert parts[-1] == f":topic/smartzone/manhole/{THING_NAME}/telemetry"


def test_given_the_stack_then_it_exports_what_operators_and_scripts_need(synth: Synth) -> None:
    outputs = synth.template_json["Outputs"]
    assert {
        "TableName",
        "NotificationsTopicArn",
        "TelemetryBufferQueueUrl",
        "RuleErrorsQueueUrl",
        "RejectsQueueUrl",
        "PublishRetryQueueUrl",
        "StreamFailuresQueueUrl",
        "ArchiveBucketName",
        "DevicePolicyName",
        "TelemetryRuleName",
        "ApiUrl",
        "UploadsBucketName",
        "AuthorizerMode",
    } <= set(outputs)
    policy_id, _ = synth.only("AWS::IoT::Policy", "DevicePolicy")
    assert outputs["DevicePolicyName"]["Value"] == ref(policy_id)


# --- assets ----------------------------------------------------------------------------------


@pytest.mark.parametrize("package", sorted(FUNCTIONS))
def test_given_a_function_asset_then_it_holds_only_that_function_package(
    global_synth: Synth, package: str
) -> None:
    _, function = global_synth.only("AWS::Lambda::Function", FUNCTIONS[package])
    asset_hash = function["Properties"]["Code"]["S3Key"].removesuffix(".zip")
    staged = global_synth.outdir / f"asset.{asset_hash}"

    assert [p.name for p in staged.iterdir()] == [package]
    assert (staged / package / "handler.py").is_file()
    assert not list(staged.rglob("__pycache__"))


def test_given_tests_skip_bundling_then_the_dependency_layer_is_not_built(global_synth: Synth) -> None:
    layers = global_synth.resources("AWS::Lambda::LayerVersion")
    assert len(layers) == 3  # shared code, dependencies, data lake (DuckDB)
    for layer in layers.values():
        assert layer["Properties"]["CompatibleRuntimes"] == ["python3.14"]
        assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    (deps,) = [layer for layer_id, layer in layers.items() if "Deps" in layer_id]
    asset_hash = deps["Properties"]["Content"]["S3Key"].removesuffix(".zip")
    assert not (global_synth.outdir / f"asset.{asset_hash}").exists()
