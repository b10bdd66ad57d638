"""`/v1/grids` routes: grids, their grid workers, grid-wide maintenance, onboarding and offboarding.

Reach is the devices' (see :mod:`functions.api.routes.devices`): grid workers see their own grids
(404 for any other), technicians, dispatchers and admins every grid. Workers' contacts follow the
one masking policy (:func:`smartzone.domain.masking.mask_for`): phones are masked for grid
workers and technicians and shown to dispatchers and admins (an audited read); e-mail addresses
are shown to dispatchers and admins only, and webhook URLs (they embed the robot's token) to
admins only.

Writes: grid records and workers are admin only; a grid's maintenance window may be set by admins
and dispatchers, and is copied onto every device of the grid (windows live on the device items,
where the telemetry pipeline reads them), with a result per device.

Offboarding (``DELETE /v1/grids/{id}/workers/{username}``) removes the worker from the grid and
from the user's ``grid_ids`` (so their reach ends at once), and hands their open orders of that
grid to the grid's first remaining worker, or leaves them to the grid (no assignee) when there is
none. Each hand-over is the action table's ``reassign`` (one conditional write with a timeline
entry), performed by the platform on the admin's behalf: the entry names the admin as actor with
role ``admin`` (the table grants ``reassign`` to dispatchers; offboarding is an admin operation).
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from smartzone.domain.device_status import LiveStatus, active_windows, count_by_status, live_status
from smartzone.domain.identity import Caller, Role
from smartzone.domain.lifecycle import Action, TransitionPlan, TransitionRequest, plan_transition
from smartzone.domain.masking import mask_for
from smartzone.domain.registry import GRID_ID_RE, Grid, GridWorker
from smartzone.domain.timeutil import now_ms
from smartzone.domain.users import UserProfile
from smartzone.domain.workorders import OPEN_STATUSES, WorkOrder
from smartzone.observability import logger
from smartzone.repositories import keys
from smartzone.repositories.cursor import InvalidCursor, decode_cursor, encode_cursor
from smartzone.repositories.subscriptions import subscribe_worker, unsubscribe_worker
from smartzone.repositories.users import UserRepository
from smartzone.repositories.workorders import Partition
from smartzone.settings import get_settings

from ..context import caller_of, cursor_secret, grids_of
from ..errors import NotFoundError, Unprocessable
from .devices import (
    MaintenanceRequest,
    WindowOut,
    add_window,
    devices_repo,
    json_response,
    new_window,
    orders_repo,
    require_admin,
    require_window_writer,
    sees_all_devices,
)

router = Router()

GRID_ID_PARAM = Path(min_length=1, max_length=16)
USERNAME_PATTERN = r"^[A-Za-z0-9._@+-]{1,128}$"


# -- models --------------------------------------------------------------------------------------------
class WorkerOut(BaseModel):
    worker_id: str
    name: str
    phone: str | None = None
    """Masked (``138****5678``) unless the caller's role may see it."""
    email: str | None = None
    webhook_url: str | None = None


class GridSummary(BaseModel):
    grid_id: str
    name: str
    community: str
    workers: list[WorkerOut] = Field(default_factory=list)


class GridDetail(GridSummary):
    device_total: int
    device_counts: dict[str, int]
    """Devices by live status: normal, alarm, offline, maintenance."""
    open_orders: int


class GridList(BaseModel):
    items: list[GridSummary]
    next_cursor: str | None = None


class GridRegistration(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=64)
    community: str = Field(min_length=1, max_length=64)


class GridWriteResult(BaseModel):
    grid_id: str
    status: Literal["created", "updated"]
    grid: GridSummary


class DeviceWindowResult(BaseModel):
    device_id: str
    status: Literal["added", "exists", "error"]
    message: str | None = None


class GridMaintenanceResult(BaseModel):
    grid_id: str
    window: WindowOut
    devices: list[DeviceWindowResult]
    counts: dict[str, int]


class WorkerRegistration(BaseModel):
    """A grid worker to register: they are reached by e-mail and/or a webhook (HTTPS)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    worker_id: str = Field(pattern=USERNAME_PATTERN)
    """Also their username on the platform."""
    name: str = Field(min_length=1, max_length=64)
    phone: str = Field(pattern=r"^1[3-9][0-9]{9}$")
    email: str | None = Field(None, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    webhook_url: str | None = Field(None, max_length=1024, pattern=r"^https://[^\s]+$")

    def worker(self) -> GridWorker:
        return GridWorker(**self.model_dump())


class SubscriptionOut(BaseModel):
    protocol: str
    endpoint: str
    status: str
    """``created``, ``exists``, ``updated`` (filter policy widened to the grid) or ``conflict``."""
    grid_id: str
    """The grid the endpoint's filter policy (``{"grid_id": [...]}``) now lets through."""
    detail: str = ""


class UserOut(BaseModel):
    username: str
    roles: list[str]
    grid_ids: list[str]


class WorkerRegistered(BaseModel):
    grid_id: str
    status: Literal["added", "updated"]
    worker: WorkerOut
    user: UserOut
    subscriptions: list[SubscriptionOut]


class ReassignedOrder(BaseModel):
    order_id: str
    assignee: str | None


class WorkerOffboarded(BaseModel):
    grid_id: str
    username: str
    reassigned: int
    """Open orders handed to another worker of the grid or left to the grid."""
    orders: list[ReassignedOrder]
    user: UserOut | None = None


# -- helpers -------------------------------------------------------------------------------------------
def users_repo() -> UserRepository:
    return UserRepository(get_settings().table_name)


def visible_grid_ids(caller: Caller) -> frozenset[str] | None:
    return None if sees_all_devices(caller) else grids_of(router, caller)


def visible_grid(grid_id: str, caller: Caller) -> Grid:
    """The grid, or 404 both when it does not exist and when it is out of the caller's reach."""
    reach = visible_grid_ids(caller)
    if not GRID_ID_RE.match(grid_id) or (reach is not None and grid_id not in reach):
        raise NotFoundError("grid not found")
    grid = devices_repo().get_grid(grid_id)
    if grid is None:
        raise NotFoundError("grid not found")
    return grid


def workers_out(grid: Grid, caller: Caller) -> list[WorkerOut]:
    decision = mask_for(caller)
    if decision.audit and grid.workers:
        logger.info(
            "unmasked personal data read",
            extra={"audit": True, "actor": caller.username, "resource": f"grid/{grid.grid_id}/workers"},
        )
    return [
        WorkerOut(
            worker_id=w.worker_id,
            name=w.name,
            phone=decision.phone(w.phone),
            email=w.email if decision.unmasked else None,
            webhook_url=w.webhook_url if caller.is_admin else None,
        )
        for w in grid.workers
    ]


def summary_of(grid: Grid, caller: Caller) -> GridSummary:
    return GridSummary(
        grid_id=grid.grid_id, name=grid.name, community=grid.community, workers=workers_out(grid, caller)
    )


def open_order_count(grid_id: str) -> int:
    """Open orders of the grid: the open-status partitions of gsi2 (open orders only, not the
    grid's whole history), filtered on the grid."""
    partitions = [
        Partition(keys.GSI2, f"ORDERSTATUS#{status.value}", {"grid_id": grid_id}) for status in OPEN_STATUSES
    ]
    repo = orders_repo()
    count = 0
    position: dict[str, str] | None = None
    while True:
        page, position = repo.list(partitions, limit=100, exclusive_start_key=position)
        count += len(page)
        if position is None:
            return count


def user_out(user: UserProfile) -> UserOut:
    return UserOut(username=user.username, roles=[r.value for r in user.roles], grid_ids=list(user.grid_ids))


# -- list and detail -------------------------------------------------------------------------------------
@router.get("/", summary="List grids (grid workers: their own)")
def list_grids(
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> GridList:
    caller = caller_of(router)
    reach = visible_grid_ids(caller)
    if reach is not None:
        if cursor is not None:
            raise InvalidCursor("cursor is not valid")
        grids = devices_repo().get_grids(sorted(reach))
        return GridList(items=[summary_of(grids[g], caller) for g in sorted(grids)], next_cursor=None)
    scope = "grids|*"
    start = decode_cursor(cursor, scope, cursor_secret()) if cursor is not None else None
    page = devices_repo().query_grids(limit=limit, start_key=start)
    next_cursor = encode_cursor(page.last_key, scope, cursor_secret()) if page.last_key else None
    return GridList(items=[summary_of(grid, caller) for grid, _ in page.rows], next_cursor=next_cursor)


@router.get("/<grid_id>", summary="A grid: workers, devices by live status, open orders")
def get_grid(grid_id: Annotated[str, GRID_ID_PARAM]) -> GridDetail:
    caller = caller_of(router)
    grid = visible_grid(grid_id, caller)
    at = now_ms()
    statuses: list[LiveStatus] = [
        live_status(r.device, r.state, at) for r in devices_repo().grid_devices(grid_id)
    ]
    return GridDetail(
        **summary_of(grid, caller).model_dump(),
        device_total=len(statuses),
        device_counts=count_by_status(statuses),
        open_orders=open_order_count(grid_id),
    )


# -- writes ----------------------------------------------------------------------------------------------
@router.put("/<grid_id>", summary="Create or update a grid (admin); its workers are kept")
def put_grid(
    grid_id: Annotated[str, GRID_ID_PARAM], body: Annotated[GridRegistration, Body()]
) -> Response[GridWriteResult]:
    caller = caller_of(router)
    if not caller.is_admin:
        visible_grid(grid_id, caller)
        require_admin(caller, "change grids")
    if not GRID_ID_RE.match(grid_id):
        raise Unprocessable("grid_id must look like G01", field="grid_id")
    grid, created = devices_repo().save_grid_fields(grid_id, body.name, body.community)
    result = GridWriteResult(
        grid_id=grid_id, status="created" if created else "updated", grid=summary_of(grid, caller)
    )
    return json_response(201 if created else 200, result)


@router.post("/<grid_id>/maintenance", summary="Add a maintenance window to every device of a grid")
def post_grid_maintenance(
    grid_id: Annotated[str, GRID_ID_PARAM], body: Annotated[MaintenanceRequest, Body()]
) -> GridMaintenanceResult:
    caller = caller_of(router)
    visible_grid(grid_id, caller)
    require_window_writer(caller)
    at = now_ms()
    window = new_window(body, "grid", at)
    results: list[DeviceWindowResult] = []
    for item in devices_repo().grid_device_items(grid_id):
        device_id = str(item.get("device_id", {}).get("S", ""))
        try:
            record, outcome = add_window(device_id, window, at, item=item)
        except Exception as error:  # one device's failure must not stop the others
            logger.warning("grid maintenance window not added", device_id=device_id, error=str(error))
            message = getattr(error, "message", None) or "could not be updated; try again"
            results.append(DeviceWindowResult(device_id=device_id, status="error", message=message))
            continue
        if record is None:
            results.append(DeviceWindowResult(device_id=device_id, status="error", message="device vanished"))
        else:
            results.append(DeviceWindowResult(device_id=device_id, status=outcome))
    counts = {status: 0 for status in ("added", "exists", "error")}
    for result in results:
        counts[result.status] += 1
    return GridMaintenanceResult(
        grid_id=grid_id,
        window=WindowOut(**window.model_dump(), active=bool(active_windows([window], at))),
        devices=results,
        counts=counts,
    )


@router.post("/<grid_id>/workers", summary="Register a grid worker (admin) and subscribe their endpoints")
def post_grid_worker(
    grid_id: Annotated[str, GRID_ID_PARAM], body: Annotated[WorkerRegistration, Body()]
) -> Response[WorkerRegistered]:
    caller = caller_of(router)
    visible_grid(grid_id, caller)
    require_admin(caller, "register grid workers")
    worker = body.worker()

    def decide_user(current: UserProfile | None) -> UserProfile:
        if current is None:
            return UserProfile(
                username=worker.worker_id,
                name=worker.name,
                phone=worker.phone,
                email=worker.email,
                webhook_url=worker.webhook_url,
                roles=[Role.GRID_WORKER],
                grid_ids=[grid_id],
            )
        roles = current.roles if Role.GRID_WORKER in current.roles else [*current.roles, Role.GRID_WORKER]
        grid_ids = current.grid_ids if grid_id in current.grid_ids else [*current.grid_ids, grid_id]
        return current.model_copy(
            update={
                "name": worker.name,
                "phone": worker.phone,
                "email": worker.email or current.email,
                "webhook_url": worker.webhook_url or current.webhook_url,
                "roles": roles,
                "grid_ids": grid_ids,
                "active": True,
            }
        )

    user = users_repo().change(worker.worker_id, decide_user)
    assert user is not None
    status: list[Literal["added", "updated"]] = ["added"]

    def decide_workers(grid: Grid) -> list[GridWorker]:
        others = [w for w in grid.workers if w.worker_id != worker.worker_id]
        status[0] = "updated" if len(others) != len(grid.workers) else "added"
        return (
            [*others, worker]
            if status[0] == "added"
            else [worker if w.worker_id == worker.worker_id else w for w in grid.workers]
        )

    grid = devices_repo().change_grid_workers(grid_id, decide_workers)
    if grid is None:
        raise NotFoundError("grid not found")
    topic = get_settings().notifications_topic_arn
    outcomes = subscribe_worker(topic, worker, grid_id) if topic else []
    subscriptions = [
        SubscriptionOut(
            protocol=o.protocol, endpoint=o.endpoint, status=o.status, grid_id=o.grid_id, detail=o.detail
        )
        for o in outcomes
    ]
    result = WorkerRegistered(
        grid_id=grid_id,
        status=status[0],
        worker=next(w for w in workers_out(grid, caller) if w.worker_id == worker.worker_id),
        user=user_out(user),
        subscriptions=subscriptions,
    )
    return json_response(201 if status[0] == "added" else 200, result)


class _NotTheirs(Exception):
    """The order is no longer the offboarded worker's (or no longer open): leave it alone."""


def reassignment_plan(
    order: WorkOrder | None, *, username: str, grid_id: str, target: str | None, admin: str, at_ms: int
) -> TransitionPlan:
    """The ``reassign`` of one of the leaving worker's open orders to ``target`` (None: the grid)."""
    if (
        order is None
        or order.assignee != username
        or order.grid_id != grid_id
        or order.status not in OPEN_STATUSES
    ):
        raise _NotTheirs
    note = f"网格员 {username} 离岗,工单" + (f"改派给 {target}" if target else "退回网格待派")
    plan = plan_transition(
        order,
        actor=admin,
        roles=[Role.DISPATCHER],
        request=TransitionRequest(action=Action.REASSIGN, assignee=target or "-", note=note),
        now_ms=at_ms,
    )
    entries = tuple(e.model_copy(update={"role": Role.ADMIN.value}) for e in plan.entries)
    changes = dict(plan.changes)
    if target is None:
        changes["assignee"] = None
        entries = tuple(
            e.model_copy(update={"note": f"改派:{username} → 网格 {grid_id}(未指派)。{note}"})
            for e in entries
        )
    return dataclasses.replace(plan, role=Role.ADMIN.value, entries=entries, changes=changes)


@router.delete(
    "/<grid_id>/workers/<username>", summary="Offboard a grid worker (admin); reassigns their open orders"
)
def delete_grid_worker(
    grid_id: Annotated[str, GRID_ID_PARAM],
    username: Annotated[str, Path(min_length=1, max_length=128)],
) -> WorkerOffboarded:
    caller = caller_of(router)
    visible_grid(grid_id, caller)
    require_admin(caller, "offboard grid workers")
    was_listed = [False]
    removed: list[GridWorker] = []

    def decide_workers(grid: Grid) -> list[GridWorker] | None:
        kept = [w for w in grid.workers if w.worker_id != username]
        removed[:] = [w for w in grid.workers if w.worker_id == username]
        was_listed[0] = len(kept) != len(grid.workers)
        return kept if was_listed[0] else None

    grid = devices_repo().change_grid_workers(grid_id, decide_workers)
    if grid is None:
        raise NotFoundError("grid not found")

    had_grid = [False]

    def decide_user(current: UserProfile | None) -> UserProfile | None:
        if current is None or grid_id not in current.grid_ids:
            return None
        had_grid[0] = True
        return current.model_copy(update={"grid_ids": [g for g in current.grid_ids if g != grid_id]})

    user = users_repo().change(username, decide_user)
    if not was_listed[0] and not had_grid[0]:
        raise NotFoundError("no such worker in this grid")

    topic = get_settings().notifications_topic_arn
    for worker in removed if topic else []:
        unsubscribe_worker(topic, worker, grid_id)
    target = next((w.worker_id for w in grid.workers if w.worker_id != username), None)
    repo = orders_repo()
    at = now_ms()
    moved: list[ReassignedOrder] = []
    for order in repo.list_by_assignee(username):
        if order.grid_id != grid_id or order.status not in OPEN_STATUSES:
            continue
        try:
            _, written = repo.transition(
                order.order_id,
                lambda current: reassignment_plan(
                    current,
                    username=username,
                    grid_id=grid_id,
                    target=target,
                    admin=caller.username,
                    at_ms=at,
                ),
            )
        except _NotTheirs:
            continue
        moved.append(ReassignedOrder(order_id=written.order_id, assignee=written.assignee))
    logger.info(
        "grid worker offboarded",
        extra={"grid_id": grid_id, "username": username, "reassigned": len(moved), "actor": caller.username},
    )
    return WorkerOffboarded(
        grid_id=grid_id,
        username=username,
        reassigned=len(moved),
        orders=moved,
        user=user_out(user) if user else None,
    )
