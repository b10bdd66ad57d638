"""The outbox: the table's one stream consumer publishes order events to SNS.

- ``topic``: SNS ``Notifications`` (KMS-encrypted with the data key, TLS-only topic policy);
  grid workers subscribe by email or HTTPS webhook with filter policies on ``grid_id``.
- ``retry``: events that still fail to publish after the function's bounded attempts are parked
  here in full (14 days) for redrive; ``failures``: the stream event source's on-failure
  destination (it only receives batch metadata: shard, sequence numbers).
- ``function``: the outbox dispatcher. It reads the stream, filtered so that only ``ORDER#``
  items invoke it; it may Publish to the topic and SendMessage to the retry queue, and it writes
  the in-app inbox entries, the statistics counters and histograms and the per-event
  deduplication markers (``INBOX#``, ``STATS#``, ``EVENT#`` items: never ``ORDER#``, so its own
  writes do not invoke it again): key reads and conditional writes on the base table, no Query,
  no Scan, no DeleteItem.

Starting position TRIM_HORIZON: when the mapping is created (first deploy, or re-created) it
starts from the oldest record still in the stream (24 h), so orders written just before the
mapping became active are still published; LATEST would skip them. Publishing is at least once
with a stable event id, so a replay is harmless.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import aws_cdk as cdk
import jsii
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.constructs.functions import FunctionSettings, SmartZoneFunction
from infra.constructs.queues import MAX_RETENTION, EncryptedQueue, QueueRole, mark_queue
from infra.constructs.storage import TABLE_KEY_ACTIONS
from smartzone.repositories.keys import ORDER_PK_PREFIX

SEND_KEY_ACTIONS = ["kms:GenerateDataKey", "kms:Decrypt"]
OUTBOX_TIMEOUT = cdk.Duration.seconds(60)
OUTBOX_BATCH_SIZE = 100
OUTBOX_RETRY_ATTEMPTS = 5
OUTBOX_MAX_RECORD_AGE = cdk.Duration.hours(6)
OUTBOX_TABLE_ACTIONS = [
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:ConditionCheckItem",
]
"""Inbox, statistics and event markers. TransactWriteItems has no IAM action of its own: a
transaction is authorized by the Put/Update/ConditionCheckItem actions of its parts."""


@dataclass(frozen=True)
class OutboxSettings:
    publish_attempts: int = 3
    """Attempts to publish one event before it is parked in the retry queue (``PUBLISH_ATTEMPTS``)."""
    inbox_ttl_days: int = 180
    """In-app inbox entries expire this many days after their event (``INBOX_TTL_DAYS``)."""


@jsii.implements(lambda_.IEventSourceDlq)
class QueueFailureDestination:
    """An event-source on-failure destination with exact grants.

    Like ``SqsDlq``, but grants only ``sqs:SendMessage`` and the two key actions SSE-KMS needs
    (``SqsDlq`` grants ``kms:ReEncrypt*`` and ``kms:GenerateDataKey*`` too).
    """

    def __init__(self, queue: sqs.Queue) -> None:
        self.queue = queue

    def bind(
        self, _target: lambda_.IEventSourceMapping, target_handler: lambda_.IFunction
    ) -> lambda_.DlqDestinationConfig:
        self.queue.grants.actions(target_handler, ["sqs:SendMessage"], key_actions=SEND_KEY_ACTIONS)
        return lambda_.DlqDestinationConfig(destination=self.queue.queue_arn)


class Notifications(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        key: kms.IKey,
        table: dynamodb.ITable,
        functions: FunctionSettings,
        outbox: OutboxSettings,
    ) -> None:
        super().__init__(scope, construct_id)
        self.topic = sns.Topic(
            self,
            "Notifications",
            display_name="SmartZone notifications",
            master_key=key,
            enforce_ssl=True,
        )
        self.retry = EncryptedQueue(self, "PublishRetry", key=key, retention_period=MAX_RETENTION)
        self.failures = EncryptedQueue(self, "StreamFailures", key=key, retention_period=MAX_RETENTION)
        mark_queue(self.retry.queue, QueueRole.PUBLISH_RETRY)
        mark_queue(self.failures.queue, QueueRole.STREAM_FAILURES)

        self.function = SmartZoneFunction(
            self,
            "Outbox",
            package="outbox",
            description="Outbox dispatcher: publishes work-order events from the table stream to SNS",
            settings=functions,
            timeout=OUTBOX_TIMEOUT,
            memory_size=256,
            environment={
                "TABLE_NAME": table.table_name,
                "NOTIFICATIONS_TOPIC_ARN": self.topic.topic_arn,
                "RETRY_QUEUE_URL": self.retry.queue.queue_url,
                "PUBLISH_ATTEMPTS": str(outbox.publish_attempts),
                "INBOX_TTL_DAYS": str(outbox.inbox_ttl_days),
            },
            wildcard_resource_reasons=[
                "dynamodb:ListStreams (added by the stream event source) does not support "
                "resource-level permissions; the stream reads themselves are scoped to this table's stream"
            ],
        )
        fn = self.function.function
        self.topic.grants.actions(fn, ["sns:Publish"], key_actions=SEND_KEY_ACTIONS)
        self.retry.queue.grants.actions(fn, ["sqs:SendMessage"], key_actions=SEND_KEY_ACTIONS)
        iam.Grant.add_to_principal(grantee=fn, actions=OUTBOX_TABLE_ACTIONS, resource_arns=[table.table_arn])
        key.grant(fn, *TABLE_KEY_ACTIONS)
        fn.add_event_source(
            event_sources.DynamoEventSource(
                table,
                starting_position=lambda_.StartingPosition.TRIM_HORIZON,
                batch_size=OUTBOX_BATCH_SIZE,
                bisect_batch_on_error=True,
                retry_attempts=OUTBOX_RETRY_ATTEMPTS,
                report_batch_item_failures=True,
                max_record_age=OUTBOX_MAX_RECORD_AGE,
                parallelization_factor=1,
                on_failure=cast(lambda_.IEventSourceDlq, QueueFailureDestination(self.failures.queue)),
                filters=[
                    lambda_.FilterCriteria.filter(
                        {"dynamodb": {"Keys": {"pk": {"S": lambda_.FilterRule.begins_with(ORDER_PK_PREFIX)}}}}
                    )
                ],
            )
        )
