"""The seed story against a started local platform, over real MQTT and real HTTP.

MH-0178 (高新大道, grid G07) reports a tilt of 25.3° over MQTT → the order is dispatched to G07's
worker, who sees it through the API (G01's worker does not) and gets it in the inbox → the worker
acknowledges, verifies, handles and resolves it over HTTP → the cover reports level readings over
MQTT for the clear window → the order is closed (预警消除) with the time spent in each stage.
Around it: malformed MQTT messages do not disturb the next good reading; forged, expired and
missing tokens get 401; the OpenAPI document is public.
"""

from __future__ import annotations

import base64
import gzip
import json
import time
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from smartzone.domain.timeutil import from_iso, parse_ts_ms
from tests.e2e.platform_fixtures import (
    Session,
    api,
    api_ok,
    minutes_ago,
    platform_fixture,
    publish,
    publish_raw,
    session_fixture,
    token,
    wait_until,
)
from tools.device_client import telemetry_topic

REPO = Path(__file__).resolve().parents[2]
STORY_DEVICE = "MH-0178"  # 高新大道, grid G07 (events/seed/district.json)
WORKER = "G07-W1"
OTHER_WORKER = "G01-W1"
DISPATCHER = "dispatcher-01"
__all__ = ["platform_fixture", "session_fixture"]  # one platform for this module's tests
ARRIVAL_S = 10.0
"""'Within seconds': an MQTT reading's effect is visible through the API within this time."""


# -- helpers -------------------------------------------------------------------------------------


def orders_of(session: Session, username: str, **query: Any) -> list[dict[str, Any]]:
    return list(api_ok(session, username, "GET", "/v1/workorders", **query)["items"])


def inbox_of(session: Session, username: str) -> list[dict[str, Any]]:
    return list(api_ok(session, username, "GET", "/v1/notifications")["items"])


def last_reading(session: Session, device_id: str) -> dict[str, Any]:
    return dict(api_ok(session, DISPATCHER, "GET", f"/v1/devices/{device_id}")["last_reading"])


def reading_at(reading: dict[str, Any]) -> int | None:
    """The device time of a ``last_reading`` (UTC ms), or None when the device has none."""
    return None if reading.get("at") is None else from_iso(reading["at"])


def reading_of(session: Session, device_id: str, ts: str) -> dict[str, Any] | None:
    """The device's last reading once it is the one with device time ``ts``, else None."""
    reading = last_reading(session, device_id)
    return reading if reading_at(reading) == parse_ts_ms(ts) else None


def order_in(session: Session, username: str, order_id: str, status: str) -> dict[str, Any] | None:
    """The order's detail once it has ``status``, else None."""
    detail = api_ok(session, username, "GET", f"/v1/workorders/{order_id}")
    return detail if detail["status"] == status else None


def transition(session: Session, username: str, order_id: str, action: str, **fields: Any) -> Any:
    status, body = api(
        session, username, "POST", f"/v1/workorders/{order_id}/transitions", {"action": action, **fields}
    )
    assert status == 200, f"{action} by {username}: {status} {body}"
    return body


def _b64_json(segment: str) -> dict[str, Any]:
    return dict(json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))))


def _b64_segment(document: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(document).encode()).rstrip(b"=").decode()


def moto_signing_key() -> RSAKey:
    """The private key moto's Cognito signs every ID token with (shipped inside moto)."""
    package = resources.files("moto") / "cognitoidp" / "resources"
    gz = package / "jwks-private.json.gz"
    raw = gzip.decompress(gz.read_bytes()) if gz.is_file() else (package / "jwks-private.json").read_bytes()
    return RSAKey.import_key(json.loads(raw))


def resigned(id_token: str, **claims: Any) -> str:
    """``id_token`` with some claims replaced, properly signed again with the pool's own key."""
    header_segment, payload_segment, _ = id_token.split(".")
    header = _b64_json(header_segment)
    return jwt.encode(header, {**_b64_json(payload_segment), **claims}, moto_signing_key())


# -- the seed story ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def story_order(session: Session) -> dict[str, Any]:
    """MH-0178 tilts to 25.3° (device time ten minutes ago); the order G07-W1 then sees."""
    published = time.monotonic()
    publish(session, STORY_DEVICE, 25.3, ts=minutes_ago(10), battery=88)
    mine = wait_until(
        lambda: orders_of(session, WORKER), ARRIVAL_S, f"an order for {WORKER} after the MQTT tilt"
    )
    print(f"\norder visible to {WORKER} {time.monotonic() - published:.2f} s after the MQTT PUBACK")
    assert len(mine) == 1, mine
    return mine[0]


def test_given_mh0178_tilted_over_mqtt_when_g07_works_the_order_over_http_then_it_closes_with_stage_times(
    session: Session, story_order: dict[str, Any]
) -> None:
    # Given the tilt published over MQTT: one dispatched order for MH-0178 in G07, for G07's worker
    order = story_order
    assert (order["device_id"], order["grid_id"], order["status"], order["category"]) == (
        STORY_DEVICE,
        "G07",
        "dispatched",
        "manhole_tilt",
    ), order
    order_id = order["order_id"]
    assert order["reading"]["value"] == pytest.approx(25.3), order["reading"]
    # ... and nobody outside G07 sees it (an empty list, and 404 on the detail: existence not revealed)
    assert orders_of(session, OTHER_WORKER) == []
    status, body = api(session, OTHER_WORKER, "GET", f"/v1/workorders/{order_id}")
    assert status == 404, (status, body)
    assert order_id in [o["order_id"] for o in orders_of(session, DISPATCHER)]

    # When G07-W1 works it through the API
    for action, status_after in (
        ("acknowledge", "acknowledged"),
        ("verify", "verifying"),
        ("handle", "handling"),
    ):
        assert transition(session, WORKER, order_id, action)["status"] == status_after
    resolved = transition(session, WORKER, order_id, "resolve", note="已扶正井盖并加固")
    # the sensor still reports the tilt: resolved, not yet closed
    assert resolved["status"] == "resolved", resolved
    assert api_ok(session, WORKER, "GET", f"/v1/workorders/{order_id}")["status"] == "resolved"

    # ... and the cover reports level over MQTT for the clear window (five minutes of device time)
    for minute in range(9, 2, -1):  # 9, 8, ..., 3 minutes ago: one reading a minute
        publish(session, STORY_DEVICE, 1.0, ts=minutes_ago(minute), battery=88)

    # Then the order is closed (预警消除), its sensor back to normal, with the time of each stage
    detail = wait_until(
        lambda: order_in(session, WORKER, order_id, "closed"),
        ARRIVAL_S,
        f"{order_id} closed after the level readings",
    )
    assert detail["sensor_normal"] is True, detail
    actions = [entry["action"] for entry in detail["timeline"]]
    assert actions == ["raise", "acknowledge", "verify", "handle", "resolve", "alarm_cleared", "close"], (
        actions
    )
    durations = detail["stage_durations"]
    assert set(durations) == {
        "dispatched_to_acknowledged",
        "acknowledged_to_verifying",
        "verifying_to_handling",
        "handling_to_resolved",
        "resolved_to_closed",
    }, durations
    assert all(isinstance(v, int | float) and v >= 0 for v in durations.values()), durations
    assert detail["alarm_to_clearance_s"] is not None and detail["alarm_to_clearance_s"] >= 0, detail
    assert orders_of(session, OTHER_WORKER) == []


def test_given_the_mh0178_order_then_the_notification_reaches_g07_w1s_inbox_only(
    session: Session, story_order: dict[str, Any]
) -> None:
    # Given the order dispatched to G07 by the MQTT tilt
    order_id = story_order["order_id"]

    # Then its creation reaches G07-W1's inbox (the outbox runs on the table stream: wait for it)
    mine = wait_until(
        lambda: [n for n in inbox_of(session, WORKER) if n["order_id"] == order_id],
        ARRIVAL_S,
        f"{WORKER}'s inbox entry for {order_id}",
    )
    assert "order_created" in [n["event_type"] for n in mine], mine
    assert {n["grid_id"] for n in mine} == {"G07"}, mine
    # ... and never G01-W1's (its inbox stays empty: nothing happened in G01)
    assert inbox_of(session, OTHER_WORKER) == []


# -- malformed MQTT messages ---------------------------------------------------------------------


def test_given_malformed_mqtt_messages_when_a_good_reading_follows_then_it_is_applied(
    platform: Any, session: Session
) -> None:
    device, other = "MH-0101", "MH-0102"  # both in G06; level readings only (no alarm, no order)
    topic = telemetry_topic(device)

    # Given a first reading of MH-0101 (its first reading is always written)
    first = publish(session, device, 2.0, ts=minutes_ago(80), battery=90)
    shown = wait_until(
        lambda: reading_of(session, device, first["ts"]),
        ARRIVAL_S,
        f"{device}'s first reading in GET /v1/devices/{device}",
    )
    assert (shown["tilt_deg"], shown["battery_pct"]) == (2.0, 90), shown
    other_before = last_reading(session, other)

    # When malformed messages arrive on its topic: not JSON, NaN, an empty payload, a bad shape
    nan_ts = json.dumps(minutes_ago(60).isoformat(timespec="milliseconds"))
    for payload in (
        b"not json {",
        '{"ts": ' + nan_ts + ', "tilt_deg": NaN, "battery_pct": 90}',
        b"",
        b"\xff\xfe\x00garbage",
        json.dumps([1, 2, 3]),
        json.dumps({"ts": "yesterday-ish", "tilt_deg": 3.0}),
    ):
        publish_raw(session, topic, payload)
    platform.wait_idle(timeout_s=10)

    # Then nothing of them was applied (a NaN reading would have been written: 20 minutes later)
    assert last_reading(session, device) == shown

    # When a message on MH-0101's topic names another device in its payload: the topic wins
    foreign = json.dumps(
        {"device_id": other, "ts": minutes_ago(40).isoformat(timespec="milliseconds"), "tilt_deg": 3.0}
    )
    publish_raw(session, topic, foreign, client_id=device)
    wait_until(
        lambda: last_reading(session, device)["tilt_deg"] == 3.0,
        ARRIVAL_S,
        f"the reading published on {topic} applied to {device}",
    )

    # ... and the next good reading is applied as usual
    good = publish(session, device, 4.5, ts=minutes_ago(20), battery=89)
    after = wait_until(
        lambda: reading_of(session, device, good["ts"]),
        ARRIVAL_S,
        f"the good reading after the malformed ones in GET /v1/devices/{device}",
    )
    assert (after["tilt_deg"], after["battery_pct"]) == (4.5, 89), after
    platform.wait_idle(timeout_s=10)
    assert last_reading(session, other) == other_before, f"{other} changed by a message on {topic}"
    assert orders_of(session, DISPATCHER, grid_id="G06") == []


# -- tokens --------------------------------------------------------------------------------------


def test_given_tokens_that_are_forged_expired_garbage_or_missing_then_401(session: Session) -> None:
    own = token(session, OTHER_WORKER)
    # Given a genuine token works ...
    assert api(session, None, "GET", "/v1/workorders", bearer=own)[0] == 200
    # ... and so does the same token signed again with the pool's own key (the re-signing is faithful)
    assert api(session, None, "GET", "/v1/workorders", bearer=resigned(own))[0] == 200

    header, payload, signature = own.split(".")
    claims = _b64_json(payload)
    now = int(time.time())
    refused = {
        # payload altered (a dispatcher of grid G07), signature kept
        "forged": f"{header}.{_b64_segment({**claims, 'cognito:groups': ['dispatcher'], 'custom:grid_id': 'G07'})}.{signature}",
        # correctly signed, but expired an hour ago
        "expired": resigned(own, iat=now - 7200, auth_time=now - 7200, exp=now - 3600),
        # correctly signed, but for another audience
        "other audience": resigned(own, aud="someone-else"),
        # the signature of another token
        "swapped signature": f"{header}.{payload}.{token(session, WORKER).split('.')[2]}",
        "unsigned": f"{_b64_segment({'alg': 'none', 'typ': 'JWT'})}.{payload}.",
        "garbage": "not-a-token",
    }
    for name, bad in refused.items():
        status, body = api(session, None, "GET", "/v1/workorders", bearer=bad)
        assert status == 401, f"{name} token: {status} {body}"
    # Then also without any token
    for path in ("/v1/workorders", "/v1/notifications", "/v1/devices/MH-0178"):
        status, body = api(session, None, "GET", path)
        assert status == 401, f"no token, {path}: {status} {body}"
    status, body = api(session, None, "GET", "/v1/workorders", bearer="")
    assert status == 401, f"empty bearer: {status} {body}"


def test_given_no_token_when_the_openapi_document_is_asked_for_then_it_is_served(session: Session) -> None:
    status, document = api(session, None, "GET", "/v1/openapi.json")
    assert status == 200, (status, document)
    assert str(document["openapi"]).startswith("3."), document.get("openapi")
    committed = json.loads((REPO / "docs" / "openapi.json").read_text(encoding="utf-8"))
    assert set(document["paths"]) == set(committed["paths"])
    assert "/v1/workorders/{order_id}/transitions" in document["paths"]


def test_given_a_reading_over_mqtt_when_the_archive_buffer_flushes_then_it_is_in_s3_by_date(
    platform: Any, session: Session
) -> None:
    """The IoT rule's second action: every raw reading archived (Firehose → S3, partitioned by date)."""
    from smartzone.repositories.clients import client

    s3 = client("s3")
    (archive,) = platform.archives.values()
    prefix = time.strftime("raw/manhole/year=%Y/month=%m/day=%d/", time.gmtime())
    publish(session, "MH-0333", 4.2)

    def archived() -> list[dict[str, Any]]:
        archive.flush()  # the background flusher may already have written it: read every object
        found: list[dict[str, Any]] = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=archive.bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                body = gzip.decompress(s3.get_object(Bucket=archive.bucket, Key=obj["Key"])["Body"].read())
                found += [json.loads(line) for line in body.decode().splitlines()]
        return found

    deadline = time.monotonic() + 15
    readings = archived()
    while not any(r["device_id"] == "MH-0333" for r in readings) and time.monotonic() < deadline:
        time.sleep(0.2)
        readings = archived()
    assert any(r["device_id"] == "MH-0333" and r["tilt_deg"] == 4.2 and "received_at" in r for r in readings)


# -- detections (issue 5) ------------------------------------------------------------------------


def test_given_a_camera_detection_published_over_mqtt_then_an_order_for_the_cameras_grid_appears(
    session: Session,
) -> None:
    """Given CAM-01 (registered to G01, events/seed/district.json), when it publishes an illegal
    dumping detection on its MQTT topic, then a dispatched order routed by the registry reaches G01."""
    camera, worker = "CAM-01", "G01-W1"
    detected = minutes_ago(3).isoformat(timespec="milliseconds")
    payload = {"ts": detected, "type": "illegal_dumping", "confidence": 0.93, "track_id": "e2e-1"}
    publish_raw(session, f"smartzone/camera/{camera}/detections", json.dumps(payload), client_id=camera)

    def camera_order() -> dict[str, Any] | None:
        for item in orders_of(session, worker, category="illegal_dumping"):
            if (item.get("detection") or {}).get("camera_id") == camera:
                return item
        return None

    order = wait_until(camera_order, ARRIVAL_S, f"{camera}'s illegal-dumping order for {worker}")
    assert order["grid_id"] == "G01" and order["status"] == "dispatched"
    assert order["routing"]["method"] == "registry"
    assert (
        order["detection"]["count"] >= 1
        and order["detection"]["first_seen"] <= order["detection"]["last_seen"]
    )
