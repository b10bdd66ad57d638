"""Merging, not flooding (pure): quiet window, thresholds, snapshot cap, duplicates, parsing,
transient expiry, precision and webhook signatures."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from smartzone.domain.detection_merge import MAX_SNAPSHOTS, Aggregate, MergeState, plan_merge
from smartzone.domain.detection_messages import (
    CameraDetection,
    DetectionRejection,
    DetectionRejectReason,
    DroneChange,
    parse_detection,
)
from smartzone.domain.detection_stats import detection_counters, summarize_precision
from smartzone.domain.detection_transient import plan_expiry, was_expired
from smartzone.domain.detections import DETECTION_POLICIES, DetectionType
from smartzone.domain.sla import target_for
from smartzone.domain.webhook_auth import AuthFailure, Unauthenticated, sign, verify
from smartzone.domain.workorders import OrderStatus
from tests.support.detections import river_camera

NOW = 1_795_000_000_000
SEC = 1000
DUMPING = DetectionType.ILLEGAL_DUMPING


def det(ts: int, confidence: float = 0.9, snapshot: str = "", track: str = "") -> CameraDetection:
    return CameraDetection("CAM-01", DUMPING, ts, confidence, track, snapshot)


def aggregate(*detections: CameraDetection, window_s: int = 600, threshold: float = 0.7) -> Aggregate:
    camera = river_camera("CAM-01", "G03", (DUMPING,), min_confidence=threshold, quiet_window_s=window_s)
    setting = camera.setting_for(DUMPING)
    assert setting is not None
    return Aggregate(camera, setting, detections)


def test_given_a_batch_within_the_window_then_one_new_order_aggregates_it() -> None:
    plan = plan_merge(aggregate(*(det(NOW + i * SEC, 0.7 + i / 100) for i in range(10))), MergeState(), NOW)

    assert plan.join is None and len(plan.new_orders) == 1
    order = plan.new_orders[0]
    assert order.detection is not None and order.detection.count == 10
    assert order.detection.max_confidence == pytest.approx(0.79)
    assert order.status is OrderStatus.DISPATCHED and order.grid_id == "G03"
    assert order.routing is not None and order.routing.method == "registry"
    assert "违规倾倒" in order.title and "网格 G03" in order.description
    assert plan.state.version == 1 and plan.state.order_id == order.order_id and plan.state.count == 10


def test_given_an_open_order_when_the_next_batch_is_within_the_window_then_it_joins() -> None:
    first = plan_merge(aggregate(det(NOW)), MergeState(), NOW)
    second = plan_merge(aggregate(det(NOW + 599 * SEC)), first.state, NOW)

    assert second.join is not None and not second.new_orders
    assert second.join.order_id == first.new_orders[0].order_id
    assert second.join.summary.count == 2 and second.expected_version == 1


def test_given_a_gap_beyond_the_quiet_window_then_a_new_order_opens() -> None:
    first = plan_merge(aggregate(det(NOW)), MergeState(), NOW)
    second = plan_merge(aggregate(det(NOW + 601 * SEC)), first.state, NOW)

    assert second.join is None and len(second.new_orders) == 1
    assert second.state.order_id == second.new_orders[0].order_id != first.state.order_id


def test_given_a_gap_inside_one_batch_then_two_orders_from_one_plan() -> None:
    plan = plan_merge(aggregate(det(NOW), det(NOW + SEC), det(NOW + 3600 * SEC)), MergeState(), NOW)

    assert [o.detection.count for o in plan.new_orders if o.detection] == [2, 1]
    assert plan.state.count == 1


def test_given_the_open_order_is_not_joinable_then_a_new_order_opens() -> None:
    first = plan_merge(aggregate(det(NOW)), MergeState(), NOW)
    again = plan_merge(aggregate(det(NOW + SEC)), first.state, NOW, order_joinable=False)

    assert again.join is None and len(again.new_orders) == 1


def test_given_detections_below_the_threshold_then_counted_not_dispatched() -> None:
    plan = plan_merge(
        aggregate(det(NOW, 0.5), det(NOW + SEC, 0.69), det(NOW + 2 * SEC, 0.7)), MergeState(), NOW
    )

    assert plan.below_threshold == 2 and plan.dispatched == 1
    assert plan.new_orders[0].detection is not None and plan.new_orders[0].detection.count == 1
    only_low = plan_merge(aggregate(det(NOW, 0.1)), MergeState(), NOW)
    assert not only_low.writes and only_low.below_threshold == 1


def test_given_many_snapshots_then_the_first_and_the_latest_are_kept_up_to_the_cap() -> None:
    plan = plan_merge(
        aggregate(*(det(NOW + i, snapshot=f"snapshots/c/{i}.jpg") for i in range(12))), MergeState(), NOW
    )

    snapshots = plan.new_orders[0].detection.snapshots  # type: ignore[union-attr]
    assert len(snapshots) == MAX_SNAPSHOTS
    assert snapshots == ["snapshots/c/0.jpg", *(f"snapshots/c/{i}.jpg" for i in range(8, 12))]


def test_given_the_same_detections_again_then_they_are_duplicates_and_nothing_is_written() -> None:
    batch = [det(NOW + i * SEC, track=f"t{i}") for i in range(5)]
    first = plan_merge(aggregate(*batch, *batch[:2]), MergeState(), NOW)
    again = plan_merge(aggregate(*batch), first.state, NOW)

    assert first.duplicates == 2 and first.new_orders[0].detection.count == 5  # type: ignore[union-attr]
    assert again.duplicates == 5 and not again.writes


def test_given_a_permuted_batch_then_the_plan_is_identical() -> None:
    batch = [det(NOW + i * 7 * SEC, 0.7 + i / 50) for i in range(8)]
    a = plan_merge(aggregate(*batch), MergeState(), NOW)
    b = plan_merge(aggregate(*reversed(batch)), MergeState(), NOW)

    assert a.new_orders == b.new_orders and a.state == b.state


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("[1, 2]", DetectionRejectReason.MALFORMED_JSON),
        (
            {"camera_id": "CAM-01", "ts": NOW, "type": "aliens", "confidence": 0.9},
            DetectionRejectReason.UNKNOWN_TYPE,
        ),
        (
            {"camera_id": "CAM-01", "ts": NOW, "type": "straw_burning", "confidence": -0.1},
            DetectionRejectReason.CONFIDENCE_OUT_OF_RANGE,
        ),
        (
            {"camera_id": "CAM-01", "ts": NOW + 301 * SEC, "type": "straw_burning", "confidence": 0.9},
            DetectionRejectReason.FUTURE_TIMESTAMP,
        ),
        (
            {"camera_id": "bad id", "ts": NOW, "type": "straw_burning", "confidence": 0.9},
            DetectionRejectReason.INVALID_CAMERA_ID,
        ),
        (
            {"camera_id": "CAM-01", "type": "straw_burning", "confidence": 0.9},
            DetectionRejectReason.MISSING_FIELD,
        ),
        (
            {
                "flight_id": "UAV1-F1",
                "ts": NOW,
                "type": "illegal_dumping",
                "lon": 120.0,
                "lat": 31.0,
                "polygon": [[120, 31], [120.1, 31], [120, 31.1], [120.2, 31.2]],
            },
            DetectionRejectReason.INVALID_VALUE,
        ),
    ],
)
def test_given_a_malformed_detection_then_it_is_rejected_with_its_reason(body: object, reason: str) -> None:
    text = body if isinstance(body, str) else json.dumps(body)
    parsed = parse_detection(text, now_ms=NOW, max_future_skew_s=300, max_age_s=86400)
    assert isinstance(parsed, DetectionRejection) and parsed.reason == reason


def test_given_a_time_without_offset_then_it_is_read_as_beijing_time() -> None:
    body = {"camera_id": "CAM-01", "ts": "2026-11-29T10:00:00", "type": "illegal_dumping", "confidence": 0.9}
    utc = int(datetime(2026, 11, 29, 2, 0, tzinfo=UTC).timestamp() * 1000)
    parsed = parse_detection(body, now_ms=utc + SEC, max_future_skew_s=300, max_age_s=86400)
    assert isinstance(parsed, CameraDetection) and parsed.ts == utc


def test_given_a_drone_change_then_it_parses_with_its_ring_and_images() -> None:
    ring = [[120.0, 31.0], [120.1, 31.0], [120.1, 31.1], [120.0, 31.0]]
    body = {
        "flight_id": "UAV1-F1",
        "ts": NOW,
        "type": "construction_violation",
        "lon": 120.05,
        "lat": 31.02,
        "polygon": ring,
        "after_image": "snapshots/x/a.jpg",
    }
    parsed = parse_detection(body, now_ms=NOW, max_future_skew_s=300, max_age_s=86400)
    assert isinstance(parsed, DroneChange) and parsed.polygon is not None and len(parsed.polygon) == 4
    assert parsed.after_image == "snapshots/x/a.jpg"


def test_given_a_transient_order_without_recurrence_then_it_expires_only_when_due_and_unacknowledged() -> (
    None
):
    camera = river_camera("CAM-01", "G03", (DetectionType.RIVER_LOITERING,), quiet_window_s=600)
    setting = camera.setting_for(DetectionType.RIVER_LOITERING)
    assert setting is not None
    loiter = CameraDetection("CAM-01", DetectionType.RIVER_LOITERING, NOW, 0.9)
    order = plan_merge(Aggregate(camera, setting, [loiter]), MergeState(), NOW).new_orders[0]
    window = DETECTION_POLICIES[DetectionType.RIVER_LOITERING].transient_close_after_s
    assert window is not None

    assert plan_expiry(order, NOW + window * SEC - 1) is None
    plan = plan_expiry(order, NOW + window * SEC)
    assert plan is not None and plan.to_status is OrderStatus.CLOSED and plan.entries[0].action == "expire"
    assert was_expired(plan.apply(order))
    acknowledged = order.model_copy(update={"status": OrderStatus.ACKNOWLEDGED})
    assert plan_expiry(acknowledged, NOW + 10 * window * SEC) is None


def test_given_the_detection_types_then_each_has_its_own_sla_target() -> None:
    for type_, policy in DETECTION_POLICIES.items():
        target = target_for(type_.value)
        assert (target.acknowledge_s, target.resolve_s) == (policy.acknowledge_s, policy.resolve_s)


def test_given_orders_and_false_positives_then_precision_per_camera_and_type() -> None:
    order = plan_merge(aggregate(det(NOW)), MergeState(), NOW).new_orders[0]
    items = [
        {**detection_counters(order, created=True, cancelled_reason=None, expired=False)},
        {**detection_counters(order, created=True, cancelled_reason=None, expired=False)},
        detection_counters(order, created=False, cancelled_reason="false_positive", expired=False),
        {"G03|det_orders|CAM-01:illegal_dumping": 2},
    ]
    (row,) = summarize_precision(items, None)
    assert (row.camera_id, row.type, row.orders, row.false_positives, row.precision) == (
        "CAM-01",
        "illegal_dumping",
        4,
        1,
        0.75,
    )
    assert summarize_precision(items, {"G01"}) == []


KEYS = {"hikvision": "k" * 64}


def signed_headers(body: str, at_s: int, key: str = "k" * 64) -> dict[str, str]:
    timestamp = str(at_s)
    return {
        "X-SmartZone-Vendor": "hikvision",
        "X-SmartZone-Timestamp": timestamp,
        "X-SmartZone-Signature": sign(key, timestamp, body),
    }


def test_given_a_valid_signature_then_the_vendor_is_authenticated() -> None:
    body = '{"detections": []}'
    signed = verify(signed_headers(body, NOW // 1000), body, KEYS, now_ms=NOW)
    assert signed.vendor_id == "hikvision" and len(signed.signature) == 64


@pytest.mark.parametrize(
    ("mutate", "failure"),
    [
        (lambda h: {k: v for k, v in h.items() if k != "X-SmartZone-Signature"}, AuthFailure.MISSING_HEADER),
        (lambda h: {**h, "X-SmartZone-Vendor": "acme"}, AuthFailure.UNKNOWN_VENDOR),
        (lambda h: {**h, "X-SmartZone-Signature": "sha256=" + "0" * 64}, AuthFailure.BAD_SIGNATURE),
        (lambda h: {**h, "X-SmartZone-Timestamp": "soon"}, AuthFailure.BAD_TIMESTAMP),
    ],
)
def test_given_a_bad_request_then_it_is_unauthenticated(mutate: object, failure: AuthFailure) -> None:
    body = '{"detections": []}'
    headers = mutate(signed_headers(body, NOW // 1000))  # type: ignore[operator]
    with pytest.raises(Unauthenticated) as refused:
        verify(headers, body, KEYS, now_ms=NOW)
    assert refused.value.failure is failure


def test_given_a_stale_timestamp_or_a_changed_body_then_unauthenticated() -> None:
    body = '{"detections": []}'
    with pytest.raises(Unauthenticated) as stale:
        verify(signed_headers(body, NOW // 1000 - 301), body, KEYS, now_ms=NOW)
    assert stale.value.failure is AuthFailure.STALE_TIMESTAMP
    with pytest.raises(Unauthenticated) as tampered:
        verify(signed_headers(body, NOW // 1000), body + " ", KEYS, now_ms=NOW)
    assert tampered.value.failure is AuthFailure.BAD_SIGNATURE


def test_given_a_taken_order_id_when_planning_again_then_the_new_order_gets_a_suffixed_id() -> None:
    """Given the id derived from camera, type and first detection time is taken (an older order,
    since cancelled or expired), when the pipeline plans again with it as taken, then the new order
    is named ``<id>-2`` (``-3`` if that is taken too) and the state follows it."""
    first = plan_merge(aggregate(det(NOW)), MergeState(), NOW).new_orders[0].order_id

    again = plan_merge(aggregate(det(NOW, track="b")), MergeState(), NOW, taken_ids={first})
    third = plan_merge(aggregate(det(NOW, track="b")), MergeState(), NOW, taken_ids={first, f"{first}-2"})

    assert [o.order_id for o in again.new_orders] == [f"{first}-2"] and again.state.order_id == f"{first}-2"
    assert [o.order_id for o in third.new_orders] == [f"{first}-3"]
