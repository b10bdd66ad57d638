"""The outbox's inbox and statistics sinks against emulated AWS: table stream → dispatcher → table.

Redelivery is simulated the way the stream does it: the same Lambda stream event handed to the
dispatcher again (whole batches, and single records after a failure).
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from functions.outbox.handler import handler
from infra.local.resources import LocalResources
from infra.local.streams import StreamReader
from smartzone.domain.identity import Role
from smartzone.domain.lifecycle import TransitionRequest, plan_transition
from smartzone.domain.registry import Grid, GridWorker
from smartzone.domain.stages import bucket_index
from smartzone.domain.timeutil import from_iso
from smartzone.domain.workorders import OrderStatus, WorkOrder
from smartzone.repositories.clients import client
from smartzone.repositories.codec import from_item, to_item
from smartzone.repositories.devices import DeviceRepository
from smartzone.repositories.inbox import InboxRepository
from smartzone.repositories.keys import event_marker_key, stats_key
from tests.support.orders import CLEARED_AT, RAISED_AT, cleared, cover, put_order, tilt_order, transitioned
from tests.support.telemetry import FakeContext
from tools.aws_calls import CallCounter

MIN = 60_000
G03_WORKERS = ("gw-g03-01", "gw-g03-02")
G05_WORKERS = ("gw-g05-01",)


class OutboxContext(FakeContext):
    function_name = "outbox"
    invoked_function_arn = "arn:aws-cn:lambda:cn-north-1:123456789012:function:outbox"


def dispatch(event: dict[str, Any]) -> dict[str, Any]:
    return handler(event, OutboxContext())


def _worker(worker_id: str, n: int) -> GridWorker:
    return GridWorker(worker_id=worker_id, name=f"网格员{n}", phone=f"1381234567{n}")


@pytest.fixture
def grids(resources: LocalResources) -> None:
    devices = DeviceRepository(resources.table_name)
    devices.put_grid(
        Grid(
            grid_id="G03",
            name="高新第三网格",
            community="高新社区",
            workers=[_worker(w, i) for i, w in enumerate(G03_WORKERS)],
        )
    )
    devices.put_grid(
        Grid(grid_id="G05", name="高新第五网格", community="滨江社区", workers=[_worker(G05_WORKERS[0], 5)])
    )


@pytest.fixture
def stream(resources: LocalResources, grids: None) -> StreamReader:
    return StreamReader(resources.table_name)


def inbox_of(table_name: str, username: str) -> list[dict[str, Any]]:
    return [e.model_dump() for e in InboxRepository(table_name).list(username, limit=100).items]


def item(table_name: str, key: dict[str, str]) -> dict[str, Any]:
    found = client("dynamodb").get_item(TableName=table_name, Key=to_item(key)).get("Item")
    return from_item(found) if found else {}


def counters(table_name: str, day: str) -> dict[str, int]:
    data = item(table_name, stats_key(day, "COUNTS"))
    return {k: v for k, v in data.items() if "|" in k}


def buckets(table_name: str, day: str, name: str) -> dict[str, int]:
    data = item(table_name, stats_key(day, f"HIST#{name}"))
    return {k: v for k, v in data.items() if "|" in k}


def story(order: WorkOrder | None = None) -> list[WorkOrder]:
    """The seed story's versions: raised 14:05 → acknowledged 14:10 → verifying 14:25 → handling
    14:30 → resolved 15:00 → sensor normal 15:09 (the order closes)."""
    order = order or tilt_order()
    versions = [order]
    for to, at in (
        (OrderStatus.ACKNOWLEDGED, RAISED_AT + 5 * MIN),
        (OrderStatus.VERIFYING, RAISED_AT + 20 * MIN),
        (OrderStatus.HANDLING, RAISED_AT + 25 * MIN),
        (OrderStatus.RESOLVED, RAISED_AT + 55 * MIN),
    ):
        versions.append(transitioned(versions[-1], to, at_ms=at))
    versions.append(cleared(versions[-1], at_ms=CLEARED_AT))
    return versions


def run_story(
    resources: LocalResources, stream: StreamReader, versions: list[WorkOrder]
) -> list[dict[str, Any]]:
    """Write each version and dispatch its record; the stream events, for redelivery."""
    events = []
    for version in versions:
        put_order(resources.table_name, version)
        event = stream.poll()
        assert dispatch(event) == {"batchItemFailures": []}
        events.append(event)
    return events


# ------------------------------------------------------------------------------------ inbox


def test_given_a_new_order_in_g03_when_dispatched_twice_then_each_g03_worker_has_it_once(
    resources: LocalResources, stream: StreamReader
) -> None:
    order = tilt_order(cover("MH-0178", "G03"))
    put_order(resources.table_name, order)
    event = stream.poll()

    dispatch(event)
    dispatch(event)

    for worker in G03_WORKERS:
        (entry,) = inbox_of(resources.table_name, worker)
        assert entry["event_id"] == f"{order.order_id}:v1"
        assert entry["event_type"] == "order_created"
        assert entry["order_id"] == order.order_id and entry["grid_id"] == "G03"
        assert entry["title"] == "【新工单】178号窨井盖倾斜告警(网格 G03)"
        assert "178号窨井盖" in entry["text"] and "25.3°" in entry["text"]
        assert entry["created_at"] == order.updated_at
        assert entry["read"] is False
    assert inbox_of(resources.table_name, G05_WORKERS[0]) == []


def test_given_an_inbox_entry_then_it_has_its_key_unread_index_keys_and_a_ttl(
    resources: LocalResources, stream: StreamReader
) -> None:
    order = tilt_order()
    put_order(resources.table_name, order)
    dispatch(stream.poll())

    stored = item(
        resources.table_name, {"pk": "INBOX#gw-g03-01", "sk": f"{order.updated_at}#{order.order_id}:v1"}
    )

    assert stored["gsi1pk"] == "UNREAD#gw-g03-01"
    assert stored["expires_at"] == from_iso(order.updated_at) // 1000 + 180 * 86_400


def test_given_a_read_entry_when_its_event_is_redelivered_then_it_stays_read(
    resources: LocalResources, stream: StreamReader
) -> None:
    order = tilt_order()
    put_order(resources.table_name, order)
    event = stream.poll()
    dispatch(event)
    repo = InboxRepository(resources.table_name)
    sort_key = f"{order.updated_at}#{order.order_id}:v1"
    assert repo.mark_read("gw-g03-01", sort_key, "2026-11-29T06:30:00.000Z") is not None

    dispatch(event)

    (entry,) = repo.list("gw-g03-01").items
    assert entry.read is True and entry.read_at == "2026-11-29T06:30:00.000Z"
    assert repo.list("gw-g03-01", unread_only=True).items == []


def test_given_an_order_assigned_to_a_technician_then_the_technician_gets_it_too(
    resources: LocalResources, stream: StreamReader
) -> None:
    order = tilt_order().model_copy(update={"assignee": "tech-07"})
    put_order(resources.table_name, order)

    dispatch(stream.poll())

    assert [e["order_id"] for e in inbox_of(resources.table_name, "tech-07")] == [order.order_id]
    assert len(inbox_of(resources.table_name, "gw-g03-01")) == 1


def test_given_an_overdue_order_escalated_then_the_dispatchers_get_it_in_their_inbox(
    resources: LocalResources, stream: StreamReader
) -> None:
    from smartzone.domain.lifecycle import sweeper_escalation
    from smartzone.domain.users import UserProfile
    from smartzone.repositories.users import UserRepository

    users = UserRepository(resources.table_name)
    users.put(UserProfile(username="dispatcher-01", name="曾婷静", roles=[Role.DISPATCHER]))
    users.put(UserProfile(username="admin-01", name="管理员", roles=[Role.ADMIN]))
    order = tilt_order()
    put_order(resources.table_name, order)
    dispatch(stream.poll())
    assert inbox_of(resources.table_name, "dispatcher-01") == [], "a new order goes to its grid only"

    escalated = sweeper_escalation(order, RAISED_AT + 15 * MIN, "超时未接单").apply(order)
    put_order(resources.table_name, escalated)
    dispatch(stream.poll())

    assert [e["event_type"] for e in inbox_of(resources.table_name, "dispatcher-01")] == ["order_escalated"]
    assert inbox_of(resources.table_name, "admin-01") == []
    assert len(inbox_of(resources.table_name, "gw-g03-01")) == 2


def test_given_an_order_of_an_unknown_grid_without_assignee_then_no_inbox_is_written(
    resources: LocalResources, stream: StreamReader
) -> None:
    put_order(resources.table_name, tilt_order(cover("MH-0901", "G09")))

    with CallCounter("dynamodb") as calls:
        assert dispatch(stream.poll()) == {"batchItemFailures": []}

    assert calls.counts["PutItem"] == 1, "only the notification's sent-marker: no inbox entry"


def test_given_the_whole_story_redelivered_then_each_worker_has_one_entry_per_version_newest_first(
    resources: LocalResources, stream: StreamReader
) -> None:
    versions = story()
    events = run_story(resources, stream, versions)

    for event in events:
        dispatch(event)

    entries = inbox_of(resources.table_name, "gw-g03-01")
    assert [e["event_id"] for e in entries] == [f"{versions[0].order_id}:v{v}" for v in range(6, 0, -1)]
    assert [e["event_type"] for e in entries][:2] == ["order_closed", "order_status_changed"]
    assert entries[-1]["event_type"] == "order_created"
    assert len(inbox_of(resources.table_name, "gw-g03-02")) == 6
    assert inbox_of(resources.table_name, G05_WORKERS[0]) == []


# ------------------------------------------------------------------------------------ stats


def test_given_the_story_when_dispatched_and_redelivered_then_counters_are_updated_exactly_once(
    resources: LocalResources, stream: StreamReader
) -> None:
    versions = story()
    events = run_story(resources, stream, versions)
    merged = {"Records": [r for event in events for r in event["Records"]]}

    assert dispatch(merged) == {"batchItemFailures": []}
    for event in events:
        dispatch(event)

    assert counters(resources.table_name, "2026-11-29") == {
        "G03|created|manhole_tilt": 1,
        "G03|status|dispatched": 1,
        "G03|status|acknowledged": 1,
        "G03|status|verifying": 1,
        "G03|status|handling": 1,
        "G03|status|resolved": 1,
        "G03|status|closed": 1,
        "G03|closed|manhole_tilt": 1,
    }
    order_id = versions[0].order_id
    for version in range(1, 7):
        assert (
            item(resources.table_name, event_marker_key(f"{order_id}:v{version}", "stats"))["expires_at"] > 0
        )


def test_given_the_story_closed_then_each_stage_and_alarm_to_clearance_is_in_its_histogram_once(
    resources: LocalResources, stream: StreamReader
) -> None:
    events = run_story(resources, stream, story())
    for event in events:
        dispatch(event)

    created = RAISED_AT + 800  # the order is written 0.8 s after the raising reading
    expected = {
        "dispatched_to_acknowledged": RAISED_AT + 5 * MIN - created,
        "acknowledged_to_verifying": 15 * MIN,
        "verifying_to_handling": 5 * MIN,
        "handling_to_resolved": 30 * MIN,
        "resolved_to_closed": CLEARED_AT - (RAISED_AT + 55 * MIN),
        "alarm_to_clearance": CLEARED_AT - created,
    }
    for name, ms in expected.items():
        assert buckets(resources.table_name, "2026-11-29", name) == {f"G03|{bucket_index(ms)}": 1}, name


def test_given_an_order_cancelled_as_a_false_positive_then_it_counts_by_reason_and_no_histogram(
    resources: LocalResources, stream: StreamReader
) -> None:
    order = tilt_order()
    plan = plan_transition(
        order,
        actor="disp-01",
        roles=[Role.DISPATCHER],
        request=TransitionRequest(action="cancel", reason="false_positive"),
        now_ms=RAISED_AT + 3 * MIN,
    )
    events = run_story(resources, stream, [order, plan.apply(order)])
    for event in events:
        dispatch(event)

    assert counters(resources.table_name, "2026-11-29") == {
        "G03|created|manhole_tilt": 1,
        "G03|status|dispatched": 1,
        "G03|status|cancelled": 1,
        "G03|cancelled|false_positive": 1,
    }
    assert buckets(resources.table_name, "2026-11-29", "alarm_to_clearance") == {}


def test_given_an_event_after_midnight_beijing_time_then_it_counts_on_the_beijing_day(
    resources: LocalResources, stream: StreamReader
) -> None:
    late = from_iso("2026-11-30T00:30:00+08:00")  # 2026-11-29T16:30Z
    run_story(resources, stream, [tilt_order(raised_at=late)])

    assert counters(resources.table_name, "2026-11-30") == {
        "G03|created|manhole_tilt": 1,
        "G03|status|dispatched": 1,
    }
    assert counters(resources.table_name, "2026-11-29") == {}


def test_given_a_new_order_then_stats_cost_one_transaction_of_two_items(
    resources: LocalResources, stream: StreamReader
) -> None:
    put_order(resources.table_name, tilt_order())
    event = stream.poll()

    with CallCounter("dynamodb") as calls:
        dispatch(event)

    assert calls.counts["TransactWriteItems"] == 1
    assert calls.items["TransactWriteItems"] == 2  # the marker and the day's counters
    assert calls.counts["Scan"] == 0


# ------------------------------------------------------------------------------------ failures


def test_given_the_stats_transaction_fails_then_the_record_is_retried_and_counted_once_with_one_inbox_entry(
    resources: LocalResources, stream: StreamReader, monkeypatch: pytest.MonkeyPatch
) -> None:
    order = tilt_order()
    put_order(resources.table_name, order)
    event = stream.poll()
    ddb = client("dynamodb")
    original = ddb.transact_write_items

    def throttled(**kwargs: Any) -> Any:
        raise ClientError(
            {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "injected"}},
            "TransactWriteItems",
        )

    monkeypatch.setattr(ddb, "transact_write_items", throttled)
    sequence = event["Records"][0]["dynamodb"]["SequenceNumber"]

    assert dispatch(event) == {"batchItemFailures": [{"itemIdentifier": sequence}]}
    assert counters(resources.table_name, "2026-11-29") == {}
    assert len(inbox_of(resources.table_name, "gw-g03-01")) == 1  # the inbox sink still ran

    monkeypatch.setattr(ddb, "transact_write_items", original)
    assert dispatch(event) == {"batchItemFailures": []}
    assert dispatch(event) == {"batchItemFailures": []}

    assert counters(resources.table_name, "2026-11-29")["G03|created|manhole_tilt"] == 1
    assert len(inbox_of(resources.table_name, "gw-g03-01")) == 1


def test_given_the_inbox_write_fails_then_the_record_is_retried_and_each_worker_ends_with_one_entry(
    resources: LocalResources, stream: StreamReader, monkeypatch: pytest.MonkeyPatch
) -> None:
    put_order(resources.table_name, tilt_order())
    event = stream.poll()
    ddb = client("dynamodb")
    original = ddb.put_item
    calls: list[str] = []

    def second_put_fails(**kwargs: Any) -> Any:
        calls.append(kwargs["Item"]["pk"]["S"])
        if len(calls) == 2:
            raise ClientError({"Error": {"Code": "InternalServerError", "Message": "injected"}}, "PutItem")
        return original(**kwargs)

    monkeypatch.setattr(ddb, "put_item", second_put_fails)

    assert len(dispatch(event)["batchItemFailures"]) == 1
    assert dispatch(event) == {"batchItemFailures": []}

    for worker in G03_WORKERS:
        assert len(inbox_of(resources.table_name, worker)) == 1
    assert counters(resources.table_name, "2026-11-29")["G03|created|manhole_tilt"] == 1
