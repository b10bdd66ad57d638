"""What the detections webhook needs of AWS: vendor keys, the replay guard, the buffer, snapshot URLs.

- :class:`VendorKeys`: the JSON map vendor id → HMAC key, from one Secrets Manager secret (read
  at most every ``ttl_s`` seconds per container, so a rotated key is in use within minutes), or
  locally from the ``VENDOR_KEYS`` setting;
- :class:`ReplayGuard`: ``WEBHOOK#<vendor>`` / ``NONCE#<signature>`` put with
  ``attribute_not_exists`` and a TTL (``expires_at``): the second use of a signature fails;
- :class:`DetectionQueue`: ``SendMessageBatch`` to the detections buffer (10 per call);
- :class:`SnapshotStore`: presigned PUT URLs for vendors' uploads and short-lived GET links.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from botocore.exceptions import ClientError

from smartzone.repositories import keys
from smartzone.repositories.clients import client
from smartzone.repositories.codec import to_item

SEND_BATCH_LIMIT = 10


class VendorKeys:
    def __init__(
        self,
        *,
        secret_arn: str = "",
        local_json: str = "",
        ttl_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.secret_arn = secret_arn
        self.local_json = local_json
        self.ttl_s = ttl_s
        self.clock = clock
        self._cached: tuple[float, dict[str, str]] | None = None
        self._lock = threading.Lock()

    def get(self) -> dict[str, str]:
        with self._lock:
            if self._cached is not None and self.clock() - self._cached[0] < self.ttl_s:
                return self._cached[1]
        raw = (
            client("secretsmanager").get_secret_value(SecretId=self.secret_arn)["SecretString"]
            if self.secret_arn
            else self.local_json or "{}"
        )
        parsed = json.loads(raw)
        found = (
            {str(k): str(v) for k, v in parsed.items() if isinstance(v, str) and v}
            if isinstance(parsed, dict)
            else {}
        )
        with self._lock:
            self._cached = (self.clock(), found)
        return found


def put_vendor_key(secret_arn: str, vendor_id: str, key: str | None) -> dict[str, str]:
    """Add, replace (``key``) or remove (``None``) one vendor's key; returns the new map."""
    sm = client("secretsmanager")
    try:
        current = json.loads(sm.get_secret_value(SecretId=secret_arn)["SecretString"])
    except (ClientError, ValueError):
        current = {}
    mapping = {
        k: v for k, v in (current if isinstance(current, dict) else {}).items() if not k.startswith("_")
    }
    if key is None:
        mapping.pop(vendor_id, None)
    else:
        mapping[vendor_id] = key
    sm.put_secret_value(SecretId=secret_arn, SecretString=json.dumps(mapping, sort_keys=True))
    return mapping


class ReplayGuard:
    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    def first_use(self, vendor_id: str, signature: str, expires_at_s: int) -> bool:
        """True the first time; False when this signature was already used (a replay)."""
        try:
            client("dynamodb").put_item(
                TableName=self.table_name,
                Item=to_item(
                    {
                        **keys.webhook_nonce_key(vendor_id, signature),
                        "entity": "webhook_nonce",
                        "expires_at": expires_at_s,
                    }
                ),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True


class DetectionQueue:
    def __init__(self, queue_url: str) -> None:
        self.queue_url = queue_url

    def send(self, bodies: Sequence[Mapping[str, Any]]) -> int:
        """Queue every body; returns how many could not be queued."""
        failed = 0
        for start in range(0, len(bodies), SEND_BATCH_LIMIT):
            chunk = bodies[start : start + SEND_BATCH_LIMIT]
            response = client("sqs").send_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(i), "MessageBody": json.dumps(body, ensure_ascii=False)}
                    for i, body in enumerate(chunk)
                ],
            )
            failed += len(response.get("Failed", []))
        return failed


class SnapshotStore:
    def __init__(self, bucket: str) -> None:
        self.bucket = bucket

    def upload_url(self, key: str, content_type: str, ttl_s: int) -> str:
        url: str = client("s3").generate_presigned_url(
            "put_object",
            Params={"Bucket": self.bucket, "Key": key, "ContentType": content_type},
            ExpiresIn=ttl_s,
        )
        return url

    def link(self, key: str, ttl_s: int) -> str:
        url: str = client("s3").generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=ttl_s
        )
        return url
