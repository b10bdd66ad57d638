"""`/v1/grids/{grid_id}/boundary`: a grid's area, the basis of routing by location.

``PUT`` (admin) imports a GeoJSON Polygon or MultiPolygon in a declared coordinate system
(``crs``: ``WGS-84``, ``GCJ-02`` or ``BD-09``), validates it (structure, closed rings of at least
four positions, longitude/latitude ranges: a 422 naming ``geometry`` otherwise), converts it to
WGS-84 and stores it on the grid item, where :class:`smartzone.repositories.grid_areas.GridAreaRepository`
reads it (other warm Lambdas see the change within their cache's TTL, 60 s).
``GET`` returns the stored boundary to whoever can see the grid (reach as for ``GET /v1/grids/{id}``).
"""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body
from pydantic import BaseModel, ConfigDict, Field

from smartzone.domain import geo
from smartzone.domain.coordinates import Crs, geometry_to_wgs84
from smartzone.domain.routing import GridArea
from smartzone.repositories.grid_areas import GridAreaRepository
from smartzone.settings import get_settings

from ..context import caller_of
from ..errors import NotFoundError, Unprocessable
from .devices import require_admin
from .grids import GRID_ID_PARAM, visible_grid

router = Router()


class BoundaryImport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    crs: Crs = "WGS-84"
    """The coordinate system of ``geometry``; stored converted to WGS-84."""
    geometry: dict[str, Any] = Field(
        description='GeoJSON Polygon or MultiPolygon, positions [lon, lat]: {"type": "Polygon", "coordinates": [...]}'
    )


class BoundaryOut(BaseModel):
    grid_id: str
    crs: str = "WGS-84"
    geometry: dict[str, Any]
    bbox: list[float]
    """``[min_lon, min_lat, max_lon, max_lat]``."""


def areas() -> GridAreaRepository:
    return GridAreaRepository(get_settings().table_name)


def _out(area: GridArea) -> BoundaryOut:
    return BoundaryOut(grid_id=area.grid_id, geometry=area.geojson(), bbox=list(area.bbox))


@router.put("/<grid_id>/boundary", summary="Set a grid's boundary (admin): GeoJSON in a declared crs")
def put_boundary(
    grid_id: Annotated[str, GRID_ID_PARAM], body: Annotated[BoundaryImport, Body()]
) -> BoundaryOut:
    caller = caller_of(router)
    if not caller.is_admin:
        visible_grid(grid_id, caller)
        require_admin(caller, "change grid boundaries")
    try:
        geo.validate_polygon(body.geometry)
        converted = {
            "type": body.geometry["type"],
            "coordinates": geometry_to_wgs84(body.geometry["coordinates"], body.crs),
        }
        geo.validate_polygon(converted)
        area = GridArea.from_geojson(grid_id, converted)
    except (geo.GeometryError, ValueError) as error:
        raise Unprocessable(f"geometry: {error}", field="geometry") from None
    if not areas().put_boundary(grid_id, area):
        raise NotFoundError("grid not found")
    return _out(area)


@router.get("/<grid_id>/boundary", summary="A grid's boundary (GeoJSON, WGS-84)")
def get_boundary(grid_id: Annotated[str, GRID_ID_PARAM]) -> BoundaryOut:
    visible_grid(grid_id, caller_of(router))
    area = areas().get(grid_id)
    if area is None:
        raise NotFoundError("the grid has no boundary")
    return _out(area)
