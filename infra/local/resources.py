"""Creates the platform's data resources in an emulated AWS (moto) for tests, demo and benchmarks.

Mirrors the table, queues and topic that ``infra/`` defines (key schema, indexes, stream).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from smartzone.repositories.clients import client
from smartzone.repositories.keys import GSI1, GSI2, GSI3, GSI4


@dataclass(frozen=True)
class LocalResources:
    table_name: str
    rejects_queue_url: str
    retry_queue_url: str
    notifications_topic_arn: str

    def environment(self) -> dict[str, str]:
        """The environment variables a function would get from the stack."""
        return {
            "TABLE_NAME": self.table_name,
            "REJECTS_QUEUE_URL": self.rejects_queue_url,
            "RETRY_QUEUE_URL": self.retry_queue_url,
            "NOTIFICATIONS_TOPIC_ARN": self.notifications_topic_arn,
        }

    def export(self) -> None:
        os.environ.update(self.environment())


def create_table(table_name: str) -> None:
    ddb = client("dynamodb")
    attrs = ["pk", "sk", *(f"{g}{part}" for g in (GSI1, GSI2, GSI3, GSI4) for part in ("pk", "sk"))]
    ddb.create_table(
        TableName=table_name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in attrs],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": name,
                "KeySchema": [
                    {"AttributeName": f"{name}pk", "KeyType": "HASH"},
                    {"AttributeName": f"{name}sk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
            for name in (GSI1, GSI2, GSI3, GSI4)
        ],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )


def create_local_resources(prefix: str = "smartzone") -> LocalResources:
    table_name = f"{prefix}-table"
    create_table(table_name)
    sqs = client("sqs")
    rejects = sqs.create_queue(QueueName=f"{prefix}-telemetry-rejects")["QueueUrl"]
    retry = sqs.create_queue(QueueName=f"{prefix}-outbox-retry")["QueueUrl"]
    topic = client("sns").create_topic(Name=f"{prefix}-notifications")["TopicArn"]
    return LocalResources(table_name, rejects, retry, topic)
