"""The rejects queue: bad records are acknowledged, and a copy with its reason is kept here."""

from __future__ import annotations

import json
from dataclasses import dataclass

from botocore.exceptions import BotoCoreError, ClientError

from smartzone.domain.readings import Rejection
from smartzone.repositories.clients import client

SEND_BATCH_LIMIT = 10
MAX_BODY_CHARS = 200_000
"""A rejected body longer than this is kept cut to this many characters, marked ``"truncated": true``
(the copy must fit an SQS message). Such a copy is no longer the original message:
``tools.redrive`` refuses to resend it (skipped, counted as ``truncated body``)."""


@dataclass(frozen=True, slots=True)
class RejectedMessage:
    message_id: str
    body: str
    rejection: Rejection
    rejected_at: str

    def to_json(self) -> str:
        return json.dumps(
            {
                "message_id": self.message_id,
                "reason": self.rejection.reason.value,
                "detail": self.rejection.detail,
                "device_id": self.rejection.device_id,
                "rejected_at": self.rejected_at,
                "body": self.body[:MAX_BODY_CHARS],
                **({"truncated": True} if len(self.body) > MAX_BODY_CHARS else {}),
            },
            ensure_ascii=False,
        )


class RejectSink:
    def __init__(self, queue_url: str) -> None:
        self.queue_url = queue_url

    def send(self, rejected: list[RejectedMessage]) -> set[str]:
        """Copy rejected messages to the queue; returns the ids that could not be sent (to retry)."""
        unsent: set[str] = set()
        for start in range(0, len(rejected), SEND_BATCH_LIMIT):
            chunk = rejected[start : start + SEND_BATCH_LIMIT]
            entries = [
                {
                    "Id": str(i),
                    "MessageBody": r.to_json(),
                    "MessageAttributes": {
                        "reason": {"DataType": "String", "StringValue": r.rejection.reason.value}
                    },
                }
                for i, r in enumerate(chunk)
            ]
            try:
                response = client("sqs").send_message_batch(QueueUrl=self.queue_url, Entries=entries)
            except (ClientError, BotoCoreError):
                unsent.update(r.message_id for r in chunk)
                continue
            unsent.update(chunk[int(f["Id"])].message_id for f in response.get("Failed", []))
        return unsent
