"""An SQS queue the way SmartZone needs every queue: KMS-encrypted with the stack's data key,
TLS-only (``aws:SecureTransport`` deny), and with its own dead-letter queue (itself encrypted
and TLS-only, keeping messages 14 days)."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sqs as sqs
from constructs import Construct

MAX_RETENTION = cdk.Duration.days(14)


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
