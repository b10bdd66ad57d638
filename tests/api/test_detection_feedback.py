"""Detection orders over the API: false-positive feedback → precision per camera and type in
`GET /v1/stats`; the order detail gives short-lived presigned links to its snapshots; the sweeper
closes an unacknowledged transient order without recurrence."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import pytest

from functions.outbox.sinks import StatsSink
from functions.sweeper.transient import TransientSweep
from infra.local.resources import LocalResources
from smartzone.domain.detection_merge import Aggregate, MergeState, plan_merge
from smartzone.domain.detection_messages import CameraDetection
from smartzone.domain.detections import DETECTION_POLICIES, DetectionType
from smartzone.domain.identity import Caller
from smartzone.domain.notifications import ChangeKind, OrderChange, derive_event
from smartzone.domain.workorders import OrderStatus, WorkOrder
from smartzone.repositories.clients import client
from smartzone.repositories.detections import DetectionStore
from smartzone.repositories.workorders import WorkOrderRepository
from smartzone.settings import get_settings
from tests.support.api import ApiClient
from tests.support.detections import river_camera

DISPATCHER = Caller.of("sub-disp", "disp-01", ["dispatcher"])
SEC = 1000


def camera_order(camera_id: str, type_: DetectionType, ts: int, snapshots: int = 0) -> WorkOrder:
    camera = river_camera(camera_id, "G03", (type_,))
    setting = camera.setting_for(type_)
    assert setting is not None
    detections = [
        CameraDetection(
            camera_id, type_, ts + i, 0.95, "", f"snapshots/{camera_id}/{i}.jpg" if snapshots else ""
        )
        for i in range(max(snapshots, 1))
    ]
    return plan_merge(Aggregate(camera, setting, detections), MergeState(), ts).new_orders[0]


def feed(*versions: tuple[WorkOrder | None, WorkOrder]) -> None:
    sink = StatsSink.from_settings(get_settings())
    for old, new in versions:
        event = derive_event(OrderChange(ChangeKind.MODIFY if old else ChangeKind.INSERT, old, new))
        assert event is not None
        sink.deliver(event)


def test_given_a_false_positive_cancellation_then_stats_show_precision_per_camera_and_type(
    api_env: LocalResources, store_order: Any
) -> None:
    now = int(time.time() * 1000) - 60 * SEC
    wrong = store_order(camera_order("CAM-01", DetectionType.ILLEGAL_DUMPING, now))
    right = store_order(camera_order("CAM-01", DetectionType.ILLEGAL_DUMPING, now + 2 * 3600 * SEC))
    other = store_order(camera_order("CAM-02", DetectionType.STRAW_BURNING, now))
    feed((None, wrong), (None, right), (None, other))

    dispatcher = ApiClient(DISPATCHER)
    response = dispatcher.post(
        f"/v1/workorders/{wrong.order_id}/transitions", {"action": "cancel", "reason": "false_positive"}
    )
    assert response.status == 200
    cancelled = WorkOrderRepository(api_env.table_name).get(wrong.order_id)
    assert cancelled is not None and cancelled.status is OrderStatus.CANCELLED
    feed((wrong, cancelled))

    stats = dispatcher.get("/v1/stats")
    assert stats.status == 200
    rows = {(r["camera_id"], r["type"]): r for r in stats.body["detections"]}
    assert rows[("CAM-01", "illegal_dumping")]["orders"] == 2
    assert rows[("CAM-01", "illegal_dumping")]["false_positives"] == 1
    assert rows[("CAM-01", "illegal_dumping")]["precision"] == 0.5
    assert rows[("CAM-02", "straw_burning")]["precision"] == 1.0
    assert stats.body["orders"]["cancelled_by_reason"] == {"false_positive": 1}


def test_given_an_order_with_snapshots_then_its_detail_has_short_lived_presigned_links(
    api_env: LocalResources, store_order: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    client("s3").create_bucket(
        Bucket="snapshots", CreateBucketConfiguration={"LocationConstraint": "cn-north-1"}
    )
    monkeypatch.setenv("SNAPSHOTS_BUCKET", "snapshots")
    get_settings.cache_clear()
    order = store_order(
        camera_order("CAM-01", DetectionType.ILLEGAL_DUMPING, int(time.time() * 1000), snapshots=3)
    )

    detail = ApiClient(DISPATCHER).get(f"/v1/workorders/{order.order_id}")
    assert detail.status == 200
    media = detail.body["media"]
    assert [m["key"] for m in media] == [f"snapshots/CAM-01/{i}.jpg" for i in range(3)]
    assert all(m["kind"] == "snapshot" and "X-Amz-Expires=900" in m["url"] for m in media)


def test_given_an_unacknowledged_transient_order_without_recurrence_then_the_sweeper_expires_it(
    api_env: LocalResources,
) -> None:
    """Given loitering seen once and nobody acknowledging, when the sweeper runs after the window,
    then the order is closed with reason ``expire``; an acknowledged one is left alone."""
    from functions.detections.pipeline import DetectionPipeline, Message
    from smartzone.repositories.cameras import CameraRepository
    from smartzone.repositories.grid_areas import GridAreaRepository
    from smartzone.repositories.rejects import RejectSink
    from tests.support.detections import detection_message

    table = api_env.table_name
    cameras = CameraRepository(table)
    cameras.put(river_camera("CAM-05", "G03", (DetectionType.RIVER_LOITERING,)))
    cameras.put(river_camera("CAM-06", "G03", (DetectionType.RIVER_LOITERING,)))
    seen = int(time.time() * 1000) - 60 * SEC
    settings = get_settings()
    store, orders = DetectionStore(table), WorkOrderRepository(table)
    pipeline = DetectionPipeline(
        settings, cameras, store, orders, GridAreaRepository(table), RejectSink(settings.rejects_queue_url)
    )
    outcome = pipeline.process(
        [
            Message("m1", detection_message("CAM-05", seen, "river_loitering", 0.9)),
            Message("m2", detection_message("CAM-06", seen, "river_loitering", 0.9)),
        ]
    )
    expiring, acknowledged = outcome.orders
    assert (
        ApiClient(DISPATCHER)
        .post(f"/v1/workorders/{acknowledged}/transitions", {"action": "acknowledge"})
        .status
        == 200
    )

    window = DETECTION_POLICIES[DetectionType.RIVER_LOITERING].transient_close_after_s
    assert window is not None
    sweep = TransientSweep(store, orders)
    counts: Counter[str] = Counter()
    expired: list[str] = []
    sweep.run(seen + window * SEC - 1, counts, expired)
    assert expired == []
    sweep.run(seen + window * SEC, counts, expired)
    sweep.run(seen + window * SEC + 1, counts, expired)  # a second run finds nothing left to do

    assert expired == [expiring]
    closed = orders.get(expiring)
    assert closed is not None and closed.status is OrderStatus.CLOSED
    assert closed.timeline[-1].action == "expire" and "自动关闭" in (closed.timeline[-1].note or "")
    still = orders.get(acknowledged)
    assert still is not None and still.status is OrderStatus.ACKNOWLEDGED


def test_given_a_stale_index_entry_whose_order_a_detection_joined_then_the_sweeper_keeps_it_due_later(
    api_env: LocalResources,
) -> None:
    """Given the (eventually consistent) index still lists a transient state under its old due time
    while a detection joined the order meanwhile (the fresh state is due later), when the sweeper
    runs at the old due time, then it neither expires the order nor takes the state off the index,
    so the order still expires at its new due time."""
    from functions.detections.pipeline import DetectionPipeline, Message
    from smartzone.repositories.cameras import CameraRepository
    from smartzone.repositories.detections import TransientDue
    from smartzone.repositories.grid_areas import GridAreaRepository
    from smartzone.repositories.rejects import RejectSink
    from tests.support.detections import detection_message

    table = api_env.table_name
    cameras = CameraRepository(table)
    cameras.put(river_camera("CAM-07", "G03", (DetectionType.RIVER_LOITERING,)))
    seen = int(time.time() * 1000) - 60 * SEC
    settings = get_settings()
    store, orders = DetectionStore(table), WorkOrderRepository(table)
    pipeline = DetectionPipeline(
        settings, cameras, store, orders, GridAreaRepository(table), RejectSink(settings.rejects_queue_url)
    )
    (order_id,) = pipeline.process(
        [Message("m1", detection_message("CAM-07", seen, "river_loitering"))]
    ).orders
    pipeline.process([Message("m2", detection_message("CAM-07", seen + 30 * SEC, "river_loitering"))])
    window = DETECTION_POLICIES[DetectionType.RIVER_LOITERING].transient_close_after_s
    assert window is not None
    old_due, new_due = seen + window * SEC, seen + 30 * SEC + window * SEC

    class StaleIndex(DetectionStore):
        """The index answers the state under its old due time; the state itself is read fresh."""

        def transient_due(self, now_ms: int, limit: int = 100) -> list[TransientDue]:
            return [TransientDue("CAM-07", "river_loitering", self.load_state("CAM-07", "river_loitering"))]

    counts: Counter[str] = Counter()
    expired: list[str] = []
    TransientSweep(StaleIndex(table), orders).run(old_due, counts, expired)
    assert expired == [] and counts["errors"] == 0
    assert store.load_state("CAM-07", "river_loitering").transient_due == new_due

    TransientSweep(store, orders).run(new_due, counts, expired)
    assert expired == [order_id]


def test_given_detections_below_threshold_and_dispatched_then_stats_rows_report_both(
    api_env: LocalResources,
) -> None:
    """Given a camera whose detections were partly below its threshold (counted, never dispatched),
    when the dispatcher reads GET /v1/stats, then its row reports ``below_threshold`` and
    ``dispatched`` next to its orders."""
    from functions.detections.pipeline import DetectionPipeline, Message
    from smartzone.repositories.cameras import CameraRepository
    from smartzone.repositories.grid_areas import GridAreaRepository
    from smartzone.repositories.rejects import RejectSink
    from tests.support.detections import detection_message

    table = api_env.table_name
    cameras = CameraRepository(table)
    cameras.put(river_camera("CAM-08", "G03", (DetectionType.ILLEGAL_DUMPING,)))
    seen = int(time.time() * 1000) - 60 * SEC
    settings = get_settings()
    pipeline = DetectionPipeline(
        settings,
        cameras,
        DetectionStore(table),
        WorkOrderRepository(table),
        GridAreaRepository(table),
        RejectSink(settings.rejects_queue_url),
    )
    low = [Message(f"l{i}", detection_message("CAM-08", seen + i * SEC, confidence=0.3)) for i in range(3)]
    high = [Message(f"h{i}", detection_message("CAM-08", seen + i * SEC, confidence=0.9)) for i in range(2)]
    outcome = pipeline.process([*low, *high])
    assert not outcome.failed
    (order_id,) = outcome.orders
    order = WorkOrderRepository(table).get(order_id)
    assert order is not None
    feed((None, order))  # the outbox's statistics sink counts the order

    stats = ApiClient(DISPATCHER).get("/v1/stats")
    assert stats.status == 200
    rows = {(r["camera_id"], r["type"]): r for r in stats.body["detections"]}
    assert rows[("CAM-08", "illegal_dumping")] == {
        "camera_id": "CAM-08",
        "type": "illegal_dumping",
        "orders": 1,
        "false_positives": 0,
        "expired": 0,
        "precision": 1.0,
        "below_threshold": 3,
        "dispatched": 2,
    }


def test_given_more_false_positives_than_orders_in_a_period_then_precision_is_clamped_to_zero() -> None:
    """Given a period that counts a cancellation (cancellation day) but not its order (created the
    day before the period), when precision is summarized, then it is 0, never negative."""
    from smartzone.domain.detection_stats import summarize_precision

    (row,) = summarize_precision(
        [{"G03|det_orders|CAM-01:illegal_dumping": 1, "G03|det_false_positive|CAM-01:illegal_dumping": 2}],
        None,
    )
    assert row.precision == 0.0 and row.orders == 1 and row.false_positives == 2
