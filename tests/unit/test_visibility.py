"""Who the caller is (claims → ``Caller``) and which orders they can see (outside reach → 404)."""

from __future__ import annotations

from typing import Any

import pytest

from smartzone.domain.alarms import AlarmType
from smartzone.domain.identity import Caller, InvalidCaller, Role, parse_groups
from smartzone.domain.lifecycle import NotFound, can_see, ensure_visible
from smartzone.domain.workorders import Category, OrderStatus, Severity, WorkOrder


def order(grid_id: str = "G03", assignee: str | None = "tech-07", **kw: Any) -> WorkOrder:
    data: dict[str, Any] = {
        "order_id": "WO-1",
        "status": OrderStatus.HANDLING,
        "category": Category.MANHOLE_TILT,
        "severity": Severity.HIGH,
        "source": "sensor",
        "grid_id": grid_id,
        "assignee": assignee,
        "title": "t",
        "description": "d",
        "device_id": "MH-0178",
        "alarm_type": AlarmType.TILT,
        "created_at": "2026-11-29T06:05:00.000Z",
        "updated_at": "2026-11-29T06:05:00.000Z",
    }
    data.update(kw)
    return WorkOrder(**data)


def caller(*groups: str, username: str = "user-1") -> Caller:
    return Caller.of(subject=f"sub-{username}", username=username, groups=groups)


# -- claims → Caller ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "raw",
    [
        "[dispatcher, admin]",
        "[dispatcher admin]",
        "dispatcher,admin",
        "dispatcher, admin",
        "dispatcher admin",
        '["dispatcher","admin"]',
        ["dispatcher", "admin"],
        ("dispatcher", "admin", "dispatcher"),
    ],
)
def test_given_groups_in_any_gateway_shape_when_parsed_then_the_same_roles(raw: object) -> None:
    assert parse_groups(raw) == ("dispatcher", "admin")
    built = Caller.from_claims({"sub": "u1", "cognito:groups": raw})
    assert built.roles == {Role.DISPATCHER, Role.ADMIN}


@pytest.mark.parametrize("raw", [None, "", "[]", "  ", 42, {"a": 1}])
def test_given_no_usable_groups_when_parsed_then_no_roles(raw: object) -> None:
    assert Caller.from_claims({"sub": "u1", "cognito:groups": raw}).roles == frozenset()


def test_given_a_cognito_authorizer_context_when_read_then_claims_are_taken_from_claims() -> None:
    ctx = {
        "claims": {
            "sub": "0f7c-uuid",
            "cognito:username": "gw-g03-01",
            "cognito:groups": "grid_worker",
            "custom:grid_id": "G99",
        }
    }
    c = Caller.from_claims(ctx)
    assert (c.subject, c.username, c.roles) == ("0f7c-uuid", "gw-g03-01", {Role.GRID_WORKER})
    assert not hasattr(c, "grid_id"), "the grid comes from the registry, never from the token"


def test_given_oidc_claims_when_read_then_groups_and_preferred_username_are_used() -> None:
    c = Caller.from_claims({"sub": "s-1", "preferred_username": "tech-07", "groups": ["technician", "staff"]})
    assert c.username == "tech-07" and c.roles == {Role.TECHNICIAN}
    assert c.groups == ("technician", "staff"), "unknown groups kept for audits, granting nothing"


def test_given_a_token_authorizer_context_when_round_tripped_then_the_caller_is_unchanged() -> None:
    original = Caller.of("s-9", "disp-01", ["dispatcher", "grid_worker"])
    context = original.authorizer_context()
    assert all(isinstance(v, str) for v in context.values())
    assert Caller.from_claims(context) == original


def test_given_groups_as_one_string_when_building_a_caller_then_they_are_parsed() -> None:
    assert Caller.of("s", "u", "dispatcher,technician").roles == {Role.DISPATCHER, Role.TECHNICIAN}


def test_given_no_username_when_read_then_the_subject_stands_in() -> None:
    assert Caller.from_claims({"sub": "abc"}).username == "abc"


@pytest.mark.parametrize("claims", [{}, {"sub": ""}, {"sub": "  "}, {"sub": 5}, {"username": "x"}])
def test_given_no_subject_when_read_then_invalid_caller(claims: dict[str, Any]) -> None:
    with pytest.raises(InvalidCaller):
        Caller.from_claims(claims)


@pytest.mark.parametrize("group", ["system", "System", "root", "sweeper"])
def test_given_a_token_claiming_a_platform_role_then_it_grants_nothing(group: str) -> None:
    assert Caller.from_claims({"sub": "x", "groups": group}).roles == frozenset()


def test_given_group_spelling_variants_then_roles_are_recognised() -> None:
    assert Caller.from_claims({"sub": "x", "groups": "Grid-Worker,DISPATCHER"}).roles == {
        Role.GRID_WORKER,
        Role.DISPATCHER,
    }


# -- visibility ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("role", ["dispatcher", "admin"])
def test_given_a_command_centre_role_then_every_order_is_visible(role: str) -> None:
    c = caller(role)
    assert can_see(order("G01", None), c, ()) and can_see(order("G77", "x"), c, ())


def test_given_a_grid_worker_then_orders_of_their_grids_only() -> None:
    c = caller("grid_worker", username="gw-g03-01")
    assert can_see(order("G03"), c, {"G03"})
    assert can_see(order("G04"), c, ["G03", "G04"])
    assert not can_see(order("G05"), c, {"G03", "G04"})
    assert not can_see(order("G03"), c, ()), "no grid in the registry: nothing visible"


def test_given_a_grid_worker_assigned_an_order_outside_their_grid_then_still_invisible() -> None:
    c = caller("grid_worker", username="gw-g03-01")
    assert not can_see(order("G05", assignee="gw-g03-01"), c, {"G03"})


def test_given_a_technician_then_only_orders_assigned_to_them() -> None:
    c = caller("technician", username="tech-07")
    assert can_see(order("G09", "tech-07"), c, ())
    assert not can_see(order("G09", "tech-08"), c, ())
    assert not can_see(order("G09", None), c, ())
    assert not can_see(order("G03", "tech-08"), c, {"G03"}), "grids are not a technician's reach"


def test_given_a_technician_then_the_match_is_on_username_not_subject() -> None:
    c = caller("technician", username="tech-07")
    assert not can_see(order("G09", c.subject), c, ())


def test_given_a_grid_worker_and_technician_then_the_union_is_visible() -> None:
    c = caller("grid_worker", "technician", username="w1")
    assert can_see(order("G03", None), c, {"G03"})
    assert can_see(order("G09", "w1"), c, {"G03"})
    assert not can_see(order("G09", "w2"), c, {"G03"})


@pytest.mark.parametrize("groups", [(), ("staff",), ("system",)])
def test_given_no_known_role_then_nothing_is_visible(groups: tuple[str, ...]) -> None:
    c = caller(*groups, username="tech-07")
    assert not can_see(order("G03", "tech-07"), c, {"G03"})


def test_given_an_order_out_of_reach_or_missing_when_ensured_then_the_same_404() -> None:
    c = caller("grid_worker")
    with pytest.raises(NotFound) as hidden:
        ensure_visible(order("G05"), c, {"G03"})
    with pytest.raises(NotFound) as missing:
        ensure_visible(None, c, {"G03"})
    assert hidden.value.status == missing.value.status == 404
    assert hidden.value.body() == missing.value.body()
    assert ensure_visible(order("G03"), c, {"G03"}).order_id == "WO-1"
