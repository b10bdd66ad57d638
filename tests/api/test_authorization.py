"""The authorization matrix: who sees and acts on which order (404 outside reach, 403, 401)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import People
from tests.support.api import ApiClient
from tests.support.orders import RAISED_AT, cover, tilt_order


@pytest.fixture
def orders(store_order: Any) -> dict[str, Any]:
    """One order in G03 (assigned to the technician), one in G04 (unassigned)."""
    g03 = store_order(tilt_order(cover("MH-0178", "G03")).model_copy(update={"assignee": "tech-07"}))
    g04 = store_order(tilt_order(cover("MH-0301", "G04"), raised_at=RAISED_AT + 60_000))
    return {"G03": g03, "G04": g04}


@pytest.mark.parametrize(
    ("who", "grid", "expected"),
    [
        ("gw_g03", "G03", 200),
        ("gw_g03", "G04", 404),
        ("gw_g04", "G04", 200),
        ("gw_g04", "G03", 404),
        ("gw_nogrid", "G03", 404),
        ("tech", "G03", 200),
        ("tech", "G04", 404),
        ("dispatcher", "G03", 200),
        ("dispatcher", "G04", 200),
        ("admin", "G04", 200),
    ],
)
def test_given_orders_in_two_grids_when_a_caller_reads_one_then_only_their_reach_is_visible(
    people: People, orders: dict[str, Any], who: str, grid: str, expected: int
) -> None:
    response = ApiClient(getattr(people, who)).get(f"/v1/workorders/{orders[grid].order_id}")
    assert response.status == expected
    if expected == 404:
        unknown = ApiClient(getattr(people, who)).get("/v1/workorders/WO-does-not-exist")
        assert response.body == unknown.body, "out of reach looks exactly like not existing"


@pytest.mark.parametrize(
    ("who", "grid", "expected"),
    [
        ("gw_g03", "G04", 404),
        ("tech", "G04", 404),
        ("gw_nogrid", "G03", 404),
        ("gw_g03", "G03", 200),
        ("tech", "G03", 200),
    ],
)
def test_given_an_order_out_of_reach_when_acting_on_it_then_404_and_nothing_changes(
    people: People, orders: dict[str, Any], who: str, grid: str, expected: int
) -> None:
    order_id = orders[grid].order_id
    response = ApiClient(getattr(people, who)).post(
        f"/v1/workorders/{order_id}/transitions", {"action": "acknowledge"}
    )
    assert response.status == expected
    status = ApiClient(people.dispatcher).get(f"/v1/workorders/{order_id}").body["status"]
    assert status == ("acknowledged" if expected == 200 else "dispatched")


def test_given_a_visible_order_when_a_role_may_not_act_then_403(
    people: People, orders: dict[str, Any]
) -> None:
    order_id = orders["G03"].order_id
    for caller, action in ((people.gw_g03, "cancel"), (people.tech, "reassign"), (people.admin, "handle")):
        response = ApiClient(caller).post(
            f"/v1/workorders/{order_id}/transitions", {"action": action, "reason": "false_positive"}
        )
        assert response.status == 403, (caller.username, action)
        assert response.body["error"] == "forbidden"


@pytest.mark.parametrize(
    ("who", "expected_grids"),
    [
        ("gw_g03", {"G03"}),
        ("gw_g04", {"G04"}),
        ("gw_nogrid", set()),
        ("tech", {"G03"}),
        ("dispatcher", {"G03", "G04"}),
        ("admin", {"G03", "G04"}),
    ],
)
def test_given_orders_in_two_grids_when_listing_then_each_caller_gets_only_their_reach(
    people: People, orders: dict[str, Any], who: str, expected_grids: set[str]
) -> None:
    response = ApiClient(getattr(people, who)).get("/v1/workorders")
    assert response.status == 200
    assert {o["grid_id"] for o in response.body["items"]} == expected_grids


def test_given_a_grid_worker_when_filtering_on_another_grid_then_the_list_is_empty(
    people: People, orders: dict[str, Any]
) -> None:
    response = ApiClient(people.gw_g03).get("/v1/workorders", grid_id="G04")
    assert response.status == 200
    assert response.body == {"items": [], "next_cursor": None}


def test_given_a_grid_worker_moved_to_another_grid_when_reading_then_the_registry_decides_at_once(
    api_env: Any, people: People, orders: dict[str, Any]
) -> None:
    from smartzone.domain.users import UserProfile
    from smartzone.repositories.users import UserRepository

    UserRepository(api_env.table_name).put(
        UserProfile(username="gw-g03-01", name="王芳", roles=["grid_worker"], grid_ids=["G04"])
    )
    client = ApiClient(people.gw_g03)
    assert client.get(f"/v1/workorders/{orders['G03'].order_id}").status == 404
    assert client.get(f"/v1/workorders/{orders['G04'].order_id}").status == 200


@pytest.mark.parametrize(
    "authorizer",
    [
        None,
        {},
        {"claims": {"cognito:username": "x", "cognito:groups": "dispatcher"}},
        {"claims": {"sub": "s-1", "cognito:username": "x", "cognito:groups": "nobody"}},
    ],
    ids=["no-authorizer", "empty", "no-subject", "no-known-group"],
)
def test_given_no_valid_claims_when_calling_then_401(api_env: Any, authorizer: Any) -> None:
    client = ApiClient(None, authorizer=authorizer) if authorizer is not None else ApiClient(None)
    for response in (
        client.get("/v1/workorders"),
        client.get("/v1/workorders/WO-1"),
        client.post("/v1/workorders/WO-1/transitions", {"action": "acknowledge"}),
        client.post(
            "/v1/reports",
            {"client_request_id": "r-1", "description": "x", "location": {"lon": 118.3, "lat": 31.3}},
        ),
        client.post("/v1/uploads", {"content_type": "image/png", "size_bytes": 10, "purpose": "order_photo"}),
    ):
        assert response.status == 401
        assert response.body["error"] == "unauthorized"


def test_given_a_reporters_phone_when_read_then_masked_for_workers_and_full_for_dispatchers(
    people: People,
) -> None:
    report = {"client_request_id": "r-1", "description": "占道堆放", "location": {"lon": 118.3, "lat": 31.3}}
    created = ApiClient(people.gw_g03).post("/v1/reports", report)
    assert created.status == 201
    order_id = created.body["order_id"]
    masked = ApiClient(people.gw_g03).get(f"/v1/workorders/{order_id}").body["reporter"]
    full = ApiClient(people.dispatcher).get(f"/v1/workorders/{order_id}").body["reporter"]
    assert masked["phone"] == "138****5678" and masked["name"] == "王*"
    assert full["phone"] == "13812345678" and full["name"] == "王芳"
    listed = ApiClient(people.gw_g03).get("/v1/workorders").body["items"]
    assert all("13812345678" not in str(o) for o in listed)
