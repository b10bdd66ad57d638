"""`/v1/cameras` routes: the camera registry (AI video cameras on the river bank, sites, enterprises).

Reach: admins and dispatchers see every camera; anyone else sees the cameras of their grids (from
the user registry, per request): a grid worker's own grids; technicians, departments and data
stewards have no grids, so none. Any other camera is answered 404, as if it did not exist.

Writes are admin only (403 for someone who can see the camera, 404 otherwise):

- ``PUT /v1/cameras/{id}`` creates or replaces a camera. Its position is given with its coordinate
  system (``crs``: ``WGS-84`` default, ``GCJ-02`` or ``BD-09``) and stored in WGS-84. Without a
  ``grid_id`` the camera reports to the grid containing its position (422 when it is in none).
  Without ``detections`` it runs its kind's default types (:mod:`smartzone.domain.camera_setup`);
  listed types may omit threshold and quiet window (the type's policy defaults).
- ``PATCH /v1/cameras/{id}`` changes some fields: detection settings (a list replacing the set;
  omitted values keep the camera's current ones), grid, active, name, vendor, segment, site.
- ``POST /v1/cameras/import`` creates or updates up to :data:`MAX_IMPORT_ROWS` cameras with a
  result per row.

Lists are index Queries (gsi1 by grid, gsi3 by kind, gsi2 all; see
:mod:`smartzone.repositories.cameras`), never Scans, with signed cursors.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from smartzone.domain.camera_setup import DetectionSettingInput, default_detections, resolve_settings
from smartzone.domain.cameras import CAMERA_ID_RE, Camera, CameraKind, DetectionSetting
from smartzone.domain.coordinates import Crs, to_wgs84
from smartzone.domain.detections import DetectionType
from smartzone.domain.identity import Caller
from smartzone.domain.registry import GRID_ID_RE, Latitude, Longitude
from smartzone.domain.routing import route_point
from smartzone.domain.workorders import RoutingMethod
from smartzone.repositories.cameras import CameraRecord, CameraRepository, CameraStoreError
from smartzone.repositories.grid_areas import GridAreaRepository
from smartzone.settings import get_settings

from ..context import caller_of, grids_of
from ..errors import ConflictError, ForbiddenError, NotFoundError, Unprocessable
from ..registry_routes import (
    FieldError,
    RowImport,
    list_partitions,
    partition_cursor,
    partition_scope,
    read_partition_cursor,
)
from .devices import devices_repo, json_response

router = Router()

CAMERA_ID_PARAM = Path(min_length=1, max_length=32)
MAX_IMPORT_ROWS = 500
MAX_PAGES_PER_REQUEST = 10
MAX_DETECTION_TYPES = len(DetectionType)
COORDINATE_PLACES = 7
"""Stored coordinates are rounded to 7 decimal places (~1 cm)."""


@cache
def _cameras(table: str) -> CameraRepository:
    return CameraRepository(table)


def cameras_repo() -> CameraRepository:
    return _cameras(get_settings().table_name)


def grid_areas() -> GridAreaRepository:
    return GridAreaRepository(get_settings().table_name)


# -- models --------------------------------------------------------------------------------------------
class CameraOut(BaseModel):
    camera_id: str
    name: str
    kind: CameraKind
    lon: float
    lat: float
    """WGS-84."""
    grid_id: str
    river_segment: str | None = None
    site: str | None = None
    vendor_id: str | None = None
    detections: list[DetectionSetting]
    active: bool
    version: int
    updated_at: str | None = None


class CameraList(BaseModel):
    items: list[CameraOut]
    next_cursor: str | None = None


class CameraRegistration(BaseModel):
    """``PUT /v1/cameras/{id}``: the whole camera (the id comes from the path)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=64)
    kind: CameraKind = CameraKind.RIVER
    lon: Longitude
    lat: Latitude
    crs: Crs = "WGS-84"
    """The coordinate system of ``lon``/``lat``; stored converted to WGS-84."""
    grid_id: str | None = Field(None, pattern=GRID_ID_RE.pattern)
    """The grid the camera reports to; default: the grid containing its position."""
    river_segment: str | None = Field(None, max_length=32)
    site: str | None = Field(None, max_length=64)
    vendor_id: str | None = Field(None, pattern=r"^[a-z][a-z0-9-]{1,31}$")
    detections: list[DetectionSettingInput] | None = Field(None, max_length=MAX_DETECTION_TYPES)
    """Types to run; default: the kind's default types with the policies' values."""
    active: bool = True


class CameraImportRow(CameraRegistration):
    camera_id: str = Field(pattern=CAMERA_ID_RE.pattern)


class CameraPatch(BaseModel):
    """``PATCH /v1/cameras/{id}``: only the fields given change."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str | None = Field(None, min_length=1, max_length=64)
    grid_id: str | None = Field(None, pattern=GRID_ID_RE.pattern)
    active: bool | None = None
    vendor_id: str | None = Field(None, pattern=r"^[a-z][a-z0-9-]{1,31}$")
    river_segment: str | None = Field(None, max_length=32)
    site: str | None = Field(None, max_length=64)
    detections: list[DetectionSettingInput] | None = Field(None, max_length=MAX_DETECTION_TYPES)
    """The new set of types; a listed type's omitted values keep the camera's current ones."""


class CameraWriteResult(BaseModel):
    camera_id: str
    status: Literal["created", "updated", "unchanged"]
    camera: CameraOut


class CameraImportRowResult(BaseModel):
    row: int
    camera_id: str | None = None
    status: Literal["created", "updated", "unchanged", "error"]
    errors: list[FieldError] = Field(default_factory=list)


class CameraImportResult(BaseModel):
    rows: list[CameraImportRowResult]
    counts: dict[str, int]


# -- reach ---------------------------------------------------------------------------------------------
def visible_grids(caller: Caller) -> frozenset[str] | None:
    """None: every camera (admins, dispatchers); otherwise the caller's grids."""
    return None if caller.sees_all_orders else grids_of(router, caller)


def visible_camera(camera_id: str, caller: Caller) -> CameraRecord:
    """The camera, or 404 both when it does not exist and when it is out of the caller's reach."""
    record = cameras_repo().get(camera_id) if CAMERA_ID_RE.match(camera_id) else None
    grids = visible_grids(caller) if record is not None else None
    if record is None or (grids is not None and record.camera.grid_id not in grids):
        raise NotFoundError("camera not found")
    return record


def require_admin(caller: Caller, camera_id: str) -> None:
    """403 for a non-admin who can see the camera, 404 for one who cannot."""
    if caller.is_admin:
        return
    visible_camera(camera_id, caller)
    raise ForbiddenError("only administrators may change the camera registry")


def out_of(record: CameraRecord) -> CameraOut:
    return CameraOut(**record.camera.model_dump(), version=record.version, updated_at=record.updated_at)


# -- building cameras from requests --------------------------------------------------------------------
def _position(body: CameraRegistration) -> tuple[float, float]:
    lon, lat = to_wgs84(body.lon, body.lat, body.crs)
    return round(lon, COORDINATE_PLACES), round(lat, COORDINATE_PLACES)


def _grid_for(lon: float, lat: float) -> str:
    """The grid containing the position, or a 422 naming ``grid_id``."""
    result = route_point(lon, lat, grid_areas().all())
    if result.routing.method is not RoutingMethod.CONTAINS:
        raise Unprocessable(
            f"the camera's position is in no grid ({result.routing.note}); give grid_id", field="grid_id"
        )
    return result.grid_id


def camera_from(camera_id: str, body: CameraRegistration) -> Camera:
    """The camera to store (position in WGS-84, grid and detections resolved); 422 on bad input."""
    lon, lat = _position(body)
    grid_id = body.grid_id or _grid_for(lon, lat)
    detections = (
        resolve_settings(body.detections) if body.detections is not None else default_detections(body.kind)
    )
    fields = body.model_dump(exclude={"crs", "detections", "camera_id", "lon", "lat", "grid_id"})
    try:
        return Camera(camera_id=camera_id, lon=lon, lat=lat, grid_id=grid_id, detections=detections, **fields)
    except ValidationError as error:
        raise invalid(error) from None


def invalid(error: ValidationError) -> Unprocessable:
    """A 422 naming the first bad field (a model-level check names it first in its message)."""
    first = error.errors()[0]
    field = ".".join(str(p) for p in first["loc"])
    message = str(first["msg"]).removeprefix("Value error, ")
    if not field:
        head = message.split(":", 1)[0]
        field = head if head.isidentifier() else "body"
        return Unprocessable(message, field=field)
    return Unprocessable(f"{field}: {message}", field=field)


def _require_grid(grid_id: str) -> None:
    if not devices_repo().get_grids([grid_id]):
        raise Unprocessable(f"grid {grid_id} does not exist", field="grid_id")


# -- list and detail -----------------------------------------------------------------------------------
@router.get("/", summary="List cameras (grid workers: their grids')")
def list_cameras(
    grid_id: Annotated[str | None, Query(max_length=16, description="only this grid's cameras")] = None,
    kind: Annotated[CameraKind | None, Query(description="only cameras of this kind")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> CameraList:
    partitions = list_partitions(grid_id, visible_grids(caller_of(router)))
    if not partitions:
        return CameraList(items=[], next_cursor=None)
    scope = partition_scope("cameras", partitions, kind.value if kind else "")
    position, key = read_partition_cursor(cursor, scope, len(partitions))

    repo = cameras_repo()
    items: list[CameraOut] = []
    reads = 0
    while position < len(partitions) and len(items) < limit and reads < MAX_PAGES_PER_REQUEST:
        page = repo.query(grid_id=partitions[position], kind=kind, limit=limit - len(items), start_key=key)
        reads += 1
        items.extend(out_of(record) for record, _ in page.rows)
        if page.last_key:
            key = page.last_key
        else:
            position, key = position + 1, None
    next_cursor = partition_cursor(position, key, scope, len(partitions))
    return CameraList(items=items, next_cursor=next_cursor)


@router.get("/<camera_id>", summary="A camera: position, grid, detection types and settings")
def get_camera(camera_id: Annotated[str, CAMERA_ID_PARAM]) -> CameraOut:
    return out_of(visible_camera(camera_id, caller_of(router)))


# -- writes (admin) ------------------------------------------------------------------------------------
@router.put("/<camera_id>", summary="Create or replace a camera (admin); coordinates in a declared crs")
def put_camera(
    camera_id: Annotated[str, CAMERA_ID_PARAM], body: Annotated[CameraRegistration, Body()]
) -> Response[CameraWriteResult]:
    caller = caller_of(router)
    require_admin(caller, camera_id)
    if not CAMERA_ID_RE.match(camera_id):
        raise Unprocessable("camera_id must look like CAM-01", field="camera_id")
    camera = camera_from(camera_id, body)
    _require_grid(camera.grid_id)
    try:
        record, outcome = cameras_repo().put(camera)
    except CameraStoreError as error:
        raise ConflictError(str(error), field="camera_id") from None
    result = CameraWriteResult(camera_id=camera_id, status=outcome, camera=out_of(record))
    return json_response(201 if outcome == "created" else 200, result)


@router.patch("/<camera_id>", summary="Change a camera's detection settings, grid, active flag (admin)")
def patch_camera(
    camera_id: Annotated[str, CAMERA_ID_PARAM], body: Annotated[CameraPatch, Body()]
) -> CameraWriteResult:
    caller = caller_of(router)
    require_admin(caller, camera_id)
    given = body.model_fields_set
    if not given:
        raise Unprocessable("give at least one field to change", field="body")
    for required in ("name", "grid_id", "active", "detections"):
        if required in given and getattr(body, required) is None:
            raise Unprocessable(f"{required} may not be null", field=required)
    if body.grid_id is not None:
        _require_grid(body.grid_id)
    simple = body.model_dump(include=given - {"detections"})

    def change(current: Camera) -> Camera:
        update: dict[str, Any] = dict(simple)
        if body.detections is not None:
            update["detections"] = resolve_settings(body.detections, current.detections)
        try:
            return Camera.model_validate({**current.model_dump(), **update})
        except ValidationError as error:
            raise invalid(error) from None

    try:
        changed = cameras_repo().change(camera_id, change) if CAMERA_ID_RE.match(camera_id) else None
    except CameraStoreError as error:
        raise ConflictError(str(error), field="camera_id") from None
    if changed is None:
        raise NotFoundError("camera not found")
    record, outcome = changed
    return CameraWriteResult(camera_id=camera_id, status=outcome, camera=out_of(record))


@router.post("/import", summary="Bulk create or update cameras (admin); per-row results")
def import_cameras(
    rows: Annotated[list[Any], Body(max_length=MAX_IMPORT_ROWS, description="camera rows")],
) -> CameraImportResult:
    caller = caller_of(router)
    if not caller.is_admin:
        raise ForbiddenError("only administrators may import cameras")
    rows_in = RowImport(rows, CameraImportRow, "camera_id")
    if any(parsed.grid_id is None for _, parsed in rows_in.parsed):
        grid_areas().all()  # one read for the whole import
    valid: list[tuple[int, Camera]] = []
    for index, parsed in rows_in.parsed:
        try:
            valid.append((index, camera_from(parsed.camera_id, parsed)))
        except Unprocessable as error:
            rows_in.fail(
                index, parsed.camera_id, FieldError(field=error.field or "row", message=error.message)
            )
    known = devices_repo().get_grids(sorted({c.grid_id for _, c in valid}))
    writable = rows_in.in_known_grids(valid, known, lambda c: c.camera_id, lambda c: c.grid_id)
    rows_in.apply(cameras_repo().put_many(writable) if writable else {})
    results = [
        CameraImportRowResult(row=v.row, camera_id=v.key, status=v.status, errors=v.errors)
        for v in rows_in.verdicts
    ]
    return CameraImportResult(rows=results, counts=rows_in.counts())


__all__ = ["CameraOut", "camera_from", "router"]
