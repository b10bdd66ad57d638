"""`/v1/reports`: a patrol report becomes a work order in the reporter's grid.

Idempotent on ``client_request_id``: the order id is derived from the reporter and that id
(:func:`report_order_id`), and the order is written with a conditional put, so an offline retry of
the same report answers 200 with the order the first attempt made (201 the first time) and never
makes a second one. A retry with the same id but a different body still answers the first order.

Routing (:func:`smartzone.domain.routing.route_report`, shown on the order as ``routing``): a
report with a location goes to the grid containing it (an edge shared by two grids: the lowest
grid id), else to the nearest grid within 500 m, else to the command centre's queue
(``G-CENTRE``); a report without a location goes to the reporter's grid, their first grid in the
user registry (never a token claim), and a reporter without a grid then gets 422. Coordinates are
WGS-84 ``lon``/``lat`` unless the location declares ``crs`` (``GCJ-02`` or ``BD-09``: converted on
the way in). The reporter's name and phone come from the registry and are masked on output.
"""

from __future__ import annotations

import hashlib
from typing import Annotated

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from smartzone.domain.coordinates import Crs, to_wgs84
from smartzone.domain.identity import Caller, Role
from smartzone.domain.routing import RouteResult, route_report
from smartzone.domain.timeutil import now_ms, to_iso
from smartzone.domain.workorders import (
    CATEGORY_LABEL_ZH,
    Category,
    OrderLocation,
    OrderStatus,
    Reporter,
    Severity,
    TimelineEntry,
    WorkOrder,
)
from smartzone.repositories.grid_areas import GridAreaRepository
from smartzone.settings import get_settings

from ..context import caller_of, users
from ..errors import Unprocessable
from .workorders import UPLOAD_PREFIX, OrderDetail, detail, orders

router = Router()

DEVICE_ONLY_CATEGORIES = frozenset({Category.DEVICE_BATTERY_LOW, Category.DEVICE_OFFLINE})
"""Categories only the platform raises (from device state); a person cannot report them."""
REPORTABLE_CATEGORIES = tuple(c for c in Category if c not in DEVICE_ONLY_CATEGORIES)
REPORT_ORDER_PREFIX = "RPT-"
_ROLE_PREFERENCE = (Role.GRID_WORKER, Role.TECHNICIAN, Role.DISPATCHER, Role.ADMIN)

UploadKey = Annotated[str, StringConstraints(min_length=len(UPLOAD_PREFIX) + 1, max_length=512)]


class ReportLocation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)
    crs: Crs = "WGS-84"
    """The coordinate system of ``lon``/``lat`` (stored converted to WGS-84)."""
    road: str | None = Field(None, max_length=100)
    name: str | None = Field(None, max_length=100)

    def wgs84(self) -> OrderLocation:
        lon, lat = to_wgs84(self.lon, self.lat, self.crs)
        return OrderLocation(lon=round(lon, 7), lat=round(lat, 7), road=self.road, name=self.name)


class PatrolReport(BaseModel):
    """``POST /v1/reports`` body."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    client_request_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")
    """The app's id for this report (a UUID): retries with the same id make no second order."""
    category: Category = Category.PATROL_REPORT
    title: str | None = Field(None, min_length=1, max_length=100)
    description: str = Field(min_length=1, max_length=2000)
    location: ReportLocation | None = None
    """Where the problem is; the order is routed to the grid there (without it: the reporter's grid)."""
    photos: list[UploadKey] = Field(default_factory=list, max_length=20)
    """Keys returned by ``POST /v1/uploads``."""
    severity: Severity = Severity.MEDIUM

    @field_validator("category")
    @classmethod
    def _reportable(cls, value: Category) -> Category:
        if value in DEVICE_ONLY_CATEGORIES:
            allowed = ", ".join(c.value for c in REPORTABLE_CATEGORIES)
            raise ValueError(f"category must be one of: {allowed}")
        return value

    @field_validator("photos")
    @classmethod
    def _uploaded(cls, value: list[str]) -> list[str]:
        for key in value:
            if not key.startswith(UPLOAD_PREFIX) or ".." in key:
                raise ValueError(f"photos must be keys returned by POST /v1/uploads ({UPLOAD_PREFIX}…)")
        return value


def report_order_id(username: str, client_request_id: str) -> str:
    """Deterministic: the same reporter and request id always name the same order."""
    digest = hashlib.sha256(f"{username}\x00{client_request_id}".encode()).hexdigest()
    return f"{REPORT_ORDER_PREFIX}{digest[:24]}"


def _reporter_role(caller: Caller) -> str:
    return next((r.value for r in _ROLE_PREFERENCE if r in caller.roles), "reporter")


def new_report_order(
    report: PatrolReport, caller: Caller, route: RouteResult, reporter: Reporter, at_ms: int
) -> WorkOrder:
    at = to_iso(at_ms)
    label = CATEGORY_LABEL_ZH.get(report.category, report.category.value)
    title = report.title or f"{label}:{report.description[:30]}"
    return WorkOrder(
        order_id=report_order_id(caller.username, report.client_request_id),
        status=OrderStatus.DISPATCHED,
        category=report.category,
        severity=report.severity,
        source="patrol",
        grid_id=route.grid_id,
        routing=route.routing,
        title=title,
        description=report.description,
        location=report.location.wgs84() if report.location else None,
        reporter=reporter,
        created_at=at,
        updated_at=at,
        timeline=[
            TimelineEntry(
                at=at,
                actor=caller.username,
                role=_reporter_role(caller),
                action="report",
                from_status=None,
                to_status=OrderStatus.DISPATCHED,
                note=f"巡查上报:{report.description}",
                photos=list(report.photos),
            )
        ],
    )


@router.post(
    "/",
    summary="File a patrol report (idempotent on client_request_id): 201 created, 200 on a retry",
    tags=["reports"],
    status_code=201,
)
def post_report(report: Annotated[PatrolReport, Body(embed=False)]) -> Response[OrderDetail]:
    caller = caller_of(router)
    profile = users().get(caller.username)
    if profile is None or not profile.active:
        raise Unprocessable("the reporter has no grid in the registry", field="grid_id")
    location = report.location.wgs84() if report.location else None
    position = (location.lon, location.lat) if location else None
    areas = GridAreaRepository(get_settings().table_name).all() if position else []
    route = route_report(position, profile.grid_ids[0] if profile.grid_ids else None, areas)
    if route is None:
        raise Unprocessable("the reporter has no grid in the registry: give a location", field="grid_id")
    reporter = Reporter(username=caller.username, name=profile.name, phone=profile.phone)
    order = new_report_order(report, caller, route, reporter, now_ms())
    written, created = orders().create(order, idempotent=True)
    return Response(
        status_code=201 if created else 200,
        content_type=content_types.APPLICATION_JSON,
        body=detail(written, caller),
    )
