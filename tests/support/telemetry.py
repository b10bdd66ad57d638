"""Builders for telemetry test input: IoT-rule messages and the SQS events that carry them."""

from __future__ import annotations

import json
import uuid
from typing import Any

from smartzone.domain.registry import Device
from smartzone.domain.timeutil import to_iso


def rule_message(
    device_id: str, ts_ms: int, tilt: float, battery: float | None = 90.0, seq: int | None = None
) -> str:
    """What the IoT rule puts on the buffer queue for one MQTT message."""
    body: dict[str, Any] = {
        "ts": to_iso(ts_ms),
        "tilt_deg": tilt,
        "device_id": device_id,
        "received_at": ts_ms + 150,
    }
    if battery is not None:
        body["battery_pct"] = battery
    if seq is not None:
        body["seq"] = seq
    return json.dumps(body)


def sqs_event(
    bodies: list[str], queue_arn: str = "arn:aws:sqs:cn-north-1:123456789012:telemetry-buffer"
) -> dict[str, Any]:
    """An SQS event as Lambda's event-source mapping delivers it."""
    return {
        "Records": [
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": f"rh-{i}",
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "1764400000000",
                    "SenderId": "AIDAIOT",
                    "ApproximateFirstReceiveTimestamp": "1764400000000",
                },
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": "cn-north-1",
            }
            for i, body in enumerate(bodies)
        ]
    }


def demo_device(device_id: str = "MH-0178", grid_id: str = "G03") -> Device:
    return Device(
        device_id=device_id,
        name=f"高新大道{device_id[-3:]}号井",
        road="高新大道",
        lon=118.35,
        lat=31.33,
        grid_id=grid_id,
    )


class FakeContext:
    """The bits of a Lambda context Powertools reads."""

    function_name = "telemetry"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:cn-north-1:123456789012:function:telemetry"
    aws_request_id = "req-1"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 60_000
