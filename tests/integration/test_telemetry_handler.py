"""The real telemetry handler against emulated AWS: batches, rejects, retries, conditional writes."""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions.telemetry import handler as telemetry
from infra.local.resources import LocalResources
from smartzone.domain.workorders import OrderStatus
from smartzone.repositories import keys
from smartzone.repositories.clients import client
from smartzone.repositories.codec import from_item, to_item
from smartzone.repositories.devices import DeviceRepository
from tests.support.telemetry import FakeContext, demo_device, rule_message, sqs_event
from tools.aws_calls import CallCounter

MIN = 60_000


@pytest.fixture
def env(resources: LocalResources) -> LocalResources:
    telemetry.pipeline.cache_clear()
    repo = DeviceRepository(resources.table_name)
    repo.put_device(demo_device("MH-0178", "G03"))
    repo.put_device(demo_device("MH-0042", "G01"))
    yield resources
    telemetry.pipeline.cache_clear()


def t0() -> int:
    return int(time.time() * 1000) - 3 * 3600_000


def invoke(bodies: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    event = sqs_event(bodies)
    return event, telemetry.handler(event, FakeContext())


def orders(table: str) -> list[dict[str, Any]]:
    items = client("dynamodb").query(
        TableName=table,
        IndexName=keys.GSI2,
        KeyConditionExpression="gsi2pk = :p",
        ExpressionAttributeValues=to_item({":p": "ORDERSTATUS#dispatched"}),
    )["Items"]
    closed = client("dynamodb").query(
        TableName=table,
        IndexName=keys.GSI2,
        KeyConditionExpression="gsi2pk = :p",
        ExpressionAttributeValues=to_item({":p": "ORDERSTATUS#closed"}),
    )["Items"]
    return [from_item(i) for i in items + closed]


def rejects(queue_url: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        msgs = client("sqs").receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not msgs:
            return out
        out.extend(json.loads(m["Body"]) for m in msgs)


def test_given_good_and_malformed_records_when_handled_then_good_applied_bad_rejected_none_retried(
    env: LocalResources,
) -> None:
    start = t0()
    bodies = [
        rule_message("MH-0178", start, 2.0),
        rule_message("MH-0178", start + MIN, 25.3),
        "{not json",
        json.dumps({"device_id": "MH-0178", "ts": start, "tilt_deg": 999}),
        json.dumps({"device_id": "MH-0178", "ts": start + 4 * 3600_000, "tilt_deg": 1}),
        rule_message("MH-0999", start, 1.0),
        rule_message("MH-0042", start, 1.0),
    ]
    _, response = invoke(bodies)
    assert response == {"batchItemFailures": []}
    reasons = sorted(r["reason"] for r in rejects(env.rejects_queue_url))
    assert reasons == ["future_timestamp", "malformed_json", "tilt_out_of_range", "unknown_device"]
    [order] = orders(env.table_name)
    assert order["device_id"] == "MH-0178" and order["grid_id"] == "G03"
    assert order["status"] == "dispatched" and order["timeline"][0]["to"] == "dispatched"
    assert "倾斜 25.3°" in order["description"]


def test_given_the_sample_batch_when_handled_then_processed(
    env: LocalResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAX_READING_AGE_S", str(10 * 365 * 86400))
    telemetry.get_settings.cache_clear()
    telemetry.pipeline.cache_clear()
    with open("events/sqs_telemetry_batch.json", encoding="utf-8") as fh:
        event = json.load(fh)
    monkeypatch.setattr(telemetry.pipeline().__class__, "__init__", telemetry.pipeline().__class__.__init__)
    pipeline = telemetry.pipeline()
    pipeline.clock = lambda: 1_795_932_400_000
    assert telemetry.handler(event, FakeContext()) == {"batchItemFailures": []}
    assert len(orders(env.table_name)) == 1
    assert sorted(r["reason"] for r in rejects(env.rejects_queue_url)) == ["invalid_value", "missing_field"]


def test_given_a_transient_dynamodb_error_on_one_device_when_handled_then_only_its_records_fail(
    env: LocalResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = t0()
    ddb = client("dynamodb")
    real = ddb.transact_write_items

    def flaky(**kwargs: Any) -> Any:
        if "MH-0178" in json.dumps(kwargs["TransactItems"][0]):
            raise ClientError(
                {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow"}},
                "TransactWriteItems",
            )
        return real(**kwargs)

    monkeypatch.setattr(ddb, "transact_write_items", flaky)
    event, response = invoke(
        [
            rule_message("MH-0178", start, 30.0),
            rule_message("MH-0042", start, 30.0),
            rule_message("MH-0178", start + 1, 31.0),
        ]
    )
    failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
    ids = [r["messageId"] for r in event["Records"]]
    assert failed == {ids[0], ids[2]}
    assert [o["device_id"] for o in orders(env.table_name)] == ["MH-0042"]

    monkeypatch.setattr(ddb, "transact_write_items", real)
    _, retry = invoke([rule_message("MH-0178", start, 30.0), rule_message("MH-0178", start + 1, 31.0)])
    assert retry == {"batchItemFailures": []}
    assert sorted(o["device_id"] for o in orders(env.table_name)) == ["MH-0042", "MH-0178"]


def test_given_a_conflict_whose_reload_fails_when_handled_then_only_that_devices_records_fail(
    env: LocalResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another handler wrote MH-0178 meanwhile, and re-reading it is throttled: MH-0178's messages
    are retried, MH-0042's are applied and the malformed one is rejected — the batch survives."""
    start = t0()
    pipeline = telemetry.pipeline()
    stale = pipeline.devices.batch_get(["MH-0178", "MH-0042"])
    invoke([rule_message("MH-0178", start - MIN, 2.0)])  # the other handler's write

    class RacingRepo(DeviceRepository):
        def batch_get(self, device_ids: list[str]) -> Any:
            return stale

        def get(self, device_id: str, *, consistent: bool = False) -> Any:
            raise ClientError(
                {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow"}}, "GetItem"
            )

    pipeline.devices = RacingRepo(env.table_name)
    event, response = invoke(
        [rule_message("MH-0178", start, 30.0), rule_message("MH-0042", start, 30.0), "not json"]
    )
    ids = [r["messageId"] for r in event["Records"]]
    assert {f["itemIdentifier"] for f in response["batchItemFailures"]} == {ids[0]}
    assert [o["device_id"] for o in orders(env.table_name)] == ["MH-0042"]
    assert [r["reason"] for r in rejects(env.rejects_queue_url)] == ["malformed_json"]


def test_given_a_stale_concurrent_handler_when_it_writes_then_no_second_order(env: LocalResources) -> None:
    """Two handlers read the same device state; one writes first. The other reloads and finds nothing new."""
    start = t0()
    pipeline = telemetry.pipeline()
    repo = pipeline.devices
    snapshot = repo.batch_get(["MH-0178"])

    invoke([rule_message("MH-0178", start, 30.0)])  # handler A wins the race

    class StaleRepo(DeviceRepository):
        def batch_get(self, device_ids: list[str]) -> Any:
            return snapshot

    pipeline.devices = StaleRepo(env.table_name)
    _, response = invoke([rule_message("MH-0178", start, 30.0)])  # handler B, same reading, stale state
    assert response == {"batchItemFailures": []}
    assert len(orders(env.table_name)) == 1


def test_given_a_flapping_cover_when_it_re_raises_with_the_order_open_then_one_order(
    env: LocalResources,
) -> None:
    start = t0()
    invoke([rule_message("MH-0178", start, 25.0)])
    invoke([rule_message("MH-0178", start + i * MIN, 3.0) for i in range(1, 8)])
    invoke([rule_message("MH-0178", start + 9 * MIN, 28.0)])
    [order] = orders(env.table_name)
    assert order["reraise_count"] == 1 and len(order["alarm_ids"]) == 2
    assert order["sensor_normal"] is False
    assert [e["action"] for e in order["timeline"]] == ["raise", "alarm_cleared", "alarm_reraised"]


def set_status(table: str, order_id: str, status: OrderStatus) -> None:
    client("dynamodb").update_item(
        TableName=table,
        Key=to_item(keys.order_key(order_id)),
        UpdateExpression="SET #s = :s, gsi2pk = :g",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues=to_item({":s": status.value, ":g": f"ORDERSTATUS#{status.value}"}),
    )


def test_given_a_resolved_order_when_the_sensor_clears_then_the_order_closes(env: LocalResources) -> None:
    start = t0()
    invoke([rule_message("MH-0178", start, 25.0)])
    [order] = orders(env.table_name)
    set_status(env.table_name, order["order_id"], OrderStatus.RESOLVED)
    invoke([rule_message("MH-0178", start + i * MIN, 3.0) for i in range(1, 8)])
    item = from_item(
        client("dynamodb").get_item(TableName=env.table_name, Key=to_item(keys.order_key(order["order_id"])))[
            "Item"
        ]
    )
    assert item["status"] == "closed" and item["sensor_normal"] is True and item["closed_at"]
    state = DeviceRepository(env.table_name).get("MH-0178")
    assert state is not None and state.state.alarms["tilt"].order_id is None
    invoke([rule_message("MH-0178", start + 20 * MIN, 40.0)])
    assert len(orders(env.table_name)) == 2, "a new alarm after closure opens a new order"


def test_given_normal_readings_for_many_devices_when_handled_then_one_read_per_100_and_heartbeat_writes_only(
    env: LocalResources,
) -> None:
    repo = DeviceRepository(env.table_name)
    for i in range(250):
        repo.put_device(demo_device(f"MH-{i + 1000:04d}", "G02"))
    start = t0()
    bodies = [rule_message(f"MH-{i + 1000:04d}", start, 2.0) for i in range(250)]
    with CallCounter("dynamodb") as calls:
        invoke(bodies)
    assert calls.counts["BatchGetItem"] == 3
    assert calls.writes == 250, "first sight of each device writes its heartbeat"
    calls.reset()
    later = [rule_message(f"MH-{i + 1000:04d}", start + 5 * MIN, 2.5) for i in range(250)]
    with CallCounter("dynamodb") as calls:
        invoke(later)
    assert calls.counts["BatchGetItem"] == 3
    assert calls.writes == 0, "no change and no heartbeat due within 15 minutes"


def test_given_an_alarm_raise_when_written_then_one_transaction_of_three_items(env: LocalResources) -> None:
    start = t0()
    invoke([rule_message("MH-0178", start, 2.0)])
    with CallCounter("dynamodb") as calls:
        invoke([rule_message("MH-0178", start + MIN, 25.0)])
    assert calls.writes == 1 and calls.items["TransactWriteItems"] == 3


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_property_duplicated_and_reordered_deliveries_make_exactly_one_order(
    env: LocalResources, data: st.DataObject
) -> None:
    """Given readings delivered in batches of consecutive device time, each batch duplicated and
    shuffled, then everything redelivered late, Then exactly one order iff some tilt exceeded 20°."""
    client("dynamodb").delete_item(TableName=env.table_name, Key=to_item(keys.device_key("MH-0178")))
    DeviceRepository(env.table_name).put_device(demo_device("MH-0178", "G03"))
    for o in orders(env.table_name):
        client("dynamodb").delete_item(TableName=env.table_name, Key=to_item(keys.order_key(o["order_id"])))
    start = t0()
    tilts = data.draw(st.lists(st.sampled_from([2.0, 15.0, 25.0]), min_size=1, max_size=6))
    readings = [rule_message("MH-0178", start + i * 1000, t) for i, t in enumerate(tilts)]
    cuts = sorted(set(data.draw(st.lists(st.integers(1, len(readings)), max_size=2))))
    bounds = [0, *cuts, len(readings)]
    for lo, hi in itertools.pairwise(bounds):
        segment = readings[lo:hi]
        if not segment:
            continue
        extra = data.draw(st.lists(st.sampled_from(segment), max_size=2 * len(segment)))
        batch = data.draw(st.permutations(segment + extra))
        assert invoke(batch)[1] == {"batchItemFailures": []}
    invoke(data.draw(st.permutations(readings)))  # everything once more, late
    expected = 1 if any(t > 20 for t in tilts) else 0
    assert len(orders(env.table_name)) == expected
