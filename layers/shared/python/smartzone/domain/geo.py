"""Small geometry helpers on WGS-84 ``[lon, lat]`` positions (GeoJSON order). Pure Python.

Distances use a spherical earth (haversine) or, over a few kilometres, a local equirectangular
projection; both are far more precise than a manhole cover's position needs.

**Boundary rule of point-in-polygon.** Grids tile the district, so a point on an edge shared by two
grids must belong to exactly one of them. :func:`contains` uses the crossing-number test with a
half-open convention: a point on a polygon's boundary is inside exactly when the polygon's interior
lies immediately east of it, or immediately north of it on an east-west edge. Put differently, the
point is judged as if nudged an infinitesimal step east and an even smaller step north: points on
west and south edges are inside, points on east and north edges are outside. Each edge's crossing
is computed from its endpoints in a canonical order, so two polygons that share an edge decide it
identically, bit for bit, and every point of a tiling belongs to exactly one tile.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

EARTH_RADIUS_M = 6_371_008.8
"""Mean earth radius (IUGG)."""

Position = Sequence[float]
"""``[lon, lat]`` in degrees (WGS-84 unless said otherwise)."""
Ring = Sequence[Position]
BBox = tuple[float, float, float, float]
"""``(min_lon, min_lat, max_lon, max_lat)``, as GeoJSON's ``bbox``."""


class GeometryError(ValueError):
    """A geometry that is not a valid GeoJSON Polygon or MultiPolygon."""


# --- point in polygon ---------------------------------------------------------------------------


def ring_crossings(lon: float, lat: float, ring: Ring) -> int:
    """How many edges of ``ring`` a ray from the point towards +lon crosses (half-open rule)."""
    crossings = 0
    count = len(ring)
    for i in range(count):
        a = ring[i]
        b = ring[(i + 1) % count]
        if (a[1] > lat) != (b[1] > lat):
            low, high = (a, b) if a[1] < b[1] else (b, a)
            x_cross = low[0] + (lat - low[1]) * (high[0] - low[0]) / (high[1] - low[1])
            if lon < x_cross:
                crossings += 1
    return crossings


def polygon_contains(rings: Sequence[Ring], lon: float, lat: float) -> bool:
    """Whether the polygon (exterior ring, then holes) contains the point (see the boundary rule)."""
    return sum(ring_crossings(lon, lat, ring) for ring in rings) % 2 == 1


def contains(geometry: Mapping[str, Any], lon: float, lat: float) -> bool:
    """Whether a GeoJSON Polygon or MultiPolygon contains ``(lon, lat)`` (see the boundary rule)."""
    kind = geometry.get("type")
    if kind == "Polygon":
        return polygon_contains(geometry["coordinates"], lon, lat)
    if kind == "MultiPolygon":
        return any(polygon_contains(rings, lon, lat) for rings in geometry["coordinates"])
    raise GeometryError(f"expected a Polygon or MultiPolygon, got {kind!r}")


def validate_polygon(geometry: object) -> None:
    """Raise :class:`GeometryError` unless ``geometry`` is a well-formed GeoJSON Polygon/MultiPolygon.

    Checks the structure, coordinate ranges and that every ring is closed with at least four
    positions; it does not check for self-intersections.
    """
    if not isinstance(geometry, Mapping):
        raise GeometryError("geometry must be a GeoJSON object")
    kind = geometry.get("type")
    coordinates = geometry.get("coordinates")
    if kind == "Polygon":
        polygons = [coordinates]
    elif kind == "MultiPolygon" and isinstance(coordinates, list):
        polygons = coordinates
    else:
        raise GeometryError(f"type must be Polygon or MultiPolygon, got {kind!r}")
    for polygon in polygons:
        if not isinstance(polygon, list) or not polygon:
            raise GeometryError("a polygon needs at least an exterior ring")
        for ring in polygon:
            if not isinstance(ring, list) or len(ring) < 4:
                raise GeometryError("a ring needs at least four positions")
            for position in ring:
                _check_position(position)
            if list(ring[0]) != list(ring[-1]):
                raise GeometryError("a ring must end where it starts")


def _check_position(position: object) -> None:
    if not isinstance(position, list | tuple) or len(position) < 2:
        raise GeometryError("a position must be [lon, lat]")
    lon, lat = position[0], position[1]
    for value in (lon, lat):
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise GeometryError("coordinates must be finite numbers")
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise GeometryError(f"position {[lon, lat]} is out of range (GeoJSON order is [lon, lat])")


def signed_area(ring: Ring) -> float:
    """Planar shoelace area in square degrees: positive when counter-clockwise (RFC 7946 exteriors)."""
    total = 0.0
    count = len(ring)
    for i in range(count):
        a = ring[i]
        b = ring[(i + 1) % count]
        total += a[0] * b[1] - b[0] * a[1]
    return total / 2


# --- bounding boxes -----------------------------------------------------------------------------


def _positions(coordinates: Any) -> Iterable[Position]:
    if coordinates and isinstance(coordinates[0], int | float):
        yield coordinates
        return
    for item in coordinates:
        yield from _positions(item)


def bbox(geometry_or_coordinates: Mapping[str, Any] | Sequence[Any]) -> BBox:
    """The bounding box of a GeoJSON geometry, or of (nested lists of) positions."""
    coordinates = (
        geometry_or_coordinates["coordinates"]
        if isinstance(geometry_or_coordinates, Mapping)
        else geometry_or_coordinates
    )
    lons: list[float] = []
    lats: list[float] = []
    for position in _positions(coordinates):
        lons.append(position[0])
        lats.append(position[1])
    if not lons:
        raise GeometryError("no positions")
    return (min(lons), min(lats), max(lons), max(lats))


def in_bbox(box: BBox, lon: float, lat: float) -> bool:
    """Whether the point lies in the box (edges included)."""
    return box[0] <= lon <= box[2] and box[1] <= lat <= box[3]


# --- distances along the ground -----------------------------------------------------------------


def haversine_m(a: Position, b: Position) -> float:
    """Great-circle distance in metres between two ``[lon, lat]`` positions."""
    lon1, lat1, lon2, lat2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def line_length_m(line: Sequence[Position]) -> float:
    """Length in metres of a polyline (GeoJSON LineString coordinates)."""
    return sum(haversine_m(line[i], line[i + 1]) for i in range(len(line) - 1))


def offset(position: Position, east_m: float, north_m: float) -> tuple[float, float]:
    """The point ``east_m`` metres east and ``north_m`` metres north of ``position`` (short distances)."""
    lat_rad = math.radians(position[1])
    dlat = math.degrees(north_m / EARTH_RADIUS_M)
    dlon = math.degrees(east_m / (EARTH_RADIUS_M * math.cos(lat_rad)))
    return (position[0] + dlon, position[1] + dlat)


def _local_xy(origin: Position, position: Position) -> tuple[float, float]:
    """Metres east and north of ``origin`` (equirectangular; fine over a few kilometres)."""
    cos_lat = math.cos(math.radians(origin[1]))
    x = math.radians(position[0] - origin[0]) * EARTH_RADIUS_M * cos_lat
    y = math.radians(position[1] - origin[1]) * EARTH_RADIUS_M
    return x, y


def point_along(line: Sequence[Position], distance_m: float) -> tuple[float, float, float]:
    """The point ``distance_m`` metres along a polyline and the line's heading there.

    Returns ``(lon, lat, bearing_deg)`` with the bearing clockwise from north. Distances beyond
    either end are clamped to the end.
    """
    if len(line) < 2:
        raise GeometryError("a line needs at least two positions")
    remaining = max(0.0, distance_m)
    for i in range(len(line) - 1):
        a, b = line[i], line[i + 1]
        segment = haversine_m(a, b)
        if remaining <= segment or i == len(line) - 2:
            t = 0.0 if segment == 0 else min(1.0, remaining / segment)
            x, y = _local_xy(a, b)
            bearing = math.degrees(math.atan2(x, y)) % 360
            return (a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, bearing)
        remaining -= segment
    raise AssertionError("unreachable")


def distance_to_line_m(position: Position, line: Sequence[Position]) -> float:
    """Shortest distance in metres from a point to a polyline (local projection)."""
    best = math.inf
    for i in range(len(line) - 1):
        ax, ay = _local_xy(position, line[i])
        bx, by = _local_xy(position, line[i + 1])
        dx, dy = bx - ax, by - ay
        length2 = dx * dx + dy * dy
        t = 0.0 if length2 == 0 else max(0.0, min(1.0, -(ax * dx + ay * dy) / length2))
        best = min(best, math.hypot(ax + t * dx, ay + t * dy))
    return best
