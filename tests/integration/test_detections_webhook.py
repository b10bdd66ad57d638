"""The signed detections webhook through the local gateway's open route: 401 without valid
credentials, 422 naming the field, 202 onto the same buffer the MQTT path uses."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from functions.detections import handler as detections
from functions.webhook import handler as webhook
from infra.local.gateway import Denied, GatewayResponse, LocalGateway
from infra.local.resources import LocalResources
from smartzone.domain.webhook_auth import sign
from smartzone.repositories.cameras import CameraRepository
from smartzone.repositories.clients import client
from smartzone.settings import get_settings
from tests.support.detections import river_camera
from tests.support.telemetry import FakeContext, sqs_event

KEY = "s3cr3t-" * 9


class NoUsers:
    def authorize(self, token: str | None, method: str, path: str) -> dict[str, Any]:
        raise Denied(401, "a valid token is required")


@pytest.fixture
def gateway(resources: LocalResources, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalGateway]:
    buffer = client("sqs").create_queue(QueueName="detections-buffer")["QueueUrl"]
    client("s3").create_bucket(
        Bucket="snapshots", CreateBucketConfiguration={"LocationConstraint": "cn-north-1"}
    )
    monkeypatch.setenv("DETECTIONS_QUEUE_URL", buffer)
    monkeypatch.setenv("VENDOR_KEYS", json.dumps({"hikvision": KEY, "dahua": "other-" * 10}))
    monkeypatch.setenv("SNAPSHOTS_BUCKET", "snapshots")
    get_settings.cache_clear()
    webhook._vendor_keys.cache_clear()
    detections.pipeline.cache_clear()
    CameraRepository(resources.table_name).put(river_camera("CAM-01", "G03"))
    routes = {
        ("POST", "/v1/detections"): webhook.handler,
        ("POST", "/v1/detections/uploads"): webhook.handler,
    }
    yield LocalGateway(NoUsers(), open_routes=routes)
    webhook._vendor_keys.cache_clear()
    detections.pipeline.cache_clear()


def post(
    gateway: LocalGateway,
    body: Any,
    *,
    vendor: str = "hikvision",
    key: str = KEY,
    at_s: int | None = None,
    path: str = "/v1/detections",
    headers: dict[str, str] | None = None,
) -> GatewayResponse:
    text = body if isinstance(body, str) else json.dumps(body)
    timestamp = str(at_s if at_s is not None else int(time.time()))
    signed = {
        "Content-Type": "application/json",
        "X-SmartZone-Vendor": vendor,
        "X-SmartZone-Timestamp": timestamp,
        "X-SmartZone-Signature": sign(key, timestamp, text),
    }
    return gateway.request("POST", path, headers=headers if headers is not None else signed, body=text)


def detection(**overrides: Any) -> dict[str, Any]:
    return {
        "camera_id": "CAM-01",
        "ts": int(time.time() * 1000) - 5000,
        "type": "illegal_dumping",
        "confidence": 0.92,
        **overrides,
    }


def buffered() -> list[dict[str, Any]]:
    url = get_settings().detections_queue_url
    messages = client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return messages


def test_given_missing_bad_stale_or_replayed_credentials_then_401_and_nothing_queued(
    gateway: LocalGateway,
) -> None:
    now = int(time.time())
    body = {"detections": [detection()]}
    refused = [
        post(gateway, body, headers={"Content-Type": "application/json"}),
        post(gateway, body, key="x" * 64),
        post(gateway, body, vendor="acme"),
        post(gateway, body, at_s=now - 301),
        post(gateway, body, at_s=now + 301),
    ]
    assert [r.status for r in refused] == [401] * 5
    assert {r.json()["error"] for r in refused} == {"unauthorized"}
    assert buffered() == []

    text = json.dumps(body)
    assert post(gateway, text, at_s=now).status == 202
    assert post(gateway, text, at_s=now).status == 401  # the same signed request again: a replay
    assert len(buffered()) == 1


def test_given_a_malformed_detection_then_422_naming_the_field(gateway: LocalGateway) -> None:
    response = post(gateway, {"detections": [detection(), detection(confidence=1.7)]})
    assert response.status == 422 and response.json()["field"] == "detections.1.confidence"
    response = post(gateway, {"detections": [detection(type="ufo")]})
    assert response.status == 422 and response.json()["field"] == "detections.0.type"
    response = post(gateway, "{nope")
    assert response.status == 422 and response.json()["field"] == "body"
    assert buffered() == []


def test_given_images_outside_the_vendors_own_prefix_then_422_naming_the_field(gateway: LocalGateway) -> None:
    """Given a vendor referencing another vendor's upload (or an image outside any vendor's prefix),
    when it pushes detections or changes, then 422 names the field and nothing is queued; its own
    uploads (``snapshots/<vendor>/…``) are accepted."""
    other = detection(snapshot_url="snapshots/dahua/2026/11/29/abc.jpg")
    response = post(gateway, {"detections": [detection(), other]})
    assert response.status == 422 and response.json()["field"] == "detections.1.snapshot_url"
    change = {
        "flight_id": "UAV1-F1",
        "ts": int(time.time() * 1000) - 5000,
        "type": "illegal_dumping",
        "lon": 120.05,
        "lat": 31.05,
        "before_image": "snapshots/hikvision/b.jpg",
        "after_image": "snapshots/uav/a.jpg",
    }
    response = post(gateway, {"changes": [change]})
    assert response.status == 422 and response.json()["field"] == "changes.0.after_image"
    assert buffered() == []

    own = detection(snapshot_url="s3://snapshots/snapshots/hikvision/2026/11/29/abc.jpg")
    assert post(gateway, {"detections": [own], "changes": [change | {"after_image": None}]}).status == 202


def test_given_valid_detections_then_202_and_they_become_one_order_through_the_shared_path(
    resources: LocalResources, gateway: LocalGateway
) -> None:
    now = int(time.time() * 1000)
    response = post(gateway, {"detections": [detection(ts=now - 3000), detection(ts=now - 2000, track_id=7)]})
    assert response.status == 202
    assert response.json() == {"accepted": 2, "detections": 2, "changes": 0}

    messages = buffered()
    assert len(messages) == 2 and all(json.loads(m["Body"])["vendor_id"] == "hikvision" for m in messages)
    result = detections.handler(sqs_event([m["Body"] for m in messages]), FakeContext())
    assert result == {"batchItemFailures": []}
    orders = client("dynamodb").query(
        TableName=resources.table_name,
        IndexName="gsi1",
        KeyConditionExpression="gsi1pk = :p",
        ExpressionAttributeValues={":p": {"S": "GRIDORDERS#G03"}},
    )["Items"]
    assert len(orders) == 1 and orders[0]["detection"]["M"]["count"]["N"] == "2"

    # Another vendor may not push for a camera it does not operate: rejected with that reason.
    assert post(gateway, {"detections": [detection()]}, vendor="dahua", key="other-" * 10).status == 202
    detections.handler(sqs_event([buffered()[0]["Body"]]), FakeContext())
    rejected = client("sqs").receive_message(QueueUrl=get_settings().rejects_queue_url).get("Messages", [])
    assert [json.loads(m["Body"])["reason"] for m in rejected] == ["vendor_mismatch"]


def test_given_a_signed_upload_request_then_presigned_put_urls_under_snapshots(gateway: LocalGateway) -> None:
    response = post(gateway, {"files": [{"content_type": "image/jpeg"}]}, path="/v1/detections/uploads")
    assert response.status == 200
    (upload,) = response.json()["uploads"]
    assert upload["key"].startswith("snapshots/hikvision/") and upload["key"].endswith(".jpg")
    assert upload["method"] == "PUT" and "X-Amz-Signature" in upload["url"]
    unsigned = post(gateway, {"files": [{}]}, path="/v1/detections/uploads", headers={})
    assert unsigned.status == 401
