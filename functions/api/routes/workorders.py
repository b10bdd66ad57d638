"""`/v1/workorders` routes: list (indexes only, signed cursors), detail, transitions.

Reach (DESIGN.md, "Authorization"): dispatchers and admins see every order; grid workers the
orders of their grids (from the user registry, never from the token); technicians the orders
assigned to them; a caller with several roles sees the union. Anything else is answered 404.

Listing with a ``grid_id`` outside the caller's reach answers an EMPTY page (200), never another
grid's orders: the list is always "the orders you can see that match these filters". The cursor
is signed together with the caller's effective query (indexes, partitions, filters), so a cursor
replayed with another filter, by a caller with other grids, or altered, is refused with 400.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from smartzone.domain.identity import Caller
from smartzone.domain.lifecycle import (
    Action,
    TransitionPlan,
    TransitionRequest,
    allowed_actions,
    can_see,
    ensure_visible,
    plan_transition,
)
from smartzone.domain.masking import mask_for
from smartzone.domain.stages import stage_durations
from smartzone.domain.timeutil import TimestampError, now_ms, parse_ts_ms, to_iso
from smartzone.domain.workorders import (
    Category,
    OrderStatus,
    TimelineEntry,
    WorkOrder,
)
from smartzone.repositories.cursor import decode_cursor, encode_cursor
from smartzone.repositories.workorders import (
    MAX_PAGE,
    Partition,
    WorkOrderRepository,
    assignee_partition,
    grid_partition,
    status_partition,
)
from smartzone.settings import get_settings

from ..context import caller_of, cursor_secret, grids_of, users
from ..errors import Unprocessable
from ..media import MediaLink, media_links

router = Router()

DEFAULT_PAGE = 20
UPLOAD_PREFIX = "uploads/"
ID_PATTERN = r"^[A-Za-z0-9._:#-]+$"


@cache
def _repository(table_name: str) -> WorkOrderRepository:
    return WorkOrderRepository(table_name)


def orders() -> WorkOrderRepository:
    return _repository(get_settings().table_name)


# -- response models ---------------------------------------------------------------------------------
class ReporterOut(BaseModel):
    """Who filed a patrol report; name and phone masked unless the caller may see them."""

    username: str
    name: str | None = None
    phone: str | None = None


class OrderSummary(WorkOrder):
    """A work order in a list: every field of the order but its timeline (the reporter masked)."""

    reporter: ReporterOut | None = None  # type: ignore[assignment]
    timeline: SkipJsonSchema[list[TimelineEntry]] = Field(default_factory=list, exclude=True)


class TimelineOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    at: str
    actor: str
    role: str
    action: str
    from_status: OrderStatus | None = Field(None, serialization_alias="from")
    to_status: OrderStatus | None = Field(None, serialization_alias="to")
    note: str | None = None
    photos: list[str] = Field(default_factory=list)


class OrderDetail(OrderSummary):
    """``GET /v1/workorders/{id}``: the order, its timeline and how long each stage took."""

    timeline: list[TimelineOut]  # type: ignore[assignment]
    stage_durations: dict[str, float]
    """Seconds spent in each completed stage (``dispatched_to_acknowledged``, …)."""
    alarm_to_clearance_s: float | None
    """Creation → closure in seconds, once the order is closed."""
    current_status_since: str
    allowed_actions: list[Action]
    """What the caller may do to the order now (the app's buttons)."""
    media: list[MediaLink] = Field(default_factory=list)
    """Detection orders: presigned links (15 min) to snapshots and drone before/after images."""


class OrderPage(BaseModel):
    items: list[OrderSummary]
    next_cursor: str | None = None


# -- rendering -------------------------------------------------------------------------------------
def _summary_fields(order: WorkOrder, caller: Caller) -> dict[str, object]:
    data = order.model_dump(exclude={"timeline", "reporter"})
    reporter = None
    if order.reporter is not None:
        masking = mask_for(caller)
        reporter = ReporterOut(
            username=order.reporter.username,
            name=masking.name(order.reporter.name),
            phone=masking.phone(order.reporter.phone),
        )
    return {**data, "reporter": reporter}


def summary(order: WorkOrder, caller: Caller) -> OrderSummary:
    return OrderSummary.model_validate(_summary_fields(order, caller))


def detail(order: WorkOrder, caller: Caller) -> OrderDetail:
    stages = stage_durations(order)
    total = stages.alarm_to_clearance_ms
    return OrderDetail.model_validate(
        {
            **_summary_fields(order, caller),
            "timeline": [_timeline_out(e) for e in order.timeline],
            "stage_durations": {str(stage): ms / 1000 for stage, ms in stages.stages_ms.items()},
            "alarm_to_clearance_s": None if total is None else total / 1000,
            "current_status_since": stages.current_since,
            "allowed_actions": allowed_actions(order, caller.roles),
        }
    )


def _timeline_out(entry: TimelineEntry) -> TimelineOut:
    return TimelineOut.model_validate(entry.model_dump())


# -- reach -----------------------------------------------------------------------------------------
def caller_grids(caller: Caller) -> frozenset[str]:
    """The caller's grids from the registry (only read when they matter)."""
    if caller.sees_all_orders or not caller.is_grid_worker:
        return frozenset()
    return grids_of(router, caller)


def _time_bound(name: str, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return to_iso(parse_ts_ms(value))
    except TimestampError:
        raise Unprocessable(
            f"{name} must be ISO-8601 (with offset) or epoch milliseconds", field=name
        ) from None


def partitions_for(
    caller: Caller,
    grids: frozenset[str],
    *,
    status: OrderStatus | None,
    grid_id: str | None,
    category: Category | None,
) -> list[Partition]:
    """The index partitions holding exactly the orders the caller may see that match the filters."""
    st = status.value if status else None
    cat = category.value if category else None
    if caller.sees_all_orders:
        if grid_id is not None:
            return [grid_partition(grid_id, status=st, category=cat)]
        if st is not None:
            return [status_partition(st, category=cat)]
        return [status_partition(s.value, category=cat) for s in OrderStatus]
    parts: list[Partition] = []
    if caller.is_grid_worker:
        mine = sorted(grids if grid_id is None else grids & {grid_id})
        parts.extend(grid_partition(g, status=st, category=cat) for g in mine)
    if caller.is_technician:
        parts.append(assignee_partition(caller.username, status=st, category=cat, grid_id=grid_id))
    return parts


def _scope(parts: list[Partition], since: str | None, until: str | None) -> str:
    return "workorders|" + "|".join(p.scope for p in parts) + f"|since={since}|until={until}"


def _check_photos(photos: list[str]) -> None:
    for photo in photos:
        if not photo.startswith(UPLOAD_PREFIX) or ".." in photo:
            raise Unprocessable(
                f"photos must be keys returned by POST /v1/uploads ({UPLOAD_PREFIX}…)", field="photos"
            )


# -- routes ----------------------------------------------------------------------------------------
@router.get("/", summary="List work orders the caller can see, newest first", tags=["workorders"])
def list_workorders(
    status: Annotated[OrderStatus | None, Query(description="only orders in this status")] = None,
    grid_id: Annotated[str | None, Query(max_length=64, pattern=ID_PATTERN)] = None,
    category: Annotated[Category | None, Query()] = None,
    since: Annotated[
        str | None, Query(max_length=40, description="created at or after (ISO-8601 or epoch ms)")
    ] = None,
    until: Annotated[
        str | None, Query(max_length=40, description="created at or before (ISO-8601 or epoch ms)")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> OrderPage:
    caller = caller_of(router)
    low, high = _time_bound("since", since), _time_bound("until", until)
    if low is not None and high is not None and low > high:
        raise Unprocessable("until must not be before since", field="until")
    parts = partitions_for(caller, caller_grids(caller), status=status, grid_id=grid_id, category=category)
    scope = _scope(parts, low, high)
    position = decode_cursor(cursor, scope, cursor_secret()) if cursor else None
    if position is not None and not isinstance(position.get("before"), str):
        raise Unprocessable("cursor is not valid", field="cursor")
    if not parts:
        return OrderPage(items=[], next_cursor=None)
    found, last = orders().list(parts, since=low, until=high, limit=limit, exclusive_start_key=position)
    return OrderPage(
        items=[summary(o, caller) for o in found],
        next_cursor=encode_cursor(last, scope, cursor_secret()) if last else None,
    )


@router.get(
    "/<order_id>", summary="One work order with its timeline and stage durations", tags=["workorders"]
)
def get_workorder(order_id: Annotated[str, Path(max_length=128)]) -> OrderDetail:
    caller = caller_of(router)
    order = ensure_visible(orders().get(order_id), caller, caller_grids(caller))
    result = detail(order, caller)
    result.media = media_links(order)
    return result


@router.post(
    "/<order_id>/transitions",
    summary="Act on a work order (acknowledge, verify, handle, resolve, close, cancel, reopen, "
    "reassign, escalate, comment)",
    tags=["workorders"],
)
def transition_workorder(
    order_id: Annotated[str, Path(max_length=128)],
    request: Annotated[TransitionRequest, Body(embed=False)],
) -> OrderDetail:
    caller = caller_of(router)
    grids = caller_grids(caller)
    _check_photos(request.photos)
    checked_assignee = False

    def plan_for(order: WorkOrder | None) -> TransitionPlan:
        nonlocal checked_assignee
        visible = ensure_visible(order, caller, grids)
        plan = plan_transition(
            visible, actor=caller.username, roles=caller.roles, request=request, now_ms=now_ms()
        )
        if plan.action is Action.REASSIGN and not checked_assignee:
            _check_assignee(request.assignee, visible)
            checked_assignee = True
        return plan

    _, written = orders().transition(order_id, plan_for)
    return detail(written, caller)


def _check_assignee(assignee: str | None, order: WorkOrder) -> None:
    """A reassignment names an active person from the registry who will see and can work the
    order once it is theirs (a technician, a grid worker of its grid, or a dispatcher)."""
    name = (assignee or "").strip()
    profile = users().get(name) if name else None
    if profile is None or not profile.active or not profile.roles:
        raise Unprocessable("assignee must be an active user of the platform", field="assignee")
    future = Caller.of(name, name, [role.value for role in profile.roles])
    can_work = future.is_technician or future.is_dispatcher or future.is_grid_worker
    if not can_work or not can_see(order.model_copy(update={"assignee": name}), future, profile.grid_ids):
        raise Unprocessable(
            "assignee must be a technician, a dispatcher or a grid worker of the order's grid",
            field="assignee",
        )
