"""An SQS queue the way SmartZone needs every queue: KMS-encrypted with the stack's data key,
TLS-only (``aws:SecureTransport`` deny), and with its own dead-letter queue (itself encrypted
and TLS-only, keeping messages 14 days)."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_iot as iot
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

MAX_RETENTION = cdk.Duration.days(14)
SEND_KEY_ACTIONS = ["kms:GenerateDataKey", "kms:Decrypt"]
"""The data-key actions a sender to an SSE-KMS queue needs (nothing else, e.g. no ``kms:ReEncrypt*``)."""

QUEUE_ROLE_TAG = "smartzone:queue"
"""Tag naming what a queue is for; monitoring and ``tools/redrive.py`` find queues by it."""


class QueueRole:
    """Values of :data:`QUEUE_ROLE_TAG` (dead-letter queues need none: redrive policies name them)."""

    TELEMETRY_BUFFER = "telemetry-buffer"
    """Where rejects and IoT rule errors are redriven to (after re-evaluating the rule's SQL)."""
    REJECTS = "rejects"
    RULE_ERRORS = "rule-errors"
    PUBLISH_RETRY = "publish-retry"
    STREAM_FAILURES = "stream-failures"

    PARKING = frozenset({REJECTS, RULE_ERRORS, PUBLISH_RETRY, STREAM_FAILURES})
    """Queues that hold what failed or was refused: any message there deserves an operator's look."""


def mark_queue(queue: sqs.IQueue, role: str) -> None:
    """Tag ``queue`` with its role (readable at once by the monitoring construct, and in AWS)."""
    cfn = queue.node.default_child
    assert isinstance(cfn, sqs.CfnQueue)
    cfn.tags.set_tag(QUEUE_ROLE_TAG, role)


def queue_role(cfn: sqs.CfnQueue) -> str | None:
    return cfn.tags.tag_values().get(QUEUE_ROLE_TAG)


def grant_send(queue: sqs.Queue, grantee: iam.IGrantable) -> iam.Grant:
    """``sqs:SendMessage`` on ``queue`` and the two key actions SSE-KMS needs (:data:`SEND_KEY_ACTIONS`)."""
    return queue.grants.actions(grantee, ["sqs:SendMessage"], key_actions=SEND_KEY_ACTIONS)


def consume(
    function: lambda_.Function,
    queue: sqs.IQueue,
    *,
    batch_size: int,
    max_batching_window: cdk.Duration | None = None,
) -> None:
    """``function`` consumes ``queue`` in batches, reporting failed messages (partial batch responses)."""
    function.add_event_source(
        event_sources.SqsEventSource(
            queue,
            batch_size=batch_size,
            max_batching_window=max_batching_window,
            report_batch_item_failures=True,
        )
    )


def iot_rule_role(scope: Construct, construct_id: str, *, description: str) -> iam.Role:
    """The role IoT topic rules of this account act with (grant it :func:`grant_send` on their queues)."""
    return iam.Role(
        scope,
        construct_id,
        assumed_by=iam.ServicePrincipal(
            "iot.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": cdk.Aws.ACCOUNT_ID}}
        ),
        description=description,
    )


def sqs_rule_action(queue: sqs.IQueue, role: iam.IRole) -> iot.CfnTopicRule.ActionProperty:
    """An IoT topic rule (error) action sending the message, as it is (no Base64), to ``queue``."""
    return iot.CfnTopicRule.ActionProperty(
        sqs=iot.CfnTopicRule.SqsActionProperty(
            queue_url=queue.queue_url, role_arn=role.role_arn, use_base64=False
        )
    )


def dead_letter_queue(scope: Construct, construct_id: str, *, key: kms.IKey) -> sqs.Queue:
    """An encrypted, TLS-only queue keeping messages 14 days (the longest SQS allows)."""
    return sqs.Queue(
        scope,
        construct_id,
        encryption=sqs.QueueEncryption.KMS,
        encryption_master_key=key,
        enforce_ssl=True,
        retention_period=MAX_RETENTION,
    )


class EncryptedQueue(Construct):
    """``queue`` and its ``dlq``; a message moves to the DLQ after ``max_receive_count`` receives.

    ``role`` tags the queue with :func:`mark_queue`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        key: kms.IKey,
        visibility_timeout: cdk.Duration | None = None,
        retention_period: cdk.Duration | None = None,
        max_receive_count: int = 5,
        role: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.dlq = dead_letter_queue(self, "Dlq", key=key)
        self.queue = sqs.Queue(
            self,
            "Queue",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            enforce_ssl=True,
            visibility_timeout=visibility_timeout,
            retention_period=retention_period,
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.dlq, max_receive_count=max_receive_count),
        )
        if role is not None:
            mark_queue(self.queue, role)
