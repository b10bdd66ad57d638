"""The real detections handler against emulated AWS: bursts merge, duplicates and concurrency make one
order, thresholds count, malformed detections are rejected with reasons, drones route by location."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from functions.detections import handler as detections
from infra.local.resources import LocalResources
from smartzone.domain.detections import DetectionType
from smartzone.domain.routing import GridArea
from smartzone.domain.statistics import stats_day
from smartzone.domain.timeutil import to_iso
from smartzone.domain.workorders import OrderStatus, WorkOrder
from smartzone.repositories import grid_areas
from smartzone.repositories.cameras import CameraRepository
from smartzone.repositories.clients import client
from smartzone.repositories.detections import DetectionStore, WriteOutcome
from smartzone.repositories.devices import DeviceRepository
from smartzone.repositories.workorders import WorkOrderRepository
from tests.support.detections import detection_message, drone_message, river_camera
from tests.support.telemetry import FakeContext, sqs_event
from tools.aws_calls import CallCounter

SEC = 1000


@pytest.fixture
def env(resources: LocalResources) -> Iterator[LocalResources]:
    detections.pipeline.cache_clear()
    grid_areas.clear_cache()
    cameras = CameraRepository(resources.table_name)
    cameras.put(river_camera("CAM-01", "G03"))
    cameras.put(
        river_camera(
            "CAM-02", "G05", (DetectionType.RIVER_LOITERING,), quiet_window_s=600, min_confidence=0.6
        )
    )
    yield resources
    detections.pipeline.cache_clear()
    grid_areas.clear_cache()


def t0() -> int:
    return int(time.time() * 1000) - 2 * 3600 * SEC


def invoke(bodies: list[str]) -> dict[str, Any]:
    result: dict[str, Any] = detections.handler(sqs_event(bodies), FakeContext())
    return result


def camera_orders(table: str, camera_id: str) -> list[WorkOrder]:
    repo = WorkOrderRepository(table)
    found = []
    for status in OrderStatus:
        items = client("dynamodb").query(
            TableName=table,
            IndexName="gsi2",
            KeyConditionExpression="gsi2pk = :p",
            ExpressionAttributeValues={":p": {"S": f"ORDERSTATUS#{status.value}"}},
        )["Items"]
        for item in items:
            order = repo.get(item["order_id"]["S"])
            if order and order.detection and order.detection.camera_id == camera_id:
                found.append(order)
    return found


def drain(queue_url: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while (
        msgs := client("sqs").receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
    ):
        out.extend(json.loads(m["Body"]) for m in msgs)
        for m in msgs:
            client("sqs").delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
    return out


def test_given_a_burst_of_1000_detections_within_the_quiet_window_then_one_order_counts_1000(
    env: LocalResources,
) -> None:
    start = t0()
    bodies = [
        detection_message(
            "CAM-01",
            start + i * 500,
            confidence=0.75 + (i % 20) / 100,
            snapshot=f"snapshots/hikvision/CAM-01/{i}.jpg",
        )
        for i in range(1000)
    ]
    for batch in range(0, 1000, 100):
        assert invoke(bodies[batch : batch + 100]) == {"batchItemFailures": []}

    orders = camera_orders(env.table_name, "CAM-01")
    assert len(orders) == 1
    summary = orders[0].detection
    assert summary is not None
    assert summary.count == 1000
    assert summary.first_seen == to_iso(start)
    assert summary.last_seen == to_iso(start + 999 * 500)
    assert summary.max_confidence == pytest.approx(0.94)
    assert summary.snapshots[0] == "snapshots/hikvision/CAM-01/0.jpg" and len(summary.snapshots) == 5
    assert summary.snapshots[-1] == "snapshots/hikvision/CAM-01/999.jpg"
    assert orders[0].grid_id == "G03" and orders[0].routing is not None
    assert orders[0].routing.method == "registry"
    assert orders[0].severity == "medium" and orders[0].category == "illegal_dumping"


def test_given_the_same_batch_delivered_twice_then_one_order_and_the_count_is_not_doubled(
    env: LocalResources,
) -> None:
    start = t0()
    bodies = [detection_message("CAM-01", start + i * SEC, track_id=f"t{i % 3}") for i in range(30)]
    invoke(bodies)
    invoke(bodies)  # SQS redelivery / IoT QoS 1 duplicate
    invoke(bodies[:10] + bodies[:10])  # duplicates inside one batch

    orders = camera_orders(env.table_name, "CAM-01")
    assert len(orders) == 1
    assert orders[0].detection is not None and orders[0].detection.count == 30
    assert orders[0].detection.track_ids == ["t0", "t1", "t2"]


@pytest.fixture
def atomic_transactions(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto's TransactWriteItems is not atomic against a concurrent one: it deep-copies the table
    and restores the copy when a condition fails, wiping a transaction committed meanwhile. DynamoDB
    applies each transaction atomically, so serialize them (the handlers still interleave between
    their reads and their writes, and their conditions still conflict)."""
    dynamodb = client("dynamodb")
    transact = dynamodb.transact_write_items
    lock = threading.Lock()

    def atomic(**kwargs: Any) -> Any:
        with lock:
            return transact(**kwargs)

    monkeypatch.setattr(dynamodb, "transact_write_items", atomic)


def test_given_two_concurrent_handlers_on_one_camera_then_exactly_one_order_with_every_detection(
    env: LocalResources, atomic_transactions: None
) -> None:
    start = t0()
    first = [detection_message("CAM-01", start + i * SEC) for i in range(0, 80, 2)]
    second = [detection_message("CAM-01", start + i * SEC) for i in range(1, 80, 2)]
    barrier = threading.Barrier(2)
    results: list[dict[str, Any]] = []

    def run(bodies: list[str]) -> None:
        barrier.wait()
        results.append(invoke(bodies))

    threads = [threading.Thread(target=run, args=(b,)) for b in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert results == [{"batchItemFailures": []}] * 2
    orders = camera_orders(env.table_name, "CAM-01")
    assert len(orders) == 1
    assert orders[0].detection is not None and orders[0].detection.count == 80


def test_given_another_handler_commits_between_read_and_write_then_the_loser_replans_and_joins(
    env: LocalResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given handler A has read the merge state, when handler B opens the order before A writes,
    then A's write fails on the state's version, A re-reads, re-plans and joins B's order."""
    start = t0()
    first = [detection_message("CAM-01", start + i * SEC) for i in range(0, 80, 2)]
    second = [detection_message("CAM-01", start + i * SEC) for i in range(1, 80, 2)]
    real_write = DetectionStore.write
    outcomes: list[WriteOutcome] = []
    interleaved: list[dict[str, Any]] = []
    started: list[bool] = []

    def write(self: DetectionStore, *args: Any, **kwargs: Any) -> WriteOutcome:
        if not started:  # A is about to write: B runs to completion first
            started.append(True)
            interleaved.append(invoke(second))
        outcome = real_write(self, *args, **kwargs)
        outcomes.append(outcome)
        return outcome

    monkeypatch.setattr(DetectionStore, "write", write)
    assert invoke(first) == {"batchItemFailures": []}

    assert interleaved == [{"batchItemFailures": []}]
    assert outcomes == [WriteOutcome.WRITTEN, WriteOutcome.STATE_CONFLICT, WriteOutcome.WRITTEN]
    orders = camera_orders(env.table_name, "CAM-01")
    assert len(orders) == 1
    assert orders[0].detection is not None and orders[0].detection.count == 80
    assert orders[0].detection.first_seen == to_iso(start)


def test_given_a_batch_of_100_detections_of_one_camera_and_type_then_one_transaction_writes_it(
    env: LocalResources,
) -> None:
    start = t0()
    bodies = [detection_message("CAM-01", start + i * SEC) for i in range(100)]
    with CallCounter("dynamodb") as calls:
        assert invoke(bodies) == {"batchItemFailures": []}

    assert calls.counts["TransactWriteItems"] == 1
    (order,) = camera_orders(env.table_name, "CAM-01")
    assert order.detection is not None and order.detection.count == 100


def test_given_a_batch_opening_more_orders_than_a_transaction_holds_then_it_is_split_and_complete(
    env: LocalResources,
) -> None:
    """Given 100 detections each farther apart than the quiet window (100 new orders + state +
    counters = 102 items > DynamoDB's 100), then two transactions write all 100 orders."""
    CameraRepository(env.table_name).put(river_camera("CAM-03", "G04", quiet_window_s=1))
    start = t0()
    bodies = [detection_message("CAM-03", start + i * 5 * SEC) for i in range(100)]
    with CallCounter("dynamodb") as calls:
        assert invoke(bodies) == {"batchItemFailures": []}

    assert calls.counts["TransactWriteItems"] == 2
    orders = camera_orders(env.table_name, "CAM-03")
    assert len(orders) == 100 and all(o.detection and o.detection.count == 1 for o in orders)
    day = stats_day(to_iso(int(time.time() * 1000)))
    rows = DetectionStore(env.table_name).counters(day)
    assert [(r["sk"], r["dispatched"]) for r in rows if r["sk"].startswith("CAM-03")] == [
        ("CAM-03#illegal_dumping", 100)
    ]


def test_given_a_gap_longer_than_the_quiet_window_then_a_second_order_opens(env: LocalResources) -> None:
    start = t0()
    window = 600 * SEC  # CAM-02's loitering window
    invoke([detection_message("CAM-02", start, "river_loitering", 0.8)])
    invoke([detection_message("CAM-02", start + window - SEC, "river_loitering", 0.8)])  # joins
    invoke([detection_message("CAM-02", start + 2 * window, "river_loitering", 0.8)])  # gap > window

    orders = sorted(camera_orders(env.table_name, "CAM-02"), key=lambda o: o.created_at + o.order_id)
    assert [o.detection.count for o in orders if o.detection] == [2, 1] or sorted(
        o.detection.count for o in orders if o.detection
    ) == [1, 2]
    assert len(orders) == 2


def test_given_the_open_order_was_cancelled_then_the_next_detection_opens_a_new_order(
    env: LocalResources,
) -> None:
    start = t0()
    invoke([detection_message("CAM-01", start)])
    (order,) = camera_orders(env.table_name, "CAM-01")
    client("dynamodb").update_item(
        TableName=env.table_name,
        Key={"pk": {"S": f"ORDER#{order.order_id}"}, "sk": {"S": "ORDER"}},
        UpdateExpression="SET #s = :c",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":c": {"S": "cancelled"}},
    )
    invoke([detection_message("CAM-01", start + 5 * SEC)])

    orders = camera_orders(env.table_name, "CAM-01")
    assert len(orders) == 2
    assert {o.status for o in orders} == {OrderStatus.CANCELLED, OrderStatus.DISPATCHED}


def test_given_a_cancelled_order_whose_id_a_new_detection_would_reuse_then_a_suffixed_order_opens(
    env: LocalResources,
) -> None:
    """Given an order opened by a detection at t and cancelled, when another detection of the same
    camera and type at the same t (another track) arrives, then its order id (derived from camera,
    type and t) is taken: a new order ``<id>-2`` opens instead of retrying the message forever."""
    start = t0()
    invoke([detection_message("CAM-01", start, track_id="a")])
    (order,) = camera_orders(env.table_name, "CAM-01")
    client("dynamodb").update_item(
        TableName=env.table_name,
        Key={"pk": {"S": f"ORDER#{order.order_id}"}, "sk": {"S": "ORDER"}},
        UpdateExpression="SET #s = :c",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":c": {"S": "cancelled"}},
    )

    assert invoke([detection_message("CAM-01", start, track_id="b")]) == {"batchItemFailures": []}

    orders = {o.order_id: o for o in camera_orders(env.table_name, "CAM-01")}
    assert set(orders) == {order.order_id, f"{order.order_id}-2"}
    assert orders[f"{order.order_id}-2"].status is OrderStatus.DISPATCHED
    assert (
        DetectionStore(env.table_name).load_state("CAM-01", "illegal_dumping").order_id
        == f"{order.order_id}-2"
    )


def test_given_below_threshold_detections_then_they_are_counted_not_dispatched(env: LocalResources) -> None:
    start = t0()
    invoke([detection_message("CAM-01", start + i * SEC, confidence=0.5) for i in range(7)])

    assert camera_orders(env.table_name, "CAM-01") == []
    rows = DetectionStore(env.table_name).counters(stats_day(to_iso(int(time.time() * 1000))))
    assert [(r["sk"], r["below_threshold"], r["dispatched"]) for r in rows] == [
        ("CAM-01#illegal_dumping", 7, 0)
    ]


def test_given_an_mqtt_snapshot_outside_the_cameras_vendor_prefix_then_it_is_rejected(
    env: LocalResources,
) -> None:
    """Given CAM-01 operated by hikvision, when its detection references another vendor's upload,
    then it is rejected as ``invalid_snapshot``; one under ``snapshots/hikvision/`` opens an order."""
    start = t0()
    bodies = [
        detection_message("CAM-01", start, snapshot="snapshots/dahua/2026/11/29/x.jpg"),
        detection_message("CAM-01", start + SEC, snapshot="snapshots/hikvision/2026/11/29/y.jpg"),
    ]
    assert invoke(bodies) == {"batchItemFailures": []}

    assert [r["reason"] for r in drain(env.rejects_queue_url)] == ["invalid_snapshot"]
    (order,) = camera_orders(env.table_name, "CAM-01")
    assert order.detection is not None and order.detection.snapshots == [
        "snapshots/hikvision/2026/11/29/y.jpg"
    ]


def test_given_malformed_detections_then_each_is_rejected_with_its_reason_and_never_retried(
    env: LocalResources,
) -> None:
    now = int(time.time() * 1000)
    bodies = [
        "{not json",
        json.dumps({"camera_id": "CAM-01", "ts": now, "type": "ufo", "confidence": 0.9}),
        json.dumps({"camera_id": "CAM-01", "ts": now, "type": "illegal_dumping", "confidence": 1.5}),
        json.dumps({"camera_id": "CAM-99", "ts": now, "type": "illegal_dumping", "confidence": 0.9}),
        json.dumps({"camera_id": "CAM-01", "ts": now, "type": "straw_burning", "confidence": 0.9}),
        json.dumps(
            {"camera_id": "CAM-01", "ts": now + 3600 * SEC, "type": "illegal_dumping", "confidence": 0.9}
        ),
        json.dumps({"camera_id": "CAM-01", "ts": "yesterday", "type": "illegal_dumping", "confidence": 0.9}),
        json.dumps({"camera_id": "CAM-01", "type": "illegal_dumping", "confidence": 0.9}),
        json.dumps(
            {
                "camera_id": "CAM-01",
                "ts": now,
                "type": "illegal_dumping",
                "confidence": 0.9,
                "snapshot_url": "https://x/y.jpg",
            }
        ),
        detection_message("CAM-01", now - SEC),
    ]
    assert invoke(bodies) == {"batchItemFailures": []}

    reasons = sorted(r["reason"] for r in drain(env.rejects_queue_url))
    assert reasons == sorted(
        [
            "malformed_json",
            "unknown_type",
            "confidence_out_of_range",
            "unknown_camera",
            "type_not_enabled",
            "future_timestamp",
            "bad_timestamp",
            "missing_field",
            "invalid_snapshot",
        ]
    )
    assert len(camera_orders(env.table_name, "CAM-01")) == 1


def test_given_a_drone_change_then_one_order_routed_by_location_even_when_delivered_twice(
    env: LocalResources,
) -> None:
    devices = DeviceRepository(env.table_name)
    from smartzone.domain.registry import Grid

    devices.put_grid(Grid(grid_id="G07", name="七号网格", community="高新社区", workers=[]))
    area = GridArea.from_geojson(
        "G07",
        {
            "type": "Polygon",
            "coordinates": [[[120.0, 31.0], [120.1, 31.0], [120.1, 31.1], [120.0, 31.1], [120.0, 31.0]]],
        },
    )
    grid_areas.GridAreaRepository(env.table_name).put_boundary("G07", area)
    body = drone_message("F-20261129-01", t0(), 120.05, 31.05)
    invoke([body])
    invoke([body])

    items = client("dynamodb").query(
        TableName=env.table_name,
        IndexName="gsi1",
        KeyConditionExpression="gsi1pk = :p",
        ExpressionAttributeValues={":p": {"S": "GRIDORDERS#G07"}},
    )["Items"]
    assert len(items) == 1
    order = WorkOrderRepository(env.table_name).get(items[0]["order_id"]["S"])
    assert order is not None and order.source == "drone"
    assert order.routing is not None and order.routing.method == "contains"
    assert (
        order.detection is not None
        and order.detection.after_image == "snapshots/drone/F-20261129-01/after.jpg"
    )
