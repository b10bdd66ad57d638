"""The work-order lifecycle through the HTTP API: the seed story, the action table, conflicts, races."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from smartzone.domain.lifecycle import Action, StaleVersion, TransitionRequest, plan_transition
from smartzone.repositories.workorders import WorkOrderRepository
from tests.api.conftest import Clock, People
from tests.support.api import ApiClient
from tests.support.orders import tilt_order

MIN = 60_000


def act(caller: Any, order_id: str, action: str, **fields: Any) -> Any:
    return ApiClient(caller).post(f"/v1/workorders/{order_id}/transitions", {"action": action, **fields})


def walk_to(caller: Any, order_id: str, *actions: str) -> None:
    for action in actions:
        response = act(caller, order_id, action)
        assert response.status == 200, (action, response.body)


def test_given_the_seed_story_when_worked_through_the_api_then_it_closes_with_stage_durations(
    people: People, store_order: Any, clock: Clock, sensor_clears: Any
) -> None:
    order = store_order(tilt_order())
    gw = people.gw_g03
    for minutes, action in ((4, "acknowledge"), (6, "verify"), (10, "handle"), (30, "resolve")):
        clock.advance(minutes)
        response = act(gw, order.order_id, action, note="现场处理中")
        assert response.status == 200, response.body
    assert response.body["status"] == "resolved", "the sensor is not normal yet: resolved waits"
    assert response.body["allowed_actions"] == ["comment"], "a grid worker has nothing more to do"

    assert sensor_clears(order.order_id, clock.advance(14)) == "closed"

    detail = ApiClient(people.dispatcher).get(f"/v1/workorders/{order.order_id}")
    assert detail.status == 200
    body = detail.body
    assert body["status"] == "closed" and body["sensor_normal"] is True
    assert [e["action"] for e in body["timeline"]] == [
        "raise",
        "acknowledge",
        "verify",
        "handle",
        "resolve",
        "alarm_cleared",
        "close",
    ]
    durations = body["stage_durations"]
    assert durations["acknowledged_to_verifying"] == 6 * 60
    assert durations["verifying_to_handling"] == 10 * 60
    assert durations["handling_to_resolved"] == 30 * 60
    assert durations["resolved_to_closed"] == 14 * 60
    assert body["alarm_to_clearance_s"] == pytest.approx(sum(durations.values()))
    assert body["alarm_to_clearance_s"] == pytest.approx(64 * 60, abs=1)


def test_given_a_sensor_already_normal_when_resolved_then_the_order_closes_at_once(
    people: People, store_order: Any, clock: Clock, sensor_clears: Any
) -> None:
    order = store_order(tilt_order())
    walk_to(people.gw_g03, order.order_id, "acknowledge", "verify", "handle")
    assert sensor_clears(order.order_id, clock.advance(1)) == "flagged"
    response = act(people.gw_g03, order.order_id, "resolve")
    assert response.status == 200
    assert response.body["status"] == "closed"
    assert response.body["timeline"][-1]["to"] == "closed"


@pytest.mark.parametrize(
    ("role", "status_path", "action", "fields", "expected"),
    [
        ("gw_g03", [], "acknowledge", {}, 200),
        ("tech", [], "acknowledge", {}, 200),
        ("dispatcher", [], "acknowledge", {}, 200),
        ("gw_g03", [], "verify", {}, 409),
        ("gw_g03", ["acknowledge", "verify", "handle"], "resolve", {}, 200),
        ("gw_g03", [], "cancel", {"reason": "false_positive"}, 403),
        ("dispatcher", [], "cancel", {"reason": "false_positive"}, 200),
        ("dispatcher", [], "cancel", {}, 422),
        ("dispatcher", [], "cancel", {"reason": "bored"}, 422),
        ("gw_g03", [], "reassign", {"assignee": "tech-07"}, 403),
        ("dispatcher", [], "reassign", {"assignee": "tech-07"}, 200),
        ("dispatcher", [], "reassign", {"assignee": "nobody-here"}, 422),
        ("dispatcher", [], "reassign", {}, 422),
        ("dispatcher", [], "escalate", {}, 200),
        ("gw_g03", [], "escalate", {}, 403),
        ("gw_g03", [], "close", {"note": "ok"}, 403),
        ("dispatcher", [], "close", {"note": "ok"}, 409),
        ("dispatcher", ["acknowledge", "verify", "handle", "resolve"], "close", {}, 422),
        ("dispatcher", ["acknowledge", "verify", "handle", "resolve"], "close", {"note": "已现场确认"}, 200),
        ("dispatcher", ["acknowledge", "verify", "handle", "resolve"], "reopen", {}, 200),
        ("gw_g03", ["acknowledge", "verify", "handle", "resolve"], "reopen", {}, 403),
        ("gw_g03", [], "comment", {"note": "已到现场"}, 200),
        ("admin", [], "comment", {"note": "记录"}, 200),
        ("admin", [], "acknowledge", {}, 403),
        ("gw_g03", [], "comment", {}, 422),
        ("gw_g03", [], "comment", {"photos": ["http://evil/x.jpg"]}, 422),
        ("gw_g03", [], "fly", {}, 422),
    ],
)
def test_given_an_order_when_a_role_acts_then_the_action_table_decides(
    people: People,
    store_order: Any,
    clock: Clock,
    role: str,
    status_path: list[str],
    action: str,
    fields: dict[str, Any],
    expected: int,
) -> None:
    order = store_order(tilt_order().model_copy(update={"assignee": "tech-07"}))
    walk_to(people.dispatcher, order.order_id, *status_path)
    clock.advance(1)
    before = ApiClient(people.dispatcher).get(f"/v1/workorders/{order.order_id}").body

    response = act(getattr(people, role), order.order_id, action, **fields)

    assert response.status == expected, response.body
    after = ApiClient(people.dispatcher).get(f"/v1/workorders/{order.order_id}").body
    if expected == 200:
        assert after["version"] == before["version"] + 1
        assert after["timeline"][-1]["actor"] == getattr(people, role).username
    else:
        assert after == before, "a refused action changes nothing"
        assert response.body.get("error") or response.body.get("detail"), "an error body"


def test_given_a_reassignment_when_written_then_the_new_assignee_sees_it_and_the_index_follows(
    people: People, store_order: Any, clock: Clock
) -> None:
    order = store_order(tilt_order())
    assert ApiClient(people.tech).get(f"/v1/workorders/{order.order_id}").status == 404
    assert act(people.dispatcher, order.order_id, "reassign", assignee="tech-07").status == 200
    assert ApiClient(people.tech).get(f"/v1/workorders/{order.order_id}").status == 200
    listed = ApiClient(people.tech).get("/v1/workorders").body["items"]
    assert [o["order_id"] for o in listed] == [order.order_id]


@pytest.mark.parametrize("assignee", ["gw-g04-01", "admin-01", "gw-none", "nobody-at-all"])
def test_given_an_assignee_who_could_not_see_the_order_when_reassigning_then_422(
    people: People, store_order: Any, clock: Clock, assignee: str
) -> None:
    """A G03 order cannot go to G04's worker, an admin-only user, a worker without a grid, or a stranger."""
    order = store_order(tilt_order())
    response = act(people.dispatcher, order.order_id, "reassign", assignee=assignee)
    assert response.status == 422 and response.body["field"] == "assignee"


def test_given_the_grid_s_own_worker_or_a_dispatcher_when_reassigning_then_accepted(
    people: People, store_order: Any, clock: Clock
) -> None:
    order = store_order(tilt_order())
    assert act(people.dispatcher, order.order_id, "reassign", assignee="gw-g03-01").status == 200
    assert act(people.dispatcher, order.order_id, "reassign", assignee="disp-01").status == 200


def test_given_a_stale_version_when_acting_then_409_and_nothing_changes(
    people: People, store_order: Any, clock: Clock
) -> None:
    order = store_order(tilt_order())
    assert act(people.gw_g03, order.order_id, "comment", note="到了", version=1).status == 200
    response = act(people.gw_g03, order.order_id, "acknowledge", version=1)
    assert response.status == 409
    assert response.body["error"] == "stale_version" and response.body["field"] == "version"
    assert ApiClient(people.gw_g03).get(f"/v1/workorders/{order.order_id}").body["status"] == "dispatched"


def test_given_a_telemetry_transaction_in_progress_when_acting_then_retried_not_a_500(
    people: People, store_order: Any, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DynamoDB answers TransactionConflict while a transaction writes the same order (botocore
    does not retry it): the write is retried; if the conflict persisted it would be a 409."""
    from botocore.exceptions import ClientError

    from smartzone.repositories.clients import client

    order = store_order(tilt_order())
    ddb = client("dynamodb")
    real = ddb.update_item
    conflicts = [2]

    def busy(**kwargs: Any) -> Any:
        if conflicts[0]:
            conflicts[0] -= 1
            raise ClientError(
                {"Error": {"Code": "TransactionConflictException", "Message": "in progress"}}, "UpdateItem"
            )
        return real(**kwargs)

    monkeypatch.setattr(ddb, "update_item", busy)
    assert act(people.gw_g03, order.order_id, "acknowledge").status == 200

    conflicts[0] = 99
    response = act(people.gw_g03, order.order_id, "verify")
    assert response.status == 409 and response.body["field"] == "version"


def test_given_two_planned_transitions_from_one_version_when_written_then_exactly_one_lands(
    api_env: Any, store_order: Any
) -> None:
    order = store_order(tilt_order())
    repo = WorkOrderRepository(api_env.table_name)

    def plan(action: str, actor: str) -> Any:
        return plan_transition(
            order, actor=actor, roles=["dispatcher"], request=TransitionRequest(action=action), now_ms=1
        )

    first, second = plan("acknowledge", "a"), plan("escalate", "b")
    repo.apply(first, order)
    with pytest.raises(StaleVersion):
        repo.apply(second, order)
    stored = repo.get(order.order_id)
    assert stored is not None and stored.version == 2 and stored.escalation_level == 0
    assert [e.actor for e in stored.timeline[1:]] == ["a"]


def test_given_two_simultaneous_pinned_transitions_when_sent_then_exactly_one_wins(
    people: People, store_order: Any, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    order = store_order(tilt_order())
    both_read = threading.Barrier(2, timeout=10)
    real_get = WorkOrderRepository.get

    def get_then_wait(self: WorkOrderRepository, order_id: str) -> Any:
        found = real_get(self, order_id)
        both_read.wait()  # both requests hold version 1 before either writes
        return found

    # moto checks a condition and writes in separate steps; DynamoDB does both atomically per item.
    atomic = threading.Lock()
    real_apply = WorkOrderRepository.apply

    def atomic_apply(self: WorkOrderRepository, plan: Any, current: Any) -> Any:
        with atomic:
            return real_apply(self, plan, current)

    monkeypatch.setattr(WorkOrderRepository, "get", get_then_wait)
    monkeypatch.setattr(WorkOrderRepository, "apply", atomic_apply)
    results: dict[str, int] = {}

    def send(name: str, caller: Any) -> None:
        results[name] = act(caller, order.order_id, "acknowledge", version=1).status

    threads = [
        threading.Thread(target=send, args=("gw", people.gw_g03)),
        threading.Thread(target=send, args=("disp", people.dispatcher)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    monkeypatch.undo()

    assert sorted(results.values()) == [200, 409]
    stored = ApiClient(people.dispatcher).get(f"/v1/workorders/{order.order_id}").body
    assert stored["version"] == 2
    assert [e["action"] for e in stored["timeline"]].count("acknowledge") == 1


def test_given_the_sensor_clears_between_read_and_write_when_resolving_then_the_order_ends_closed(
    people: People, store_order: Any, clock: Clock, sensor_clears: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    order = store_order(tilt_order())
    walk_to(people.gw_g03, order.order_id, "acknowledge", "verify", "handle")
    real_get = WorkOrderRepository.get
    raced: list[str] = []

    def get_then_sensor_clears(self: WorkOrderRepository, order_id: str) -> Any:
        found = real_get(self, order_id)
        if not raced:  # the telemetry clearance lands right after the API read the order
            raced.append(sensor_clears(order_id, clock.advance(1)))
        return found

    monkeypatch.setattr(WorkOrderRepository, "get", get_then_sensor_clears)
    response = act(people.gw_g03, order.order_id, "resolve")
    monkeypatch.undo()

    assert raced == ["flagged"], "the sensor's write went first, on a working order"
    assert response.status == 200, response.body
    assert response.body["status"] == "closed", "the re-planned resolve saw the sensor normal"
    assert response.body["sensor_normal"] is True
    actions = [e["action"] for e in response.body["timeline"]]
    assert actions[-3:] == ["alarm_cleared", "resolve", "close"]


def test_given_resolve_lands_first_when_the_sensor_clears_then_the_order_ends_closed(
    people: People, store_order: Any, clock: Clock, sensor_clears: Any
) -> None:
    order = store_order(tilt_order())
    walk_to(people.gw_g03, order.order_id, "acknowledge", "verify", "handle", "resolve")
    assert sensor_clears(order.order_id, clock.advance(1)) == "closed"
    body = ApiClient(people.gw_g03).get(f"/v1/workorders/{order.order_id}").body
    assert body["status"] == "closed"
    closed_list = ApiClient(people.dispatcher).get("/v1/workorders", status="closed").body["items"]
    assert [o["order_id"] for o in closed_list] == [order.order_id], "the status index followed"


def test_given_a_pinned_resolve_when_the_sensor_clears_first_then_409_not_a_silent_replan(
    people: People, store_order: Any, clock: Clock, sensor_clears: Any
) -> None:
    order = store_order(tilt_order())
    walk_to(people.gw_g03, order.order_id, "acknowledge", "verify", "handle")
    version = ApiClient(people.gw_g03).get(f"/v1/workorders/{order.order_id}").body["version"]
    sensor_clears(order.order_id, clock.advance(1))
    response = act(people.gw_g03, order.order_id, "resolve", version=version)
    assert response.status == 409 and response.body["error"] == "stale_version"


def test_given_transitions_when_written_then_the_sla_index_follows_the_order(
    api_env: Any, people: People, store_order: Any, clock: Clock
) -> None:
    order = store_order(tilt_order())
    repo = WorkOrderRepository(api_env.table_name)
    far_future = "2100-01-01T00:00:00.000Z"
    assert [o.order_id for o in repo.overdue(far_future)] == [order.order_id]
    walk_to(people.gw_g03, order.order_id, "acknowledge", "verify", "handle")
    assert [o.order_id for o in repo.overdue(far_future)] == [order.order_id], "now due to be resolved"
    assert act(people.dispatcher, order.order_id, Action.CANCEL.value, reason="false_positive").status == 200
    assert repo.overdue(far_future) == [], "a final order has no deadline"
