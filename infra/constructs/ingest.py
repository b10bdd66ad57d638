"""The telemetry path: devices → IoT rule → SQS buffer → telemetry function → table.

The IoT topic rule (SQL 2016-03-23) takes the device id from the topic and adds the receive
time; its actions put each message on the buffer queue and into a Firehose delivery stream that
archives raw readings to S3 (GZIP JSON lines, partitioned by date); its error action puts
failures on an errors queue. The telemetry function consumes the buffer in batches with
partial-batch responses; it may write the table (no Scan, no DeleteItem) and send bad records to
the rejects queue. Every queue is KMS-encrypted, TLS-only and has a dead-letter queue.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_iot as iot
from aws_cdk import aws_kinesisfirehose as firehose
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.constructs.functions import FunctionSettings, SmartZoneFunction
from infra.constructs.queues import (
    MAX_RETENTION,
    EncryptedQueue,
    QueueRole,
    consume,
    grant_send,
    iot_rule_role,
    sqs_rule_action,
)
from infra.constructs.storage import TABLE_KEY_ACTIONS
from infra.nag import acknowledge

TELEMETRY_TOPIC_FILTER = "smartzone/manhole/+/telemetry"
TELEMETRY_SQL = (
    "SELECT ts, tilt_deg, battery_pct, seq, topic(3) AS device_id, timestamp() AS received_at "
    f"FROM '{TELEMETRY_TOPIC_FILTER}'"
)
DATE_PARTITIONS = "year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/"
RAW_PREFIX = "raw/manhole/" + DATE_PARTITIONS
ERROR_PREFIX = "errors/manhole/!{firehose:error-output-type}/" + DATE_PARTITIONS
# Telemetry function / buffer event source.
TELEMETRY_TIMEOUT = cdk.Duration.seconds(30)
TELEMETRY_BATCH_SIZE = 500
TELEMETRY_BATCHING_WINDOW = cdk.Duration.seconds(2)
BUFFER_MAX_RECEIVES = 5
TELEMETRY_TABLE_ACTIONS = [
    "dynamodb:BatchGetItem",
    "dynamodb:GetItem",
    "dynamodb:Query",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:ConditionCheckItem",
]


@dataclass(frozen=True)
class TelemetrySettings:
    """The telemetry function's tunables (environment variables of the same names)."""

    heartbeat_interval_s: int = 900
    max_reading_age_s: int = 7 * 24 * 3600
    max_future_skew_s: int = 300


class RawArchive(Construct):
    """A Firehose delivery stream (direct put, SSE) writing raw readings to the archive bucket."""

    def __init__(
        self, scope: Construct, construct_id: str, *, bucket: s3.IBucket, log_retention: logs.RetentionDays
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self.log_group = logs.LogGroup(
            self, "Logs", retention=log_retention, removal_policy=cdk.RemovalPolicy.RETAIN
        )
        log_stream = logs.LogStream(self, "DeliveryErrors", log_group=self.log_group)
        log_stream_arn = stack.format_arn(
            service="logs",
            resource="log-group",
            resource_name=f"{self.log_group.log_group_name}:log-stream:{log_stream.log_stream_name}",
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
        )
        raw_objects = bucket.arn_for_objects("raw/*")
        error_objects = bucket.arn_for_objects("errors/*")
        # Inline policy (part of the role resource): Firehose checks the role when the stream is
        # created, so the permissions must exist before it.
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal(
                "firehose.amazonaws.com",
                conditions={"StringEquals": {"sts:ExternalId": cdk.Aws.ACCOUNT_ID}},
            ),
            description="SmartZone raw archive: Firehose writes raw readings under raw/ and errors/",
            inline_policies={
                "archive": iam.PolicyDocument(
                    statements=[
                        iam.PolicyStatement(
                            sid="ArchiveBucket",
                            actions=[
                                "s3:GetBucketLocation",
                                "s3:ListBucket",
                                "s3:ListBucketMultipartUploads",
                            ],
                            resources=[bucket.bucket_arn],
                        ),
                        iam.PolicyStatement(
                            sid="ArchiveObjects",
                            actions=["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"],
                            resources=[raw_objects, error_objects],
                        ),
                        iam.PolicyStatement(
                            sid="DeliveryErrorLogs",
                            actions=["logs:PutLogEvents"],
                            resources=[log_stream_arn],
                        ),
                    ]
                )
            },
        )
        # cdk-nag names the bucket by its logical id: <StorageArchiveXXXX.Arn>/raw/*.
        bucket_arn_token = f"<{stack.get_logical_id(cast(cdk.CfnElement, bucket.node.default_child))}.Arn>"
        for prefix in ("raw", "errors"):
            acknowledge(
                self.role,
                f"AwsSolutions-IAM5[Resource::{bucket_arn_token}/{prefix}/*]",
                f"Firehose writes objects with generated names under the archive's {prefix}/ prefix; "
                "object-level ARNs need the wildcard, and it is limited to that prefix.",
            )

        self.stream = firehose.CfnDeliveryStream(
            self,
            "Stream",
            delivery_stream_type="DirectPut",
            delivery_stream_encryption_configuration_input=firehose.CfnDeliveryStream.DeliveryStreamEncryptionConfigurationInputProperty(
                key_type="AWS_OWNED_CMK"
            ),
            extended_s3_destination_configuration=firehose.CfnDeliveryStream.ExtendedS3DestinationConfigurationProperty(
                bucket_arn=bucket.bucket_arn,
                role_arn=self.role.role_arn,
                prefix=RAW_PREFIX,
                error_output_prefix=ERROR_PREFIX,
                buffering_hints=firehose.CfnDeliveryStream.BufferingHintsProperty(
                    interval_in_seconds=60, size_in_m_bs=5
                ),
                compression_format="GZIP",
                cloud_watch_logging_options=firehose.CfnDeliveryStream.CloudWatchLoggingOptionsProperty(
                    enabled=True,
                    log_group_name=self.log_group.log_group_name,
                    log_stream_name=log_stream.log_stream_name,
                ),
            ),
        )
        self.stream_arn = self.stream.attr_arn
        self.stream_name = self.stream.ref


class Ingest(Construct):
    """IoT rule, buffer/errors/rejects queues, the raw archive and the telemetry function."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        key: kms.IKey,
        table: dynamodb.ITable,
        archive_bucket: s3.IBucket,
        functions: FunctionSettings,
        telemetry: TelemetrySettings,
    ) -> None:
        super().__init__(scope, construct_id)
        # AWS: the source queue's visibility timeout ≥ 6 × the function timeout + the batching window.
        visibility = cdk.Duration.seconds(
            6 * TELEMETRY_TIMEOUT.to_seconds() + TELEMETRY_BATCHING_WINDOW.to_seconds()
        )
        self.buffer = EncryptedQueue(
            self,
            "Buffer",
            key=key,
            visibility_timeout=visibility,
            max_receive_count=BUFFER_MAX_RECEIVES,
            role=QueueRole.TELEMETRY_BUFFER,
        )
        self.errors = EncryptedQueue(
            self, "RuleErrors", key=key, retention_period=MAX_RETENTION, role=QueueRole.RULE_ERRORS
        )
        self.rejects = EncryptedQueue(
            self, "Rejects", key=key, retention_period=MAX_RETENTION, role=QueueRole.REJECTS
        )
        self.archive = RawArchive(
            self, "RawArchive", bucket=archive_bucket, log_retention=functions.log_retention
        )

        self.rule_role = iot_rule_role(
            self,
            "RuleRole",
            description="SmartZone telemetry rule: send to the buffer and errors queues, put to Firehose",
        )
        grants = [grant_send(queue, self.rule_role) for queue in (self.buffer.queue, self.errors.queue)]
        grants.append(
            iam.Grant.add_to_principal(
                grantee=self.rule_role,
                actions=["firehose:PutRecord", "firehose:PutRecordBatch"],
                resource_arns=[self.archive.stream_arn],
            )
        )

        self.rule = iot.CfnTopicRule(
            self,
            "TelemetryRule",
            topic_rule_payload=iot.CfnTopicRule.TopicRulePayloadProperty(
                description="Manhole-cover telemetry: device id from the topic, receive time added",
                aws_iot_sql_version="2016-03-23",
                sql=TELEMETRY_SQL,
                rule_disabled=False,
                actions=[
                    sqs_rule_action(self.buffer.queue, self.rule_role),
                    iot.CfnTopicRule.ActionProperty(
                        firehose=iot.CfnTopicRule.FirehoseActionProperty(
                            delivery_stream_name=self.archive.stream_name,
                            role_arn=self.rule_role.role_arn,
                            separator="\n",
                            batch_mode=False,
                        )
                    ),
                ],
                error_action=sqs_rule_action(self.errors.queue, self.rule_role),
            ),
        )
        # The rule must not fire before its role may deliver.
        for grant in grants:
            grant.apply_before(self.rule)

        self.function = SmartZoneFunction(
            self,
            "Telemetry",
            package="telemetry",
            description="Evaluates manhole-cover readings in batches: alarms, work orders, heartbeats",
            settings=functions,
            timeout=TELEMETRY_TIMEOUT,
            memory_size=512,
            environment={
                "TABLE_NAME": table.table_name,
                "REJECTS_QUEUE_URL": self.rejects.queue.queue_url,
                "HEARTBEAT_INTERVAL_S": str(telemetry.heartbeat_interval_s),
                "MAX_READING_AGE_S": str(telemetry.max_reading_age_s),
                "MAX_FUTURE_SKEW_S": str(telemetry.max_future_skew_s),
            },
        )
        fn = self.function.function
        # The base table only (key reads, queries by pk, conditional writes): no index, no Scan.
        iam.Grant.add_to_principal(
            grantee=fn, actions=TELEMETRY_TABLE_ACTIONS, resource_arns=[table.table_arn]
        )
        key.grant(fn, *TABLE_KEY_ACTIONS)
        grant_send(self.rejects.queue, fn)
        consume(
            fn,
            self.buffer.queue,
            batch_size=TELEMETRY_BATCH_SIZE,
            max_batching_window=TELEMETRY_BATCHING_WINDOW,
        )
