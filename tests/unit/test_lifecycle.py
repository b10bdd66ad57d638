"""The work-order action table and transition planning (DESIGN.md, "Public contract").

The expected table below is written out again from DESIGN.md on purpose: every (status, action,
role) combination is checked against it, so a change to ``ACTION_TABLE`` fails here.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smartzone.domain.alarms import AlarmType
from smartzone.domain.identity import Role
from smartzone.domain.lifecycle import (
    ACTION_TABLE,
    SYSTEM,
    Action,
    CancelReason,
    Forbidden,
    IllegalTransition,
    InvalidField,
    MissingField,
    StaleVersion,
    TransitionError,
    TransitionRequest,
    allowed_actions,
    plan_transition,
    sweeper_escalation,
)
from smartzone.domain.timeutil import from_iso, to_iso
from smartzone.domain.workorders import (
    Category,
    OrderStatus,
    Severity,
    TimelineEntry,
    WorkOrder,
)

T0 = from_iso("2026-11-29T14:05:00+08:00")
MIN = 60_000
NOW = T0 + 30 * MIN

# -- the table as DESIGN.md states it ---------------------------------------------------------------
S = OrderStatus
ALL = frozenset(S)
OPEN = ALL - {S.CLOSED, S.CANCELLED}
WORKERS = frozenset({"grid_worker", "technician", "dispatcher"})
DISPATCHER = frozenset({"dispatcher"})
ROLES = ("admin", "dispatcher", "grid_worker", "technician", SYSTEM)

EXPECTED: dict[str, tuple[frozenset[OrderStatus], OrderStatus | None, frozenset[str]]] = {
    "acknowledge": (frozenset({S.DISPATCHED}), S.ACKNOWLEDGED, WORKERS),
    "verify": (frozenset({S.ACKNOWLEDGED}), S.VERIFYING, WORKERS),
    "handle": (frozenset({S.VERIFYING}), S.HANDLING, WORKERS),
    "resolve": (frozenset({S.HANDLING}), S.RESOLVED, WORKERS),
    "close": (frozenset({S.RESOLVED}), S.CLOSED, DISPATCHER),
    "cancel": (OPEN, S.CANCELLED, DISPATCHER),
    "reopen": (frozenset({S.RESOLVED, S.CLOSED}), S.HANDLING, DISPATCHER),
    "reassign": (OPEN, None, DISPATCHER),
    "escalate": (OPEN, None, frozenset({"dispatcher", SYSTEM})),
    "comment": (ALL, None, frozenset(ROLES)),
}


def sensor_order(status: OrderStatus = S.DISPATCHED, *, sensor_normal: bool = False, **kw: Any) -> WorkOrder:
    """Cover MH-0178's tilt order in grid G03, at ``status``."""
    data: dict[str, Any] = {
        "order_id": "WO-MH-0178-TILT-1",
        "version": 3,
        "status": status,
        "category": Category.MANHOLE_TILT,
        "severity": Severity.HIGH,
        "source": "sensor",
        "grid_id": "G03",
        "assignee": "gw-g03-01",
        "title": "178号井倾斜告警",
        "description": "倾斜 25.3°",
        "device_id": "MH-0178",
        "alarm_type": AlarmType.TILT,
        "sensor_normal": sensor_normal,
        "created_at": to_iso(T0),
        "updated_at": to_iso(T0 + MIN),
        "timeline": [
            TimelineEntry(
                at=to_iso(T0), actor="system:telemetry", role="system", action="raise", to_status=S.DISPATCHED
            )
        ],
    }
    data.update(kw)
    return WorkOrder(**data)


def report_order(status: OrderStatus = S.HANDLING) -> WorkOrder:
    """A patrol report's order: no sensor behind it."""
    return sensor_order(status, source="report", device_id=None, alarm_type=None)


def full_request(action: str, **kw: Any) -> TransitionRequest:
    """A request carrying every field any action may need."""
    fields: dict[str, Any] = {
        "action": action,
        "note": "现场已处理",
        "reason": "false_positive",
        "assignee": "tech-07",
        "version": 3,
    }
    fields.update(kw)
    return TransitionRequest(**fields)


def plan(order: WorkOrder, action: str, roles: Any = ("dispatcher",), **kw: Any):
    return plan_transition(
        order, actor="someone", roles=roles, request=full_request(action, **kw), now_ms=NOW
    )


# -- the table -----------------------------------------------------------------------------------
def test_given_design_md_when_reading_the_action_table_then_it_is_exactly_the_documented_one() -> None:
    actual = {
        action.value: (rule.sources, rule.target, frozenset(str(r) for r in rule.who))
        for action, rule in ACTION_TABLE.items()
    }
    assert actual == EXPECTED


COMBINATIONS = [(status, action, role) for status in S for action in EXPECTED for role in ROLES]


@pytest.mark.parametrize(("status", "action", "role"), COMBINATIONS, ids=lambda v: str(v))
def test_given_every_status_action_and_role_when_planned_then_the_table_decides(
    status: OrderStatus, action: str, role: str
) -> None:
    """Given an order in ``status`` and a complete request, when ``role`` asks for ``action``,
    then it is 403 unless the role is listed, else 409 unless the status is a source, else the
    documented target (a not-yet-normal sensor order, so resolve stays ``resolved``)."""
    sources, target, who = EXPECTED[action]
    order = sensor_order(status)
    if role not in who:
        with pytest.raises(Forbidden) as err:
            plan(order, action, roles=[role])
        assert err.value.status == 403
        return
    if status not in sources:
        with pytest.raises(IllegalTransition) as ill:
            plan(order, action, roles=[role])
        assert ill.value.status == 409
        return
    result = plan(order, action, roles=[role])
    expected_to = target or status
    assert (result.from_status, result.to_status) == (status, expected_to)
    assert result.role == role and result.actor == "someone"
    assert result.expected_version == 3 and result.new_version == 4
    entry = result.entries[0]
    assert entry.action == action and entry.role == role and entry.at == to_iso(NOW)
    if target is None:
        assert entry.from_status is None and entry.to_status is None
    else:
        assert (entry.from_status, entry.to_status) == (status, target)
    after = result.apply(order)
    assert after.status is expected_to and after.version == 4
    assert after.timeline[-len(result.entries) :] == list(result.entries)
    assert after.updated_at == to_iso(NOW)


@pytest.mark.parametrize("status", list(S))
def test_given_each_status_when_listing_allowed_actions_then_they_match_the_table(
    status: OrderStatus,
) -> None:
    order = sensor_order(status)
    for role in ROLES:
        expected = [a for a, (src, _, who) in EXPECTED.items() if status in src and role in who]
        assert [a.value for a in allowed_actions(order, [role])] == expected


# -- precedence of errors ------------------------------------------------------------------------------
def test_given_a_role_without_the_action_when_the_version_is_also_stale_then_403_wins() -> None:
    with pytest.raises(Forbidden):
        plan(sensor_order(S.RESOLVED), "close", roles=["grid_worker"], version=1)


def test_given_a_stale_version_when_the_move_is_also_illegal_then_stale_version_is_reported() -> None:
    with pytest.raises(StaleVersion) as err:
        plan(sensor_order(S.CLOSED), "acknowledge", version=2)
    assert err.value.status == 409 and err.value.field == "version"
    assert err.value.body() == {"error": "stale_version", "message": err.value.message, "field": "version"}


def test_given_an_illegal_move_when_fields_are_also_missing_then_409_wins() -> None:
    with pytest.raises(IllegalTransition):
        plan(sensor_order(S.CANCELLED), "cancel", reason=None)


# -- versions -----------------------------------------------------------------------------------------
def test_given_the_current_version_when_acknowledging_then_the_write_expects_it() -> None:
    result = plan(sensor_order(S.DISPATCHED), "acknowledge", roles=["grid_worker"], version=3)
    assert result.expected_version == 3 and result.client_pinned
    assert result.changes["version"] == 4


def test_given_no_version_when_planning_then_the_order_read_is_expected_and_not_pinned() -> None:
    result = plan(sensor_order(S.DISPATCHED), "acknowledge", roles=["technician"], version=None)
    assert result.expected_version == 3 and not result.client_pinned


@pytest.mark.parametrize("stale", [1, 2, 4, 99])
def test_given_another_version_when_planning_then_stale_version_409(stale: int) -> None:
    with pytest.raises(StaleVersion):
        plan(sensor_order(S.DISPATCHED), "acknowledge", roles=["grid_worker"], version=stale)


def test_given_a_plan_when_the_order_moved_on_meanwhile_then_applying_it_is_a_stale_version() -> None:
    order = sensor_order(S.DISPATCHED)
    first = plan(order, "acknowledge", roles=["grid_worker"], version=None)
    moved = first.apply(order)
    with pytest.raises(StaleVersion):
        first.apply(moved)


def test_given_two_concurrent_acknowledgements_when_both_planned_on_one_version_then_only_one_applies() -> (
    None
):
    """Given two workers reading version 3, when both acknowledge, then the write conditioned on
    version 3 lands once; the loser re-plans on version 4 and gets 409 (already acknowledged)."""
    order = sensor_order(S.DISPATCHED)
    a = plan(order, "acknowledge", roles=["grid_worker"], version=None)
    b = plan(order, "acknowledge", roles=["technician"], version=None)
    stored = a.apply(order)
    with pytest.raises(StaleVersion):
        b.apply(stored)
    with pytest.raises(IllegalTransition):
        plan(stored, "acknowledge", roles=["technician"], version=None)


# -- resolve and close: the two-condition closure -----------------------------------------------------
def test_given_a_sensor_already_normal_when_resolving_then_the_order_closes() -> None:
    order = sensor_order(S.HANDLING, sensor_normal=True)
    result = plan(order, "resolve", roles=["grid_worker"], note="井盖已复位")
    assert result.to_status is S.CLOSED
    resolve, close = result.entries
    assert (resolve.action, resolve.from_status, resolve.to_status) == ("resolve", S.HANDLING, S.RESOLVED)
    assert (close.action, close.from_status, close.to_status) == ("close", S.RESOLVED, S.CLOSED)
    assert resolve.note == "井盖已复位"
    after = result.apply(order)
    assert after.status is S.CLOSED and after.resolved_at == after.closed_at == to_iso(NOW)


def test_given_a_sensor_not_yet_normal_when_resolving_then_the_order_waits_resolved() -> None:
    result = plan(sensor_order(S.HANDLING), "resolve", roles=["technician"])
    assert result.to_status is S.RESOLVED and len(result.entries) == 1
    after = result.apply(sensor_order(S.HANDLING))
    assert after.resolved_at == to_iso(NOW) and after.closed_at is None


def test_given_the_sensor_flag_passed_explicitly_when_resolving_then_it_overrides_the_order_copy() -> None:
    result = plan_transition(
        sensor_order(S.HANDLING),
        actor="gw",
        roles=[Role.GRID_WORKER],
        request=TransitionRequest(action=Action.RESOLVE),
        now_ms=NOW,
        sensor_normal=True,
    )
    assert result.to_status is S.CLOSED


def test_given_a_patrol_report_when_resolving_then_nothing_is_pending_and_it_closes() -> None:
    assert plan(report_order(S.HANDLING), "resolve", roles=["grid_worker"]).to_status is S.CLOSED


def test_given_a_sensor_not_normal_when_closing_without_a_note_then_422_naming_note() -> None:
    with pytest.raises(MissingField) as err:
        plan(sensor_order(S.RESOLVED), "close", note=None)
    assert err.value.status == 422 and err.value.field == "note"


def test_given_a_sensor_not_normal_when_closing_with_a_blank_note_then_422() -> None:
    with pytest.raises(MissingField):
        plan(sensor_order(S.RESOLVED), "close", note="   ")


def test_given_a_sensor_not_normal_when_closing_with_a_note_then_closed() -> None:
    result = plan(sensor_order(S.RESOLVED), "close", note="传感器故障,已人工确认井盖复位")
    assert result.to_status is S.CLOSED and result.changes["closed_at"] == to_iso(NOW)


def test_given_a_sensor_normal_when_closing_without_a_note_then_closed() -> None:
    assert plan(sensor_order(S.RESOLVED, sensor_normal=True), "close", note=None).to_status is S.CLOSED


def test_given_a_closed_order_when_reopened_and_resolved_again_then_it_closes_again() -> None:
    closed = sensor_order(S.CLOSED, sensor_normal=True, resolved_at=to_iso(T0), closed_at=to_iso(T0))
    reopened = plan(closed, "reopen", note="复查发现井盖松动", version=None).apply(closed)
    assert reopened.status is S.HANDLING and reopened.resolved_at is None and reopened.closed_at is None
    again = plan(reopened, "resolve", roles=["technician"], version=None).apply(reopened)
    assert again.status is S.CLOSED and again.version == 5


# -- required fields ------------------------------------------------------------------------------------
@pytest.mark.parametrize("reason", [None, "", "  "])
def test_given_no_reason_when_cancelling_then_422_naming_reason(reason: str | None) -> None:
    with pytest.raises(MissingField) as err:
        plan(sensor_order(S.DISPATCHED), "cancel", reason=reason)
    assert err.value.field == "reason"


def test_given_an_unknown_reason_when_cancelling_then_422_naming_reason() -> None:
    with pytest.raises(InvalidField) as err:
        plan(sensor_order(S.DISPATCHED), "cancel", reason="bored")
    assert err.value.field == "reason" and err.value.status == 422
    assert not isinstance(err.value, MissingField)


def test_given_a_false_positive_when_cancelling_then_cancelled_with_the_reason_on_the_timeline() -> None:
    result = plan(sensor_order(S.VERIFYING), "cancel", reason="false_positive", note="现场核查井盖完好")
    assert result.to_status is S.CANCELLED and result.reason is CancelReason.FALSE_POSITIVE
    note = result.entries[0].note or ""
    assert "false_positive" in note and "误报" in note and "现场核查井盖完好" in note


def test_given_reason_other_without_a_note_when_cancelling_then_422_naming_note() -> None:
    with pytest.raises(MissingField) as err:
        plan(sensor_order(S.DISPATCHED), "cancel", reason="other", note=None)
    assert err.value.field == "note"


@pytest.mark.parametrize("assignee", [None, "   "])
def test_given_no_assignee_when_reassigning_then_422_naming_assignee(assignee: str | None) -> None:
    with pytest.raises(MissingField) as err:
        plan(sensor_order(S.HANDLING), "reassign", assignee=assignee)
    assert err.value.field == "assignee"


def test_given_a_new_assignee_when_reassigning_then_the_assignee_changes_and_status_stays() -> None:
    order = sensor_order(S.HANDLING)
    after = plan(order, "reassign", assignee="tech-09", note=None).apply(order)
    assert after.assignee == "tech-09" and after.status is S.HANDLING
    assert "gw-g03-01" in (after.timeline[-1].note or "") and "tech-09" in (after.timeline[-1].note or "")


def test_given_a_comment_without_note_or_photos_then_422_naming_note() -> None:
    with pytest.raises(MissingField) as err:
        plan(sensor_order(S.HANDLING), "comment", roles=["technician"], note=None)
    assert err.value.field == "note"


def test_given_a_photo_only_comment_then_it_is_recorded_with_its_photos() -> None:
    result = plan(sensor_order(S.CLOSED), "comment", roles=["admin"], note=None, photos=["u/1.jpg"])
    assert result.to_status is S.CLOSED and result.entries[0].photos == ["u/1.jpg"]


def test_given_photos_on_a_transition_then_the_timeline_entry_keeps_them() -> None:
    result = plan(sensor_order(S.VERIFYING), "handle", roles=["technician"], photos=["a.jpg", " ", "b.jpg"])
    assert result.entries[0].photos == ["a.jpg", "b.jpg"]


def test_given_an_unknown_action_when_constructed_then_the_request_is_refused() -> None:
    with pytest.raises(ValueError):
        TransitionRequest(action="teleport")  # type: ignore[arg-type]
    bogus = TransitionRequest.model_construct(action="teleport", photos=[])  # type: ignore[arg-type]
    with pytest.raises(InvalidField) as err:
        plan_transition(sensor_order(), actor="x", roles=["dispatcher"], request=bogus, now_ms=NOW)
    assert err.value.field == "action"


def test_given_unknown_fields_in_the_body_then_the_request_is_refused() -> None:
    with pytest.raises(ValueError):
        TransitionRequest(action=Action.COMMENT, note="x", status="closed")  # type: ignore[call-arg]


# -- escalation -----------------------------------------------------------------------------------------
def test_given_an_open_order_when_escalated_then_the_level_rises_by_one() -> None:
    order = sensor_order(S.ACKNOWLEDGED, escalation_level=1)
    after = plan(order, "escalate", note=None).apply(order)
    assert after.escalation_level == 2 and after.status is S.ACKNOWLEDGED
    assert "2" in (after.timeline[-1].note or "")


def test_given_an_overdue_order_when_the_sweeper_escalates_then_it_is_recorded_as_system() -> None:
    order = sensor_order(S.DISPATCHED)
    result = sweeper_escalation(order, NOW, "超过 10 分钟未接单")
    assert result.role == SYSTEM and result.actor == "system:sweeper"
    assert result.changes["escalation_level"] == 1 and "超过 10 分钟未接单" in (result.entries[0].note or "")


def test_given_a_closed_order_when_the_sweeper_escalates_then_409() -> None:
    with pytest.raises(IllegalTransition):
        sweeper_escalation(sensor_order(S.CLOSED), NOW, "overdue")


# -- roles --------------------------------------------------------------------------------------------------
def test_given_a_grid_worker_who_is_also_dispatcher_when_closing_then_allowed_as_dispatcher() -> None:
    result = plan(sensor_order(S.RESOLVED), "close", roles=[Role.GRID_WORKER, Role.DISPATCHER])
    assert result.role == "dispatcher"


def test_given_an_admin_only_when_working_an_order_then_403() -> None:
    with pytest.raises(Forbidden) as err:
        plan(sensor_order(S.DISPATCHED), "acknowledge", roles=[Role.ADMIN])
    assert err.value.status == 403


@pytest.mark.parametrize("roles", [[], ["root"], ["System"], ["sweeper"]])
def test_given_no_known_role_when_acting_then_403(roles: list[str]) -> None:
    with pytest.raises(Forbidden):
        plan(sensor_order(S.DISPATCHED), "comment", roles=roles)


def test_given_error_types_then_each_maps_to_its_http_status() -> None:
    assert {
        cls.__name__: cls.status for cls in (Forbidden, IllegalTransition, StaleVersion, MissingField)
    } == {
        "Forbidden": 403,
        "IllegalTransition": 409,
        "StaleVersion": 409,
        "MissingField": 422,
    }


# -- properties -------------------------------------------------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.sampled_from(list(Action)), st.sampled_from(ROLES), st.booleans()),
        max_size=25,
    )
)
def test_given_any_sequence_of_requests_then_every_accepted_one_is_consistent(
    steps: list[tuple[Action, str, bool]],
) -> None:
    """Given any sequence of actions by any role, when each is planned and applied, then each
    accepted one adds exactly one version, its entries continue the timeline, cancelled orders
    never move again, and the order's status is the last status-changing entry's target."""
    order = sensor_order(S.DISPATCHED)
    now = NOW
    for action, role, normal in steps:
        now += MIN
        order = order.model_copy(update={"sensor_normal": normal})
        try:
            result = plan_transition(
                order, actor="p", roles=[role], request=full_request(action, version=None), now_ms=now
            )
        except TransitionError as exc:
            assert exc.status in {403, 409, 422}
            continue
        before = order
        order = result.apply(order)
        assert before.status is not S.CANCELLED or order.status is S.CANCELLED
        assert order.version == before.version + 1
        assert order.timeline[: len(before.timeline)] == before.timeline
        moves = [e.to_status for e in order.timeline if e.to_status is not None]
        assert moves[-1] is order.status
