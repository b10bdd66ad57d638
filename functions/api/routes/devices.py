"""`/v1/devices` routes: the device registry with each device's live status.

Who sees what (issue 3, item 5):

- dispatchers and admins see every device;
- technicians see every device too (read only): they are sent to covers anywhere in the district
  and the registry holds no personal data; the *orders* listed on a device are still only those
  they may see (assigned to them);
- grid workers see the devices of their grids (looked up in the registry on every request); any
  other device is answered 404, as if it did not exist.

Writes: registry records (``PUT``, bulk import) are admin only; maintenance windows may be set by
admins and dispatchers (the command centre plans maintenance). A caller who can see the device
but may not write gets 403; one who cannot see it gets 404.

Every list is an index Query (gsi1 ``GRIDDEVICES#<grid>`` or gsi2 ``DEVICES``), never a Scan. The
live status is derived, not indexed: a ``status`` filter reads index pages and filters them, at
most :data:`MAX_PAGES_PER_REQUEST` pages per request (the page may then be short; the cursor goes on).
"""

from __future__ import annotations

import uuid
from functools import cache
from typing import Annotated, Any, Literal, TypeVar

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from pydantic import BaseModel, ConfigDict, Field, field_validator

from smartzone.domain.alarms import DeviceState
from smartzone.domain.device_status import LiveStatus, active_windows, is_expired, live_status
from smartzone.domain.identity import Caller, Role
from smartzone.domain.lifecycle import can_see
from smartzone.domain.registry import (
    DEFAULT_PROFILE,
    AlarmProfile,
    Device,
    Latitude,
    Longitude,
    MaintenanceWindow,
    is_valid_device_id,
)
from smartzone.domain.timeutil import TimestampError, now_ms, parse_ts_ms, to_iso
from smartzone.domain.workorders import OPEN_STATUSES, WorkOrder
from smartzone.repositories.devices import DeviceRecord, DeviceRepository
from smartzone.repositories.workorders import WorkOrderRepository
from smartzone.settings import get_settings

from ..context import caller_of, grids_of
from ..errors import ConflictError, ForbiddenError, NotFoundError, Unprocessable
from ..registry_routes import (
    FieldError,
    RowImport,
    RowStatus,
    list_partitions,
    partition_cursor,
    partition_scope,
    read_partition_cursor,
)

router = Router()
M = TypeVar("M", bound=BaseModel)

MAX_PAGES_PER_REQUEST = 10
"""Index pages a filtered list reads per request at most."""
FILTERED_PAGE_SIZE = 100
MAX_IMPORT_ROWS = 1000
MAX_WINDOWS_PER_DEVICE = 20
MAX_WINDOW_DAYS = 90
WINDOW_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
DEVICE_ID_PARAM = Path(min_length=1, max_length=32)
WINDOW_WRITERS = frozenset({Role.ADMIN, Role.DISPATCHER})


# -- repositories ------------------------------------------------------------------------------------
@cache
def _devices(table: str) -> DeviceRepository:
    return DeviceRepository(table)


def devices_repo() -> DeviceRepository:
    return _devices(get_settings().table_name)


def orders_repo() -> WorkOrderRepository:
    return WorkOrderRepository(get_settings().table_name)


# -- models --------------------------------------------------------------------------------------------
class LastReading(BaseModel):
    tilt_deg: float | None = None
    battery_pct: float | None = None
    at: str | None = None
    """Device time of the last reading applied (UTC ISO-8601)."""


class AlarmOut(BaseModel):
    alarm_type: str
    alarm_id: str | None = None
    raised_at: str | None = None
    order_id: str | None = None
    worst: float | None = None


class WindowOut(MaintenanceWindow):
    """A maintenance window, and whether it is in force now."""

    active: bool


class OrderBrief(BaseModel):
    order_id: str
    status: str
    category: str
    title: str
    assignee: str | None = None
    escalation_level: int = 0
    created_at: str


class DeviceSummary(BaseModel):
    device_id: str
    name: str
    road: str
    lon: float
    lat: float
    grid_id: str
    device_type: str
    status: LiveStatus
    last_seen: str | None = None
    active_alarms: list[str] = Field(default_factory=list)


class DeviceDetail(DeviceSummary):
    profile: AlarmProfile
    last_reading: LastReading
    alarms: list[AlarmOut] = Field(default_factory=list)
    maintenance: list[WindowOut] = Field(default_factory=list)
    open_orders: list[OrderBrief] = Field(default_factory=list)


class DeviceList(BaseModel):
    items: list[DeviceSummary]
    next_cursor: str | None = None


class DeviceRegistration(BaseModel):
    """``PUT /v1/devices/{id}``: the registry fields of a device (the id comes from the path).

    Maintenance windows are not part of it (they have their own endpoints and are kept)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=64)
    road: str = Field(min_length=1, max_length=64)
    lon: Longitude
    lat: Latitude
    grid_id: str = Field(min_length=1, max_length=16)
    device_type: str = Field("manhole_cover", pattern=r"^[a-z_]{1,32}$")
    profile: AlarmProfile = DEFAULT_PROFILE

    def to_device(self, device_id: str) -> Device:
        return Device(device_id=device_id, **self.model_dump(exclude={"device_id"}))


class ImportRow(DeviceRegistration):
    device_id: str = Field(min_length=1, max_length=32)

    @field_validator("device_id")
    @classmethod
    def _device_id(cls, value: str) -> str:
        if not is_valid_device_id(value):
            raise ValueError("device_id must look like MH-0178")
        return value


class ImportRowResult(BaseModel):
    row: int
    """Position of the row in the request (0-based)."""
    device_id: str | None = None
    status: RowStatus
    errors: list[FieldError] = Field(default_factory=list)


class ImportResult(BaseModel):
    rows: list[ImportRowResult]
    counts: dict[str, int]


class DeviceWriteResult(BaseModel):
    device_id: str
    status: Literal["created", "updated", "unchanged"]
    device: DeviceDetail


class MaintenanceRequest(BaseModel):
    """A maintenance window: ISO-8601 (no offset: +08:00) or epoch milliseconds."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    start: str | int
    end: str | int
    reason: str = Field("", max_length=200)
    window_id: str | None = Field(None, pattern=WINDOW_ID_PATTERN)
    """Optional client id: posting the same id again changes nothing (a safe retry)."""


class MaintenanceResult(BaseModel):
    device_id: str
    window: WindowOut
    status: Literal["added", "exists"]
    device_status: LiveStatus


class WindowRemoved(BaseModel):
    device_id: str
    window_id: str
    maintenance: list[WindowOut]
    device_status: LiveStatus


# -- reach ---------------------------------------------------------------------------------------------
def sees_all_devices(caller: Caller) -> bool:
    """Dispatchers, admins and technicians see every device (see the module doc)."""
    return caller.sees_all_orders or caller.is_technician


def visible_grids(caller: Caller) -> frozenset[str] | None:
    """None: every grid; otherwise the caller's grids from the registry."""
    return None if sees_all_devices(caller) else grids_of(router, caller)


def can_see_device(caller: Caller, device: Device) -> bool:
    grids = visible_grids(caller)
    return grids is None or device.grid_id in grids


def visible_device(device_id: str, caller: Caller) -> DeviceRecord:
    """The device, or 404 both when it does not exist and when it is out of the caller's reach."""
    record = devices_repo().get(device_id) if is_valid_device_id(device_id) else None
    if record is None or not can_see_device(caller, record.device):
        raise NotFoundError("device not found")
    return record


def require_admin(caller: Caller, action: str) -> None:
    if not caller.is_admin:
        raise ForbiddenError(f"only administrators may {action}")


# -- views ---------------------------------------------------------------------------------------------
def _iso(ms: int | None) -> str | None:
    return to_iso(ms) if ms is not None else None


def summary_of(record: DeviceRecord, at_ms: int) -> DeviceSummary:
    device, state = record.device, record.state
    return DeviceSummary(
        device_id=device.device_id,
        name=device.name,
        road=device.road,
        lon=device.lon,
        lat=device.lat,
        grid_id=device.grid_id,
        device_type=device.device_type,
        status=live_status(device, state, at_ms),
        last_seen=_iso(state.last_seen),
        active_alarms=sorted(key for key, track in state.alarms.items() if track.active),
    )


def windows_out(device: Device, at_ms: int) -> list[WindowOut]:
    active = {w.window_id for w in active_windows(device.maintenance, at_ms)}
    return [WindowOut(**w.model_dump(), active=w.window_id in active) for w in device.maintenance]


def _alarms_out(state: DeviceState) -> list[AlarmOut]:
    return [
        AlarmOut(
            alarm_type=key,
            alarm_id=track.alarm_id,
            raised_at=_iso(track.raised_at),
            order_id=track.order_id,
            worst=track.worst,
        )
        for key, track in sorted(state.alarms.items())
        if track.active
    ]


def open_orders_of(record: DeviceRecord, caller: Caller) -> list[OrderBrief]:
    """The device's open orders the caller may see: the orders its alarm tracks point at (a track
    keeps its order id while that order is open), read by key (at most one per alarm type)."""
    order_ids = sorted({t.order_id for t in record.state.alarms.values() if t.order_id})
    if not order_ids:
        return []
    repo = orders_repo()
    grids = frozenset() if caller.sees_all_orders else grids_of(router, caller)
    out: list[OrderBrief] = []
    for order_id in order_ids:
        order = repo.get(order_id)
        if order is None or order.status not in OPEN_STATUSES or not can_see(order, caller, grids):
            continue
        out.append(order_brief(order))
    return out


def order_brief(order: WorkOrder) -> OrderBrief:
    return OrderBrief(
        order_id=order.order_id,
        status=order.status.value,
        category=order.category.value,
        title=order.title,
        assignee=order.assignee,
        escalation_level=order.escalation_level,
        created_at=order.created_at,
    )


def detail_of(record: DeviceRecord, caller: Caller, at_ms: int, *, with_orders: bool = True) -> DeviceDetail:
    state = record.state
    return DeviceDetail(
        **summary_of(record, at_ms).model_dump(),
        profile=record.device.profile,
        last_reading=LastReading(
            tilt_deg=state.last_tilt, battery_pct=state.last_battery, at=_iso(state.watermark)
        ),
        alarms=_alarms_out(state),
        maintenance=windows_out(record.device, at_ms),
        open_orders=open_orders_of(record, caller) if with_orders else [],
    )


def json_response(status: int, model: M) -> Response[M]:
    """A response with its status; the body is serialized (and checked) by the resolver."""
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=model)


# -- list ------------------------------------------------------------------------------------------------
@router.get("/", summary="List devices with their live status")
def list_devices(
    grid_id: Annotated[str | None, Query(max_length=16, description="only this grid's devices")] = None,
    status: Annotated[LiveStatus | None, Query(description="only devices in this live status")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> DeviceList:
    caller = caller_of(router)
    partitions = list_partitions(grid_id, visible_grids(caller))
    if not partitions:
        return DeviceList(items=[], next_cursor=None)
    scope = partition_scope("devices", partitions, status.value if status else "")
    position, key = read_partition_cursor(cursor, scope, len(partitions))

    repo = devices_repo()
    at = now_ms()
    items: list[DeviceSummary] = []
    reads = 0
    while position < len(partitions) and len(items) < limit and reads < MAX_PAGES_PER_REQUEST:
        page_size = FILTERED_PAGE_SIZE if status is not None else limit - len(items)
        page = repo.query_devices(partitions[position], limit=page_size, start_key=key)
        reads += 1
        stopped_at: dict[str, Any] | None = None
        for index, (record, row_key) in enumerate(page.rows):
            summary = summary_of(record, at)
            if status is None or summary.status is status:
                items.append(summary)
            if len(items) >= limit and index < len(page.rows) - 1:
                stopped_at = row_key
                break
        if stopped_at is not None:
            key = stopped_at
            break
        if page.last_key:
            key = page.last_key
        else:
            position, key = position + 1, None
    next_cursor = partition_cursor(position, key, scope, len(partitions))
    return DeviceList(items=items, next_cursor=next_cursor)


# -- detail -----------------------------------------------------------------------------------------------
@router.get("/<device_id>", summary="A device: registry fields, live status, last reading, open orders")
def get_device(device_id: Annotated[str, DEVICE_ID_PARAM]) -> DeviceDetail:
    caller = caller_of(router)
    record = visible_device(device_id, caller)
    return detail_of(record, caller, now_ms())


# -- registry writes (admin) -----------------------------------------------------------------------------
@router.put("/<device_id>", summary="Create or update a device's registry record (admin)")
def put_device(
    device_id: Annotated[str, DEVICE_ID_PARAM], body: Annotated[DeviceRegistration, Body()]
) -> Response[DeviceWriteResult]:
    caller = caller_of(router)
    if not caller.is_admin:
        if is_valid_device_id(device_id):
            visible_device(device_id, caller)  # 404 when out of reach
        raise ForbiddenError("only administrators may change the device registry")
    if not is_valid_device_id(device_id):
        raise Unprocessable("device_id must look like MH-0178", field="device_id")
    repo = devices_repo()
    if not repo.get_grids([body.grid_id]):
        raise Unprocessable(f"grid {body.grid_id} does not exist", field="grid_id")
    outcome = repo.register_devices([body.to_device(device_id)])[device_id]
    record = repo.get(device_id, consistent=True)
    assert record is not None
    result = DeviceWriteResult(
        device_id=device_id,
        status=outcome,  # type: ignore[arg-type]
        device=detail_of(record, caller, now_ms()),
    )
    return json_response(201 if outcome == "created" else 200, result)


@router.post("/import", summary="Bulk create or update devices (admin); per-row results")
def import_devices(
    rows: Annotated[list[Any], Body(max_length=MAX_IMPORT_ROWS, description="device rows")],
) -> ImportResult:
    caller = caller_of(router)
    require_admin(caller, "import devices")
    rows_in = RowImport(rows, ImportRow, "device_id", duplicate_suffix=" in this import")
    valid = [(index, parsed.to_device(parsed.device_id)) for index, parsed in rows_in.parsed]
    repo = devices_repo()
    known_grids = repo.get_grids(sorted({d.grid_id for _, d in valid}))
    writable = rows_in.in_known_grids(valid, known_grids, lambda d: d.device_id, lambda d: d.grid_id)
    rows_in.apply(repo.register_devices(writable) if writable else {})
    results = [
        ImportRowResult(row=v.row, device_id=v.key, status=v.status, errors=v.errors)
        for v in rows_in.verdicts
    ]
    return ImportResult(rows=results, counts=rows_in.counts())


# -- maintenance windows -------------------------------------------------------------------------------
def _parse_time(value: str | int, field: str) -> int:
    try:
        return parse_ts_ms(value)
    except TimestampError as error:
        raise Unprocessable(f"{field}: {error}", field=field) from None


def new_window(body: MaintenanceRequest, scope: str, at_ms: int) -> MaintenanceWindow:
    """Validate a window request: start < end, end in the future, at most :data:`MAX_WINDOW_DAYS`."""
    start, end = _parse_time(body.start, "start"), _parse_time(body.end, "end")
    if end <= start:
        raise Unprocessable("end must be after start", field="end")
    if end <= at_ms:
        raise Unprocessable("end must be in the future", field="end")
    if end - start > MAX_WINDOW_DAYS * 86_400_000:
        raise Unprocessable(f"a window may last at most {MAX_WINDOW_DAYS} days", field="end")
    prefix = "GMW" if scope == "grid" else "MW"
    return MaintenanceWindow(
        window_id=body.window_id or f"{prefix}-{uuid.uuid4().hex[:12]}",
        start=to_iso(start),
        end=to_iso(end),
        reason=body.reason,
        scope=scope,
    )


class TooManyWindows(ConflictError):
    code = "too_many_windows"


def add_window(
    device_id: str, window: MaintenanceWindow, at_ms: int, *, item: dict[str, Any] | None = None
) -> tuple[DeviceRecord | None, Literal["added", "exists"]]:
    """Add ``window`` to the device (expired windows pruned); ``exists`` when its id is there."""
    outcome: list[Literal["added", "exists"]] = ["added"]

    def change(windows: list[MaintenanceWindow]) -> list[MaintenanceWindow] | None:
        if any(w.window_id == window.window_id for w in windows):
            outcome[0] = "exists"
            return None
        kept = [w for w in windows if not is_expired(w, at_ms)]
        if len(kept) >= MAX_WINDOWS_PER_DEVICE:
            raise TooManyWindows(
                f"a device may have at most {MAX_WINDOWS_PER_DEVICE} maintenance windows", field="window"
            )
        outcome[0] = "added"
        return [*kept, window]

    record = devices_repo().change_maintenance(device_id, change, item=item)
    return record, outcome[0]


def require_window_writer(caller: Caller) -> None:
    if not caller.has(*WINDOW_WRITERS):
        raise ForbiddenError("only dispatchers and administrators may set maintenance windows")


@router.post("/<device_id>/maintenance", summary="Add a maintenance window to a device")
def post_device_maintenance(
    device_id: Annotated[str, DEVICE_ID_PARAM], body: Annotated[MaintenanceRequest, Body()]
) -> Response[MaintenanceResult]:
    caller = caller_of(router)
    visible_device(device_id, caller)
    require_window_writer(caller)
    at = now_ms()
    window = new_window(body, "device", at)
    record, outcome = add_window(device_id, window, at)
    if record is None:
        raise NotFoundError("device not found")
    stored = next(w for w in record.device.maintenance if w.window_id == window.window_id)
    result = MaintenanceResult(
        device_id=device_id,
        window=WindowOut(**stored.model_dump(), active=bool(active_windows([stored], at))),
        status=outcome,
        device_status=live_status(record.device, record.state, at),
    )
    return json_response(201 if outcome == "added" else 200, result)


@router.delete("/<device_id>/maintenance/<window_id>", summary="Remove a maintenance window from a device")
def delete_device_maintenance(
    device_id: Annotated[str, DEVICE_ID_PARAM],
    window_id: Annotated[str, Path(min_length=1, max_length=64)],
) -> WindowRemoved:
    caller = caller_of(router)
    visible_device(device_id, caller)
    require_window_writer(caller)
    found = [False]

    def change(windows: list[MaintenanceWindow]) -> list[MaintenanceWindow] | None:
        kept = [w for w in windows if w.window_id != window_id]
        found[0] = len(kept) != len(windows)
        return kept if found[0] else None

    record = devices_repo().change_maintenance(device_id, change)
    if record is None or not found[0]:
        raise NotFoundError("maintenance window not found")
    at = now_ms()
    return WindowRemoved(
        device_id=device_id,
        window_id=window_id,
        maintenance=windows_out(record.device, at),
        device_status=live_status(record.device, record.state, at),
    )


__all__ = [
    "DeviceDetail",
    "DeviceSummary",
    "MaintenanceRequest",
    "add_window",
    "new_window",
    "router",
    "sees_all_devices",
    "summary_of",
]
