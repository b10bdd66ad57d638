"""Devices and grids through the API: live status, reach by role, admin writes, bulk import,
maintenance windows (device and grid), registering and offboarding grid workers."""

from __future__ import annotations

import json
from typing import Any

import pytest

from smartzone.domain.alarms import AlarmTrack, DeviceState
from smartzone.domain.registry import Grid, GridWorker
from smartzone.domain.timeutil import now_ms, to_iso
from smartzone.domain.workorders import OrderStatus, WorkOrder
from smartzone.repositories.clients import client
from smartzone.repositories.devices import DeviceRepository
from smartzone.repositories.users import UserRepository
from smartzone.repositories.workorders import WorkOrderRepository
from tests.api.conftest import People
from tests.support.api import ApiClient
from tests.support.orders import cover, tilt_order

MINUTE = 60_000
G03_WORKERS = [
    GridWorker(worker_id="gw-g03-01", name="王芳", phone="13812345678", email="g03a@example.org"),
    GridWorker(worker_id="gw-g03-02", name="刘洋", phone="13811112222", email="g03b@example.org"),
]
G04_WORKERS = [GridWorker(worker_id="gw-g04-01", name="李强", phone="13987654321")]


@pytest.fixture
def registry(api_env: Any) -> DeviceRepository:
    """Grids G03 (two workers) and G04; covers MH-0178 (tilted, order open), MH-0179 (reporting
    normally) in G03 and MH-0401 (never reported) in G04."""
    repo = DeviceRepository(api_env.table_name)
    repo.put_many(
        [cover("MH-0178", "G03"), cover("MH-0179", "G03"), cover("MH-0401", "G04")],
        [
            Grid(grid_id="G03", name="第三网格", community="滨江社区", workers=G03_WORKERS),
            Grid(grid_id="G04", name="第四网格", community="滨江社区", workers=G04_WORKERS),
        ],
    )
    now = now_ms()
    order = tilt_order(cover("MH-0178", "G03"))
    tilted = DeviceState(
        watermark=now - MINUTE,
        last_seen=now - MINUTE,
        last_tilt=25.3,
        last_battery=88.0,
        alarms={"tilt": AlarmTrack(active=True, alarm_id=order.alarm_ids[0], order_id=order.order_id)},
    )
    normal = DeviceState(watermark=now - MINUTE, last_seen=now - MINUTE, last_tilt=1.5)
    for device_id, state in (("MH-0178", tilted), ("MH-0179", normal)):
        record = repo.get(device_id)
        assert record is not None
        repo.save_state(record, state)
    return repo


def body_of(response: Any) -> Any:
    assert response.status < 500, response.body
    return response.body


def ids(items: list[dict[str, Any]]) -> list[str]:
    return [item["device_id"] for item in items]


def window(start_min: int, end_min: int, **extra: Any) -> dict[str, Any]:
    now = now_ms()
    return {"start": to_iso(now + start_min * MINUTE), "end": to_iso(now + end_min * MINUTE), **extra}


# --- list and detail with live status -------------------------------------------------------------


def test_given_devices_when_a_dispatcher_lists_them_then_each_has_its_live_status(
    registry: DeviceRepository, people: People, store_order: Any
) -> None:
    store_order(tilt_order(cover("MH-0178", "G03")))
    api = ApiClient(people.dispatcher)
    assert api.post("/v1/devices/MH-0179/maintenance", window(-5, 60, reason="换井盖")).status == 201

    listed = body_of(api.get("/v1/devices"))

    status = {item["device_id"]: item["status"] for item in listed["items"]}
    assert status == {"MH-0178": "alarm", "MH-0179": "maintenance", "MH-0401": "offline"}
    assert listed["next_cursor"] is None
    assert ids(body_of(api.get("/v1/devices", status="alarm"))["items"]) == ["MH-0178"]
    assert ids(body_of(api.get("/v1/devices", grid_id="G04"))["items"]) == ["MH-0401"]


def test_given_a_tilted_cover_when_its_detail_is_read_then_it_shows_last_reading_alarm_and_open_order(
    registry: DeviceRepository, people: People, store_order: Any
) -> None:
    order = store_order(tilt_order(cover("MH-0178", "G03")))

    detail = body_of(ApiClient(people.gw_g03).get("/v1/devices/MH-0178"))

    assert detail["status"] == "alarm"
    assert detail["last_reading"]["tilt_deg"] == 25.3 and detail["last_reading"]["battery_pct"] == 88.0
    assert detail["alarms"][0]["alarm_type"] == "tilt"
    assert [o["order_id"] for o in detail["open_orders"]] == [order.order_id]
    assert detail["open_orders"][0]["status"] == "dispatched"


def test_given_a_closed_order_when_the_detail_is_read_then_it_is_not_listed_as_open(
    registry: DeviceRepository, people: People, store_order: Any
) -> None:
    store_order(tilt_order(cover("MH-0178", "G03")).model_copy(update={"status": OrderStatus.CLOSED}))
    detail = body_of(ApiClient(people.dispatcher).get("/v1/devices/MH-0178"))
    assert detail["open_orders"] == []


def test_given_a_technician_when_reading_a_device_then_only_orders_assigned_to_them_are_listed(
    registry: DeviceRepository, people: People, store_order: Any
) -> None:
    store_order(tilt_order(cover("MH-0178", "G03")))
    detail = body_of(ApiClient(people.tech).get("/v1/devices/MH-0178"))
    assert detail["status"] == "alarm" and detail["open_orders"] == []


def test_given_many_devices_when_paging_then_every_device_comes_once_and_a_tampered_cursor_is_refused(
    registry: DeviceRepository, people: People
) -> None:
    api = ApiClient(people.admin)
    seen: list[str] = []
    cursor: str | None = None
    while True:
        page = body_of(api.get("/v1/devices", limit="1", **({"cursor": cursor} if cursor else {})))
        seen += ids(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["MH-0178", "MH-0179", "MH-0401"]

    first = body_of(api.get("/v1/devices", limit="1"))["next_cursor"]
    tampered = first[:-2] + ("AA" if not first.endswith("AA") else "BB")
    assert api.get("/v1/devices", limit="1", cursor=tampered).status == 400
    # a cursor of one query cannot be replayed on another (e.g. another grid)
    assert api.get("/v1/devices", grid_id="G04", limit="1", cursor=first).status == 400


# --- reach ----------------------------------------------------------------------------------------


def test_given_a_grid_worker_then_they_see_only_their_grids_devices(
    registry: DeviceRepository, people: People
) -> None:
    api = ApiClient(people.gw_g03)

    assert ids(body_of(api.get("/v1/devices"))["items"]) == ["MH-0178", "MH-0179"]
    assert api.get("/v1/devices/MH-0401").status == 404
    assert api.get("/v1/devices", grid_id="G04").status == 404
    assert api.get("/v1/grids/G04").status == 404
    assert [g["grid_id"] for g in body_of(api.get("/v1/grids"))["items"]] == ["G03"]
    assert body_of(ApiClient(people.gw_nogrid).get("/v1/devices"))["items"] == []


def test_given_a_technician_then_they_see_every_device_read_only(
    registry: DeviceRepository, people: People
) -> None:
    api = ApiClient(people.tech)
    assert ids(body_of(api.get("/v1/devices"))["items"]) == ["MH-0178", "MH-0179", "MH-0401"]
    assert (
        api.put(
            "/v1/devices/MH-0401", {"name": "x", "road": "y", "lon": 118.3, "lat": 31.3, "grid_id": "G04"}
        ).status
        == 403
    )


def test_given_no_token_then_401(registry: DeviceRepository) -> None:
    assert ApiClient(None).get("/v1/devices").status == 401
    assert ApiClient(None).get("/v1/grids").status == 401


REGISTRATION = {"name": "高新大道179号井", "road": "高新大道", "lon": 118.35, "lat": 31.33, "grid_id": "G03"}


@pytest.mark.parametrize("who", ["dispatcher", "gw_g03", "tech"])
def test_given_a_non_admin_when_writing_the_registry_then_403(
    registry: DeviceRepository, people: People, who: str
) -> None:
    api = ApiClient(getattr(people, who))
    assert api.put("/v1/devices/MH-0179", REGISTRATION).status == 403
    assert api.post("/v1/devices/import", [{**REGISTRATION, "device_id": "MH-0500"}]).status == 403
    assert api.put("/v1/grids/G03", {"name": "x", "community": "y"}).status == 403
    worker = {"worker_id": "gw-new", "name": "新人", "phone": "13800000000", "email": "new@example.org"}
    assert api.post("/v1/grids/G03/workers", worker).status == 403
    assert api.call("DELETE", "/v1/grids/G03/workers/gw-g03-01").status == 403


def test_given_a_grid_worker_when_writing_outside_their_grid_then_404(
    registry: DeviceRepository, people: People
) -> None:
    api = ApiClient(people.gw_g03)
    assert api.put("/v1/devices/MH-0401", {**REGISTRATION, "grid_id": "G04"}).status == 404
    assert api.post("/v1/devices/MH-0401/maintenance", window(0, 60)).status == 404
    assert api.post("/v1/devices/MH-0178/maintenance", window(0, 60)).status == 403
    assert api.post("/v1/grids/G04/maintenance", window(0, 60)).status == 404


# --- admin writes ---------------------------------------------------------------------------------


def test_given_an_admin_when_a_device_is_updated_then_its_hot_state_and_windows_are_kept(
    registry: DeviceRepository, people: People
) -> None:
    api = ApiClient(people.admin)
    before = registry.get("MH-0178")
    assert before is not None
    assert api.post("/v1/devices/MH-0178/maintenance", window(60, 120, window_id="MW-plan")).status == 201

    response = api.put("/v1/devices/MH-0178", {**REGISTRATION, "name": "高新大道178号井(东)"})

    assert response.status == 200 and response.body["status"] == "updated"
    after = registry.get("MH-0178")
    assert after is not None
    assert after.device.name == "高新大道178号井(东)"
    assert (after.state, after.version) == (before.state, before.version)
    assert [w.window_id for w in after.device.maintenance] == ["MW-plan"]
    assert (
        api.put("/v1/devices/MH-0178", {**REGISTRATION, "name": "高新大道178号井(东)"}).body["status"]
        == "unchanged"
    )


def test_given_an_admin_when_creating_a_device_then_201_and_bad_fields_are_named(
    registry: DeviceRepository, people: People
) -> None:
    api = ApiClient(people.admin)
    created = api.put("/v1/devices/MH-0500", REGISTRATION)
    assert created.status == 201 and created.body["device"]["status"] == "offline"
    assert api.put("/v1/devices/MH-0501", {**REGISTRATION, "grid_id": "G99"}).body["field"] == "grid_id"
    assert api.put("/v1/devices/bad-id", REGISTRATION).body["field"] == "device_id"
    assert api.put("/v1/devices/MH-0502", {**REGISTRATION, "lat": 95}).status == 422
    assert api.put("/v1/devices/MH-0502", {**REGISTRATION, "extra": 1}).status == 422


def test_given_a_bulk_import_with_bad_rows_then_good_rows_are_written_and_each_row_reports(
    registry: DeviceRepository, people: People
) -> None:
    rows: list[Any] = [
        {**REGISTRATION, "device_id": "MH-0600"},  # created
        {**REGISTRATION, "device_id": "MH-0179", "name": "高新大道179号井"},  # name changed: updated
        {**REGISTRATION, "device_id": "MH-0601", "lat": 95},  # bad latitude
        {**REGISTRATION, "device_id": "MH-0602", "grid_id": "G99"},  # unknown grid
        {**REGISTRATION, "device_id": "MH-0600"},  # duplicate in this import
        "not an object",
        {"device_id": "nope"},
    ]
    cover_179 = cover("MH-0179", "G03")
    rows.append(
        {
            "device_id": "MH-0401",
            "name": "高新大道401号井",
            "road": cover_179.road,
            "lon": cover_179.lon,
            "lat": cover_179.lat,
            "grid_id": "G04",
        }
    )  # same as stored: unchanged

    result = body_of(ApiClient(people.admin).post("/v1/devices/import", rows))

    statuses = [(r["row"], r["device_id"], r["status"]) for r in result["rows"]]
    assert statuses == [
        (0, "MH-0600", "created"),
        (1, "MH-0179", "updated"),
        (2, "MH-0601", "error"),
        (3, "MH-0602", "error"),
        (4, "MH-0600", "error"),
        (5, None, "error"),
        (6, "nope", "error"),
        (7, "MH-0401", "unchanged"),
    ]
    errors = {r["row"]: r["errors"] for r in result["rows"]}
    assert [e["field"] for e in errors[2]] == ["lat"]
    assert errors[3] == [{"field": "grid_id", "message": "grid G99 does not exist"}]
    assert "duplicate of row 0" in errors[4][0]["message"]
    assert {"device_id", "name", "road", "lon", "lat", "grid_id"} <= {e["field"] for e in errors[6]}
    assert result["counts"] == {"created": 1, "updated": 1, "unchanged": 1, "error": 5}
    assert registry.get("MH-0600") is not None and registry.get("MH-0601") is None
    tilted = registry.get("MH-0179")
    assert tilted is not None and tilted.state.last_tilt == 1.5  # hot state kept


def test_given_more_than_1000_rows_then_the_import_is_refused(
    registry: DeviceRepository, people: People
) -> None:
    rows = [{"device_id": f"MH-{i:04d}"} for i in range(1001)]
    assert ApiClient(people.admin).post("/v1/devices/import", rows).status == 422


# --- maintenance windows --------------------------------------------------------------------------


def test_given_a_device_window_when_posted_twice_and_deleted_then_status_follows(
    registry: DeviceRepository, people: People
) -> None:
    api = ApiClient(people.dispatcher)
    first = api.post("/v1/devices/MH-0179/maintenance", window(-5, 60, window_id="MW-a"))
    again = api.post("/v1/devices/MH-0179/maintenance", window(-5, 60, window_id="MW-a"))
    assert (first.status, first.body["status"], first.body["device_status"]) == (201, "added", "maintenance")
    assert (again.status, again.body["status"]) == (200, "exists")

    removed = api.delete("/v1/devices/MH-0179/maintenance/MW-a")
    assert removed.status == 200 and removed.body["device_status"] == "normal"
    assert api.delete("/v1/devices/MH-0179/maintenance/MW-a").status == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"start": "yesterday", "end": "2099-01-01T00:00:00Z"}, "start"),
        ({"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"}, "end"),
        ({"start": "2020-01-01T00:00:00Z", "end": "2020-01-02T00:00:00Z"}, "end"),
    ],
)
def test_given_a_bad_window_then_422_naming_the_field(
    registry: DeviceRepository, people: People, body: dict[str, Any], field: str
) -> None:
    response = ApiClient(people.admin).post("/v1/devices/MH-0179/maintenance", body)
    assert (response.status, response.body.get("field")) == (422, field)


def test_given_a_grid_window_then_it_is_copied_onto_every_device_of_the_grid(
    registry: DeviceRepository, people: People
) -> None:
    api = ApiClient(people.admin)

    result = body_of(api.post("/v1/grids/G03/maintenance", window(-5, 120, reason="道路施工")))

    assert sorted((d["device_id"], d["status"]) for d in result["devices"]) == [
        ("MH-0178", "added"),
        ("MH-0179", "added"),
    ]
    assert result["counts"] == {"added": 2, "exists": 0, "error": 0}
    window_id = result["window"]["window_id"]
    for device_id in ("MH-0178", "MH-0179"):
        record = registry.get(device_id)
        assert record is not None
        assert [(w.window_id, w.scope, w.reason) for w in record.device.maintenance] == [
            (window_id, "grid", "道路施工")
        ]
    other = registry.get("MH-0401")
    assert other is not None and other.device.maintenance == []
    statuses = {d["device_id"]: d["status"] for d in body_of(api.get("/v1/devices", grid_id="G03"))["items"]}
    assert statuses == {"MH-0178": "alarm", "MH-0179": "maintenance"}
    counts = body_of(api.get("/v1/grids/G03"))["device_counts"]
    assert counts == {"normal": 0, "alarm": 1, "offline": 0, "maintenance": 1}


# --- grids ----------------------------------------------------------------------------------------


def test_given_a_grid_detail_then_phones_are_masked_per_role_and_counts_are_given(
    registry: DeviceRepository, people: People, store_order: Any
) -> None:
    store_order(tilt_order(cover("MH-0178", "G03")))
    store_order(tilt_order(cover("MH-0179", "G03")).model_copy(update={"status": OrderStatus.CANCELLED}))

    worker_view = body_of(ApiClient(people.gw_g03).get("/v1/grids/G03"))
    dispatcher_view = body_of(ApiClient(people.dispatcher).get("/v1/grids/G03"))

    assert [w["phone"] for w in worker_view["workers"]] == ["138****5678", "138****2222"]
    assert all(w["email"] is None and w["webhook_url"] is None for w in worker_view["workers"])
    assert [w["phone"] for w in dispatcher_view["workers"]] == ["13812345678", "13811112222"]
    assert dispatcher_view["device_counts"] == {"normal": 1, "alarm": 1, "offline": 0, "maintenance": 0}
    assert (dispatcher_view["device_total"], dispatcher_view["open_orders"]) == (2, 1)


def test_given_an_admin_when_a_grid_is_created_and_renamed_then_its_workers_are_kept(
    registry: DeviceRepository, people: People
) -> None:
    api = ApiClient(people.admin)
    created = api.put("/v1/grids/G13", {"name": "第十三网格", "community": "新城社区"})
    assert (created.status, created.body["status"]) == (201, "created")
    renamed = api.put("/v1/grids/G03", {"name": "第三网格(新)", "community": "滨江社区"})
    assert (renamed.status, renamed.body["status"]) == (200, "updated")
    grid = registry.get_grid("G03")
    assert grid is not None and grid.name == "第三网格(新)" and len(grid.workers) == 2
    assert api.put("/v1/grids/X1", {"name": "x", "community": "y"}).body["field"] == "grid_id"
    assert [g["grid_id"] for g in body_of(api.get("/v1/grids"))["items"]] == ["G03", "G04", "G13"]


# --- grid workers ---------------------------------------------------------------------------------


def subscriptions(topic_arn: str) -> dict[str, dict[str, Any]]:
    sns = client("sns")
    out = {}
    for sub in sns.list_subscriptions_by_topic(TopicArn=topic_arn)["Subscriptions"]:
        attributes = sns.get_subscription_attributes(SubscriptionArn=sub["SubscriptionArn"])["Attributes"]
        out[sub["Endpoint"]] = {"protocol": sub["Protocol"], "policy": json.loads(attributes["FilterPolicy"])}
    return out


def test_given_a_new_grid_worker_when_registered_then_user_grid_and_grid_filtered_subscription_exist(
    registry: DeviceRepository, people: People, api_env: Any
) -> None:
    body = {"worker_id": "gw-g04-02", "name": "周敏", "phone": "13900001234", "email": "zhou@example.org"}

    response = ApiClient(people.admin).post("/v1/grids/G04/workers", body)

    assert response.status == 201, response.body
    assert response.body["user"] == {"username": "gw-g04-02", "roles": ["grid_worker"], "grid_ids": ["G04"]}
    assert response.body["subscriptions"][0]["status"] == "created"
    subs = subscriptions(api_env.notifications_topic_arn)
    assert subs["zhou@example.org"] == {"protocol": "email", "policy": {"grid_id": ["G04"]}}
    grid = registry.get_grid("G04")
    assert grid is not None and [w.worker_id for w in grid.workers] == ["gw-g04-01", "gw-g04-02"]
    # their reach comes from the registry at once
    newcomer = people.gw_g04.model_copy(update={"subject": "sub-new", "username": "gw-g04-02"})
    assert ids(body_of(ApiClient(newcomer).get("/v1/devices"))["items"]) == ["MH-0401"]

    again = ApiClient(people.admin).post("/v1/grids/G04/workers", body)
    assert again.status == 200 and again.body["subscriptions"][0]["status"] == "exists"
    grid = registry.get_grid("G04")
    assert grid is not None and len(grid.workers) == 2


def test_given_a_worker_of_another_grid_when_registered_then_their_subscription_covers_both_grids(
    registry: DeviceRepository, people: People, api_env: Any
) -> None:
    body = {"worker_id": "gw-g03-02", "name": "刘洋", "phone": "13811112222", "email": "g03b@example.org"}
    api = ApiClient(people.admin)
    api.post("/v1/grids/G03/workers", body)

    response = api.post("/v1/grids/G04/workers", body)

    assert response.body["user"]["grid_ids"] == ["G03", "G04"]
    assert subscriptions(api_env.notifications_topic_arn)["g03b@example.org"]["policy"] == {
        "grid_id": ["G03", "G04"]
    }


def test_given_a_worker_of_two_grids_when_offboarded_from_each_then_notifications_stop_grid_by_grid(
    registry: DeviceRepository, people: People, api_env: Any
) -> None:
    body = {"worker_id": "gw-two", "name": "陈静", "phone": "13811113333", "email": "two@example.org"}
    api = ApiClient(people.admin)
    api.post("/v1/grids/G03/workers", body)
    api.post("/v1/grids/G04/workers", body)

    assert api.delete("/v1/grids/G03/workers/gw-two").status == 200
    assert subscriptions(api_env.notifications_topic_arn)["two@example.org"]["policy"] == {"grid_id": ["G04"]}

    assert api.delete("/v1/grids/G04/workers/gw-two").status == 200
    assert "two@example.org" not in subscriptions(api_env.notifications_topic_arn)


def test_given_a_bad_worker_body_then_422(registry: DeviceRepository, people: People) -> None:
    api = ApiClient(people.admin)
    assert (
        api.post("/v1/grids/G04/workers", {"worker_id": "x y", "name": "a", "phone": "13900001234"}).status
        == 422
    )
    assert api.post("/v1/grids/G04/workers", {"worker_id": "x", "name": "a", "phone": "123"}).status == 422
    worker = {"worker_id": "x", "name": "a", "phone": "13900001234", "webhook_url": "http://insecure"}
    assert api.post("/v1/grids/G04/workers", worker).status == 422
    assert api.post("/v1/grids/G99/workers", {**worker, "webhook_url": None}).status == 404


# --- offboarding ----------------------------------------------------------------------------------


def assigned(order: WorkOrder, assignee: str, status: OrderStatus = OrderStatus.ACKNOWLEDGED) -> WorkOrder:
    return order.model_copy(update={"assignee": assignee, "status": status})


def test_given_a_worker_with_open_orders_when_offboarded_then_they_go_to_the_other_worker_of_the_grid(
    registry: DeviceRepository, people: People, store_order: Any, api_env: Any
) -> None:
    open_one = store_order(assigned(tilt_order(cover("MH-0178", "G03")), "gw-g03-01"))
    open_two = store_order(assigned(tilt_order(cover("MH-0179", "G03")), "gw-g03-01", OrderStatus.HANDLING))
    closed = store_order(assigned(tilt_order(cover("MH-0177", "G03")), "gw-g03-01", OrderStatus.CLOSED))
    elsewhere = store_order(assigned(tilt_order(cover("MH-0401", "G04")), "gw-g03-01"))

    response = ApiClient(people.admin).delete("/v1/grids/G03/workers/gw-g03-01")

    assert response.status == 200, response.body
    assert response.body["reassigned"] == 2
    assert sorted(o["order_id"] for o in response.body["orders"]) == sorted(
        [open_one.order_id, open_two.order_id]
    )
    orders = WorkOrderRepository(api_env.table_name)
    for order in (open_one, open_two):
        after = orders.get(order.order_id)
        assert after is not None
        assert (after.assignee, after.status, after.version) == ("gw-g03-02", order.status, order.version + 1)
        entry = after.timeline[-1]
        assert (entry.action, entry.actor, entry.role) == ("reassign", "admin-01", "admin")
        assert "gw-g03-01" in (entry.note or "") and "gw-g03-02" in (entry.note or "")
    for order in (closed, elsewhere):
        untouched = orders.get(order.order_id)
        assert untouched is not None and untouched.assignee == "gw-g03-01"
    assert [o.order_id for o in orders.list_by_assignee("gw-g03-02")] != []

    user = UserRepository(api_env.table_name).get("gw-g03-01")
    assert user is not None and user.grid_ids == []
    grid = registry.get_grid("G03")
    assert grid is not None and [w.worker_id for w in grid.workers] == ["gw-g03-02"]
    # their reach ends at once
    assert ApiClient(people.gw_g03).get("/v1/devices/MH-0178").status == 404
    assert ApiClient(people.admin).delete("/v1/grids/G03/workers/gw-g03-01").status == 404


def test_given_the_last_worker_of_a_grid_when_offboarded_then_their_orders_are_left_to_the_grid(
    registry: DeviceRepository, people: People, store_order: Any, api_env: Any
) -> None:
    order = store_order(assigned(tilt_order(cover("MH-0401", "G04")), "gw-g04-01"))

    response = ApiClient(people.admin).delete("/v1/grids/G04/workers/gw-g04-01")

    assert response.body["reassigned"] == 1
    assert response.body["orders"] == [{"order_id": order.order_id, "assignee": None}]
    after = WorkOrderRepository(api_env.table_name).get(order.order_id)
    assert after is not None and after.assignee is None
    assert after.timeline[-1].action == "reassign" and "未指派" in (after.timeline[-1].note or "")
    assert WorkOrderRepository(api_env.table_name).list_by_assignee("gw-g04-01") == []


# --- the seed's users -----------------------------------------------------------------------------


def test_given_the_seeded_district_then_its_people_are_in_the_registry_and_reach_follows(
    api_env: Any,
) -> None:
    from smartzone.domain.identity import Caller
    from tools.seed import load_district
    from tools.seed_data import DEFAULT_PATH

    data = json.loads(DEFAULT_PATH.read_text(encoding="utf-8"))
    report = load_district(DEFAULT_PATH, api_env.table_name)

    users = UserRepository(api_env.table_name)
    workers = [(w["worker_id"], g["grid_id"]) for g in data["grids"] for w in g["workers"]]
    departments = data["departments"]
    expected = (
        1
        + len(data["command_centre"]["dispatchers"])
        + len(data["technicians"])
        + len(workers)
        + len(departments)
        + len(data["data_stewards"])
    )
    assert report.users_created == expected
    admin = users.get("admin")
    assert admin is not None and [r.value for r in admin.roles] == ["admin"]
    dispatcher = users.get(data["command_centre"]["dispatchers"][0]["user_id"])
    assert dispatcher is not None and [r.value for r in dispatcher.roles] == ["dispatcher"]
    tech = users.get(data["technicians"][0]["user_id"])
    assert tech is not None and [r.value for r in tech.roles] == ["technician"]
    liaison = users.get(departments[0]["liaison"]["user_id"])
    assert liaison is not None and [r.value for r in liaison.roles] == ["department"]
    assert liaison.department_id == departments[0]["department_id"]
    steward = users.get(data["data_stewards"][0]["user_id"])
    assert steward is not None and [r.value for r in steward.roles] == ["data_steward"]
    worker_id, grid_id = workers[0]
    worker = users.get(worker_id)
    assert worker is not None and worker.grid_ids == [grid_id]

    caller = Caller.of("sub-w", worker_id, ["grid_worker"])
    listed = body_of(ApiClient(caller).get("/v1/devices", limit="100"))
    assert listed["items"] and {d["grid_id"] for d in listed["items"]} == {grid_id}
    assert load_district(DEFAULT_PATH, api_env.table_name).users_unchanged == expected
