"""Routing by location: which grid a point (a drone detection, a patrol report) belongs to.

Grids are stored as GeoJSON polygons in WGS-84 (:class:`GridArea`). :func:`route_point` decides:

| where the point is                                   | grid                       | ``routing.method``  |
|------------------------------------------------------|----------------------------|---------------------|
| inside exactly one grid                              | that grid                  | ``contains``        |
| on an edge or a vertex of a grid (within 1 cm)       | that grid (edges count)    | ``contains``        |
| on an edge or vertex shared by several grids         | the lowest ``grid_id``     | ``contains`` + note |
| inside a hole of a grid (and in no other grid)       | not that grid: as outside  | see the next rows   |
| on the edge of a hole                                | the holed grid (edge)      | ``contains``        |
| outside every grid, a boundary within ``fallback_m`` | the nearest grid           | ``nearest`` + ``distance_m`` + note |
| outside every grid, none within ``fallback_m``       | :data:`COMMAND_CENTRE_GRID` | ``command_centre`` + note |

Ties in distance also go to the lowest ``grid_id``, so the answer never depends on the order in
which grids are listed. Distances are ground distances in metres from the point to the nearest
boundary edge (a local tangent-plane projection around the point: at the fallback's scale of a few
hundred metres it agrees with the geodesic distance to well under a metre).

The boundary rule here is inclusive (every grid owns its edges) and then disambiguated by id, unlike
:func:`smartzone.domain.geo.contains`' half-open rule, which suits tilings but leaves points on the
district's outer east and north edges in no grid at all.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from smartzone.domain import geo
from smartzone.domain.registry import GRID_ID_RE
from smartzone.domain.workorders import Routing, RoutingMethod

COMMAND_CENTRE_GRID = "G-CENTRE"
"""The command centre's queue: orders that belong to no grid (dispatchers see every order)."""
DEFAULT_FALLBACK_M = 500.0
"""Outside every grid, a grid whose boundary is at most this far away still takes the order."""
BOUNDARY_TOLERANCE_M = 0.01
"""A point this close to an edge (1 cm) is *on* it: it absorbs floating-point rounding of points
computed on an edge, and is far below any positioning accuracy."""

PolygonCoordinates = list[list[list[float]]]
"""``[ring][position][lon, lat]``: ring 0 the exterior, the others holes."""


class GridArea(BaseModel):
    """A grid's area: one or more polygons (MultiPolygon-like), WGS-84 ``[lon, lat]``."""

    model_config = ConfigDict(frozen=True)

    grid_id: str = Field(pattern=GRID_ID_RE.pattern)
    polygons: list[PolygonCoordinates] = Field(min_length=1)
    """``[polygon][ring][position][lon, lat]``; ring 0 outer, other rings holes."""

    _bbox: geo.BBox = PrivateAttr()

    @model_validator(mode="after")
    def _valid_geometry(self) -> GridArea:
        try:
            geo.validate_polygon({"type": "MultiPolygon", "coordinates": self.polygons})
        except geo.GeometryError as error:
            raise ValueError(f"polygons: {error}") from None
        self._bbox = geo.bbox(self.polygons)
        return self

    @classmethod
    def from_geojson(cls, grid_id: str, geometry: dict[str, Any]) -> GridArea:
        """From a GeoJSON Polygon or MultiPolygon (raises ``ValueError`` when it is neither)."""
        kind = geometry.get("type") if isinstance(geometry, dict) else None
        if kind == "Polygon":
            return cls(grid_id=grid_id, polygons=[geometry["coordinates"]])
        if kind == "MultiPolygon":
            return cls(grid_id=grid_id, polygons=geometry["coordinates"])
        raise ValueError(f"expected a Polygon or MultiPolygon, got {kind!r}")

    def geojson(self) -> dict[str, Any]:
        """As GeoJSON: a Polygon when there is one polygon, else a MultiPolygon."""
        if len(self.polygons) == 1:
            return {"type": "Polygon", "coordinates": self.polygons[0]}
        return {"type": "MultiPolygon", "coordinates": self.polygons}

    @property
    def bbox(self) -> geo.BBox:
        return self._bbox

    def rings(self) -> list[list[list[float]]]:
        """Every ring (exteriors and holes) of every polygon."""
        return [ring for polygon in self.polygons for ring in polygon]

    def boundary_distance_m(self, lon: float, lat: float) -> float:
        """Metres from the point to the nearest edge of any ring."""
        return min(geo.distance_to_line_m((lon, lat), ring) for ring in self.rings())

    def covers(self, lon: float, lat: float) -> bool:
        """Inside the area or on its boundary (within :data:`BOUNDARY_TOLERANCE_M`); not in a hole."""
        if not _near_bbox(self._bbox, lon, lat, BOUNDARY_TOLERANCE_M):
            return False
        if any(geo.polygon_contains(polygon, lon, lat) for polygon in self.polygons):
            return True
        return self.boundary_distance_m(lon, lat) <= BOUNDARY_TOLERANCE_M


class RouteResult(BaseModel):
    """The grid an order goes to, and how it was found (shown on the order)."""

    grid_id: str
    routing: Routing


def route_point(
    lon: float, lat: float, areas: Sequence[GridArea], *, fallback_m: float = DEFAULT_FALLBACK_M
) -> RouteResult:
    """Route a WGS-84 point to a grid by the rules in the module docstring."""
    if not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90):
        raise ValueError(f"position {[lon, lat]} is not a WGS-84 [lon, lat]")
    covering = sorted(area.grid_id for area in areas if area.covers(lon, lat))
    if covering:
        note = None
        if len(covering) > 1:
            note = f"位置位于网格 {'、'.join(covering)} 的公共边界上,按网格编号最小者派发至 {covering[0]}"
        return RouteResult(grid_id=covering[0], routing=Routing(method=RoutingMethod.CONTAINS, note=note))

    best: tuple[float, str] | None = None
    for area in areas:
        if not _near_bbox(area.bbox, lon, lat, fallback_m):
            continue
        distance = area.boundary_distance_m(lon, lat)
        if distance <= fallback_m and (best is None or (distance, area.grid_id) < best):
            best = (distance, area.grid_id)
    if best is not None:
        distance, grid_id = best
        return RouteResult(
            grid_id=grid_id,
            routing=Routing(
                method=RoutingMethod.NEAREST,
                distance_m=round(distance, 1),
                note=f"位置不在任何网格内,派发至距离最近的网格 {grid_id}(距其边界约 {distance:.0f} 米)",
            ),
        )
    return RouteResult(
        grid_id=COMMAND_CENTRE_GRID,
        routing=Routing(
            method=RoutingMethod.COMMAND_CENTRE,
            note=f"位置不在任何网格内,且 {fallback_m:.0f} 米内没有网格,转指挥中心统一处理",
        ),
    )


def _near_bbox(box: geo.BBox, lon: float, lat: float, margin_m: float) -> bool:
    """Whether the point is within ``margin_m`` of the box (a cheap, conservative pre-check)."""
    margin_lat = math.degrees(margin_m / geo.EARTH_RADIUS_M) * 1.01
    cos_lat = max(math.cos(math.radians(max(abs(box[1]), abs(box[3])))), 1e-6)
    margin_lon = margin_lat / cos_lat
    return (
        box[0] - margin_lon <= lon <= box[2] + margin_lon
        and box[1] - margin_lat <= lat <= box[3] + margin_lat
    )


def route_report(
    position: tuple[float, float] | None,
    home_grid: str | None,
    areas: Sequence[GridArea],
    *,
    fallback_m: float = DEFAULT_FALLBACK_M,
) -> RouteResult | None:
    """Where a patrol report's order goes.

    With a position and a grid map: by location (:func:`route_point`). Without a position: the
    reporter's own grid (``registry``). With a position but no grid boundaries stored at all
    (nothing to route by): the reporter's grid, with a note saying so. ``None`` when there is no
    position to route by and the reporter has no grid.
    """
    if position is not None and areas:
        return route_point(position[0], position[1], areas, fallback_m=fallback_m)
    if home_grid is None:
        return None
    note = None if position is None else "未配置网格边界,按上报人所属网格派发"
    return RouteResult(grid_id=home_grid, routing=Routing(method=RoutingMethod.REGISTRY, note=note))
