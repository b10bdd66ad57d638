"""The work-order lifecycle: THE table of allowed actions, visibility, and transition planning.

Pure logic. The API handler (and the sweeper) call, in this order:

1. :func:`can_see` (or :func:`ensure_visible`): outside the caller's reach → 404, never
   revealing that the order exists;
2. :func:`plan_transition`: decides the move or raises a :class:`TransitionError` whose
   ``status`` is the HTTP status to answer;
3. the repository writes the plan as ONE conditional write: ``version = plan.expected_version``
   (every write to an order, the telemetry pipeline's included, increments ``version``), setting
   ``plan.changes`` and appending ``plan.entries`` to the timeline. When that condition fails,
   the order changed underneath: if the client pinned a version (``plan.client_pinned``) the
   answer is 409 :class:`StaleVersion`; otherwise re-read and plan again (so ``resolve`` racing
   the sensor's clearance ends ``closed`` whichever write lands second).

The action table (DESIGN.md, "Public contract"):

| action          | from             | to                                   | who                            |
|-----------------|------------------|--------------------------------------|--------------------------------|
| ``acknowledge`` | dispatched       | acknowledged                         | grid worker, technician, disp. |
| ``verify``      | acknowledged     | verifying                            | grid worker, technician, disp. |
| ``handle``      | verifying        | handling                             | grid worker, technician, disp. |
| ``resolve``     | handling         | resolved, or closed if nothing else  | grid worker, technician, disp. |
|                 |                  | is pending (see below)               |                                |
| ``close``       | resolved         | closed (note if sensor not normal)   | dispatcher                     |
| ``cancel``      | any open         | cancelled (``reason`` required)      | dispatcher                     |
| ``reopen``      | resolved, closed | handling                             | dispatcher                     |
| ``reassign``    | any open         | same (new ``assignee`` required)     | dispatcher                     |
| ``escalate``    | any open         | same (escalation level + 1)          | dispatcher, sweeper (system)   |
| ``comment``     | any              | same (``note`` or ``photos``)        | anyone who can see the order   |

Platform-only action, deliberately not in the table (no user may request it): ``expire``
(dispatched → closed, the sweeper) closes an unacknowledged order of a transient detection type
without recurrence (:mod:`smartzone.domain.detection_transient`).

"Nothing else pending" (:func:`pending_after_resolve`): a sensor order whose sensor already
reports normal, or an order with no sensor behind it. Otherwise the order waits ``resolved`` until
the telemetry pipeline sees the sensor normal and closes it, or a dispatcher closes it with a note.

``admin`` appears in no row but ``comment``: administrators see every order (they run the
platform) but work orders only if they are also in the ``dispatcher`` group.

Checks run in a fixed order, so that each request gets one well-defined answer:
unknown action (422) → role may not do the action at all (403) → stale version (409) →
action not allowed from the current status (409) → missing or invalid fields (422).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from smartzone.domain.errors import ServiceError
from smartzone.domain.identity import Caller, Role
from smartzone.domain.timeutil import to_iso
from smartzone.domain.workorders import (
    FINAL_STATUSES,
    OPEN_STATUSES,
    SYSTEM_ROLE,
    OrderStatus,
    TimelineEntry,
    WorkOrder,
)

SYSTEM = SYSTEM_ROLE
"""The platform itself (the sweeper): not a user group, never granted by a token."""

SWEEPER_ACTOR = "system:sweeper"
AUTO_CLOSE_NOTE = "已办结且传感器已恢复正常,工单自动关闭(预警消除)"

Actor = Role | str
"""A role as the table names it: a :class:`Role`, or :data:`SYSTEM`."""


class Action(StrEnum):
    ACKNOWLEDGE = "acknowledge"
    VERIFY = "verify"
    HANDLE = "handle"
    RESOLVE = "resolve"
    CLOSE = "close"
    CANCEL = "cancel"
    REOPEN = "reopen"
    REASSIGN = "reassign"
    ESCALATE = "escalate"
    COMMENT = "comment"


class CancelReason(StrEnum):
    """Why an order is cancelled (counted in statistics, so a closed list)."""

    FALSE_POSITIVE = "false_positive"
    """误报: the alarm or report was wrong."""
    DUPLICATE = "duplicate"
    """重复: another order covers the same problem."""
    DEVICE_FAULT = "device_fault"
    """设备故障: the sensor misbehaved; the thing it watches is fine."""
    OUT_OF_SCOPE = "out_of_scope"
    """不属于本平台处置范围."""
    OTHER = "other"
    """其他: a note says why."""


CANCEL_REASON_ZH = {
    CancelReason.FALSE_POSITIVE: "误报",
    CancelReason.DUPLICATE: "重复工单",
    CancelReason.DEVICE_FAULT: "设备故障",
    CancelReason.OUT_OF_SCOPE: "不属于处置范围",
    CancelReason.OTHER: "其他",
}

ANY_STATUS = frozenset(OrderStatus)
WORKERS: frozenset[Actor] = frozenset({Role.GRID_WORKER, Role.TECHNICIAN, Role.DISPATCHER})
DISPATCH: frozenset[Actor] = frozenset({Role.DISPATCHER})
EVERYONE: frozenset[Actor] = frozenset(
    {Role.ADMIN, Role.DISPATCHER, Role.GRID_WORKER, Role.TECHNICIAN, SYSTEM}
)
"""Everyone who works orders (departments and data stewards have no part in them)."""


@dataclass(frozen=True)
class ActionRule:
    """One row of the action table."""

    sources: frozenset[OrderStatus]
    target: OrderStatus | None
    """``None``: the status stays as it is."""
    who: frozenset[Actor]


ACTION_TABLE: Mapping[Action, ActionRule] = {
    Action.ACKNOWLEDGE: ActionRule(frozenset({OrderStatus.DISPATCHED}), OrderStatus.ACKNOWLEDGED, WORKERS),
    Action.VERIFY: ActionRule(frozenset({OrderStatus.ACKNOWLEDGED}), OrderStatus.VERIFYING, WORKERS),
    Action.HANDLE: ActionRule(frozenset({OrderStatus.VERIFYING}), OrderStatus.HANDLING, WORKERS),
    Action.RESOLVE: ActionRule(frozenset({OrderStatus.HANDLING}), OrderStatus.RESOLVED, WORKERS),
    Action.CLOSE: ActionRule(frozenset({OrderStatus.RESOLVED}), OrderStatus.CLOSED, DISPATCH),
    Action.CANCEL: ActionRule(OPEN_STATUSES, OrderStatus.CANCELLED, DISPATCH),
    Action.REOPEN: ActionRule(
        frozenset({OrderStatus.RESOLVED, OrderStatus.CLOSED}), OrderStatus.HANDLING, DISPATCH
    ),
    Action.REASSIGN: ActionRule(OPEN_STATUSES, None, DISPATCH),
    Action.ESCALATE: ActionRule(OPEN_STATUSES, None, frozenset({Role.DISPATCHER, SYSTEM})),
    Action.COMMENT: ActionRule(ANY_STATUS, None, EVERYONE),
}
"""THE table of allowed actions by status and role. ``resolve`` may end in ``closed`` instead of
``resolved`` (see :func:`plan_transition`)."""

_ROLE_PREFERENCE: tuple[Actor, ...] = (
    Role.DISPATCHER,
    Role.GRID_WORKER,
    Role.TECHNICIAN,
    Role.ADMIN,
    SYSTEM,
)
"""Which of a caller's roles the timeline records when several allow the action."""


# -- errors ----------------------------------------------------------------------------------------
class TransitionError(ServiceError):
    """A request the lifecycle refuses; ``status`` is the HTTP status to answer with."""


class NotFound(TransitionError):
    """Outside the caller's reach: answered exactly like an order that does not exist."""

    status = 404
    code = "not_found"


class Forbidden(TransitionError):
    """The caller sees the order but their role may not do this action."""

    status = 403
    code = "forbidden"


class IllegalTransition(TransitionError):
    """The action is not allowed from the order's current status."""

    status = 409
    code = "illegal_transition"


class StaleVersion(TransitionError):
    """The client acted on an older version of the order."""

    status = 409
    code = "stale_version"


class InvalidField(TransitionError):
    """A request field has a value the action cannot take."""

    status = 422
    code = "invalid_field"


class MissingField(InvalidField):
    """The action needs a field the request does not have."""

    code = "missing_field"


# -- the request and the plan -----------------------------------------------------------------------
class TransitionRequest(BaseModel):
    """``POST /v1/workorders/{id}/transitions`` body."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    action: Action
    note: str | None = Field(None, max_length=2000)
    reason: str | None = Field(None, max_length=64)
    photos: list[Annotated[str, StringConstraints(max_length=512)]] = Field(
        default_factory=list, max_length=20
    )
    """Keys of photos uploaded through ``POST /v1/uploads``."""
    assignee: str | None = Field(None, max_length=128)
    version: int | None = Field(None, ge=1)


@dataclass(frozen=True)
class TransitionPlan:
    """What one accepted transition does to an order (written as one conditional write)."""

    order_id: str
    action: Action
    actor: str
    role: str
    from_status: OrderStatus
    to_status: OrderStatus
    expected_version: int
    """The write's condition: the version the plan was computed from."""
    client_pinned: bool
    """The client sent ``version``: a failed condition is a 409, not a reason to re-plan."""
    entries: tuple[TimelineEntry, ...]
    """Timeline entries to append, in order."""
    changes: Mapping[str, Any] = field(default_factory=dict)
    """Attributes to set (a ``None`` value removes the attribute), ``status`` and ``version`` included."""
    reason: CancelReason | None = None

    @property
    def new_version(self) -> int:
        return self.expected_version + 1

    @property
    def status_changed(self) -> bool:
        return self.from_status is not self.to_status

    def apply(self, order: WorkOrder) -> WorkOrder:
        """The order after the write (what the repository's conditional write produces)."""
        if order.version != self.expected_version or order.order_id != self.order_id:
            raise StaleVersion(f"plan was made for version {self.expected_version}", field="version")
        return order.model_copy(update={**self.changes, "timeline": [*order.timeline, *self.entries]})


# -- visibility ------------------------------------------------------------------------------------
def can_see(order: WorkOrder, caller: Caller, caller_grid_ids: Collection[str] = ()) -> bool:
    """Whether ``caller`` may see ``order`` at all.

    Dispatchers and admins see every order; grid workers the orders of their grids (looked up
    in the registry, never taken from the token); technicians the orders assigned to them.
    A caller with several roles sees the union.
    """
    if caller.sees_all_orders:
        return True
    if caller.is_grid_worker and order.grid_id in caller_grid_ids:
        return True
    return caller.is_technician and order.assignee is not None and order.assignee == caller.username


def ensure_visible(
    order: WorkOrder | None, caller: Caller, caller_grid_ids: Collection[str] = ()
) -> WorkOrder:
    """The order, or :class:`NotFound` both when it does not exist and when it is out of reach."""
    if order is None or not can_see(order, caller, caller_grid_ids):
        raise NotFound("work order not found")
    return order


def allowed_actions(order: WorkOrder, roles: Iterable[Actor]) -> list[Action]:
    """The actions the table allows these roles on this order now (for the app's buttons)."""
    held = _actors(roles)
    return [
        action for action, rule in ACTION_TABLE.items() if order.status in rule.sources and held & rule.who
    ]


def is_sensor_order(order: WorkOrder) -> bool:
    """Orders raised by a device alarm close only once the sensor is back to normal."""
    return order.device_id is not None and order.alarm_type is not None


def pending_after_resolve(order: WorkOrder, sensor_normal: bool) -> bool:
    """Whether a resolved order still waits for something before it may close.

    Only a sensor order waits (for its sensor to report normal); an order without a sensor
    behind it (a patrol report, an incident) has nothing pending and closes on ``resolve``.
    """
    return is_sensor_order(order) and not sensor_normal


# -- planning --------------------------------------------------------------------------------------
def _actors(roles: Iterable[Actor]) -> frozenset[Actor]:
    held: set[Actor] = set()
    for role in roles:
        if isinstance(role, Role):
            held.add(role)
        elif role == SYSTEM:
            held.add(SYSTEM)
        else:
            try:
                held.add(Role(role))
            except ValueError:
                continue
    return frozenset(held)


def _parse_action(action: Action | str) -> Action:
    try:
        return Action(action)
    except ValueError:
        raise InvalidField(f"unknown action {str(action)[:40]!r}", field="action") from None


def _text(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value or None


def plan_transition(
    order: WorkOrder,
    *,
    actor: str,
    roles: Iterable[Actor],
    request: TransitionRequest,
    now_ms: int,
    sensor_normal: bool | None = None,
) -> TransitionPlan:
    """Decide what ``request`` does to ``order``, or raise a :class:`TransitionError`.

    ``actor`` is the caller's username (or :data:`SWEEPER_ACTOR`); ``roles`` their roles
    (:data:`SYSTEM` for the sweeper). ``sensor_normal`` defaults to the order's own flag.
    Visibility is NOT checked here: call :func:`can_see` first.
    """
    action = _parse_action(request.action)
    rule = ACTION_TABLE[action]
    held = _actors(roles)
    allowed = held & rule.who
    if not allowed:
        raise Forbidden(f"your role may not {action.value} work orders")
    role = next(r for r in _ROLE_PREFERENCE if r in allowed)
    if request.version is not None and request.version != order.version:
        raise StaleVersion(
            f"work order is at version {order.version}, not {request.version}; reload it", field="version"
        )
    current = order.status
    if current not in rule.sources:
        raise IllegalTransition(f"cannot {action.value} a work order that is {current.value}")

    normal = order.sensor_normal if sensor_normal is None else sensor_normal
    note = _text(request.note)
    photos = [p.strip() for p in request.photos if p and p.strip()]
    at = to_iso(now_ms)
    target = rule.target or current
    changes: dict[str, Any] = {}
    reason: CancelReason | None = None
    extra: list[TimelineEntry] = []
    entry_note = note

    if action is Action.RESOLVE:
        changes["resolved_at"] = at
        if not pending_after_resolve(order, normal):
            extra.append(
                TimelineEntry(
                    at=at,
                    actor=actor,
                    role=str(role),
                    action="close",
                    from_status=OrderStatus.RESOLVED,
                    to_status=OrderStatus.CLOSED,
                    note=AUTO_CLOSE_NOTE,
                )
            )
            changes["closed_at"] = at
    elif action is Action.CLOSE:
        if is_sensor_order(order) and not normal and note is None:
            raise MissingField("closing while the sensor is not yet normal needs a note", field="note")
        changes["closed_at"] = at
    elif action is Action.CANCEL:
        if request.reason is None or not request.reason.strip():
            raise MissingField("cancelling needs a reason, e.g. false_positive", field="reason")
        try:
            reason = CancelReason(request.reason.strip())
        except ValueError:
            known = ", ".join(r.value for r in CancelReason)
            raise InvalidField(f"reason must be one of: {known}", field="reason") from None
        if reason is CancelReason.OTHER and note is None:
            raise MissingField("cancelling for reason 'other' needs a note", field="note")
        label = f"取消原因:{CANCEL_REASON_ZH[reason]}({reason.value})"
        entry_note = f"{label}。{note}" if note else label
    elif action is Action.REOPEN:
        changes["resolved_at"] = None
        changes["closed_at"] = None
    elif action is Action.REASSIGN:
        assignee = _text(request.assignee)
        if assignee is None:
            raise MissingField("reassigning needs the new assignee", field="assignee")
        changes["assignee"] = assignee
        move = f"改派:{order.assignee or '未指派'} → {assignee}"
        entry_note = f"{move}。{note}" if note else move
    elif action is Action.ESCALATE:
        level = order.escalation_level + 1
        changes["escalation_level"] = level
        label = f"升级至 {level} 级"
        entry_note = f"{label}。{note}" if note else label
    elif action is Action.COMMENT and note is None and not photos:
        raise MissingField("a comment needs a note or photos", field="note")

    entry = TimelineEntry(
        at=at,
        actor=actor,
        role=str(role),
        action=action.value,
        from_status=current if rule.target is not None else None,
        to_status=target if rule.target is not None else None,
        note=entry_note,
        photos=photos,
    )
    final = OrderStatus.CLOSED if extra else target
    changes.update(status=final, version=order.version + 1, updated_at=at)
    return TransitionPlan(
        order_id=order.order_id,
        action=action,
        actor=actor,
        role=str(role),
        from_status=current,
        to_status=final,
        expected_version=order.version,
        client_pinned=request.version is not None,
        entries=(entry, *extra),
        changes=changes,
        reason=reason,
    )


def sweeper_escalation(order: WorkOrder, now_ms: int, note: str) -> TransitionPlan:
    """The sweeper's escalation of an overdue order (role :data:`SYSTEM`)."""
    return plan_transition(
        order,
        actor=SWEEPER_ACTOR,
        roles=[SYSTEM],
        request=TransitionRequest(action=Action.ESCALATE, note=note),
        now_ms=now_ms,
    )


__all__ = [
    "ACTION_TABLE",
    "FINAL_STATUSES",
    "OPEN_STATUSES",
    "SYSTEM",
    "Action",
    "ActionRule",
    "CancelReason",
    "Forbidden",
    "IllegalTransition",
    "InvalidField",
    "MissingField",
    "NotFound",
    "StaleVersion",
    "TransitionError",
    "TransitionPlan",
    "TransitionRequest",
    "allowed_actions",
    "can_see",
    "ensure_visible",
    "is_sensor_order",
    "pending_after_resolve",
    "plan_transition",
    "sweeper_escalation",
]
