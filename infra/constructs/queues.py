"""An SQS queue the way SmartZone needs every queue: KMS-encrypted with the stack's data key,
TLS-only (``aws:SecureTransport`` deny), and with its own dead-letter queue (itself encrypted
and TLS-only, keeping messages 14 days)."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sqs as sqs
from constructs import Construct

MAX_RETENTION = cdk.Duration.days(14)

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


class EncryptedQueue(Construct):
    """``queue`` and its ``dlq``; a message moves to the DLQ after ``max_receive_count`` receives."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        key: kms.IKey,
        visibility_timeout: cdk.Duration | None = None,
        retention_period: cdk.Duration | None = None,
        max_receive_count: int = 5,
    ) -> None:
        super().__init__(scope, construct_id)
        self.dlq = sqs.Queue(
            self,
            "Dlq",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            enforce_ssl=True,
            retention_period=MAX_RETENTION,
        )
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
