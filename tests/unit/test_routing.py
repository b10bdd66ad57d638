"""Routing by location (``smartzone.domain.routing.route_point``): edges, vertices, shared edges,
holes, MultiPolygons, the nearest-grid fallback and the command centre, on hand-made squares and
on the seeded district."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smartzone.domain import geo
from smartzone.domain.routing import (
    COMMAND_CENTRE_GRID,
    GridArea,
    RouteResult,
    route_point,
)
from smartzone.domain.workorders import RoutingMethod
from tools.seed_data import generate

# Two unit-ish squares side by side (about 1.1 km each at 31° N), sharing the edge lon = 118.31.
LEFT = [[118.30, 31.30], [118.31, 31.30], [118.31, 31.31], [118.30, 31.31], [118.30, 31.30]]
RIGHT = [[118.31, 31.30], [118.32, 31.30], [118.32, 31.31], [118.31, 31.31], [118.31, 31.30]]
HOLE = [[118.303, 31.303], [118.303, 31.307], [118.307, 31.307], [118.307, 31.303], [118.303, 31.303]]


def area(grid_id: str, *polygons: list[list[list[float]]]) -> GridArea:
    return GridArea(grid_id=grid_id, polygons=list(polygons))


G01 = area("G01", [LEFT])
G02 = area("G02", [RIGHT])


def routed(lon: float, lat: float, areas: list[GridArea], **kwargs: float) -> RouteResult:
    return route_point(lon, lat, areas, **kwargs)


def test_given_a_point_inside_one_grid_when_routed_then_that_grid_contains_it() -> None:
    result = routed(118.305, 31.305, [G01, G02])
    assert result.grid_id == "G01"
    assert result.routing.method is RoutingMethod.CONTAINS
    assert result.routing.note is None and result.routing.distance_m is None


@settings(max_examples=60, deadline=None)
@given(edge=st.integers(0, 3), t=st.floats(0, 1))
def test_given_a_point_on_any_edge_or_vertex_of_a_lone_grid_when_routed_then_it_is_inside(
    edge: int, t: float
) -> None:
    """Edges and vertices belong to the grid, on every side (not only west and south)."""
    a, b = RIGHT[edge], RIGHT[edge + 1]
    lon, lat = a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])
    result = routed(lon, lat, [G02])
    assert (result.grid_id, result.routing.method) == ("G02", RoutingMethod.CONTAINS)


@settings(max_examples=60, deadline=None)
@given(lat=st.floats(31.30, 31.31), seed=st.integers(0, 1000))
def test_given_a_point_on_a_shared_edge_when_routed_then_the_lowest_grid_id_takes_it_in_any_order(
    lat: float, seed: int
) -> None:
    areas = [G02, G01, area("G03", [[[118.40, 31.40], [118.41, 31.40], [118.41, 31.41], [118.40, 31.40]]])]
    random.Random(seed).shuffle(areas)
    result = routed(118.31, lat, areas)
    assert result.grid_id == "G01"
    assert result.routing.method is RoutingMethod.CONTAINS
    assert result.routing.note is not None and "G01、G02" in result.routing.note


def test_given_a_vertex_shared_by_four_grids_when_routed_then_the_lowest_grid_id_takes_it() -> None:
    def square(grid_id: str, lon: float, lat: float) -> GridArea:
        ring = [[lon, lat], [lon + 0.01, lat], [lon + 0.01, lat + 0.01], [lon, lat + 0.01], [lon, lat]]
        return area(grid_id, [ring])

    grids = [square("G07", 118.31, 31.31), square("G05", 118.30, 31.31), square("G06", 118.31, 31.30)]
    result = routed(118.31, 31.31, [*grids, square("G08", 118.30, 31.30)])
    assert result.grid_id == "G05"
    assert "G05、G06、G07、G08" in (result.routing.note or "")


def test_given_a_point_in_a_hole_when_routed_then_it_is_not_in_the_holed_grid() -> None:
    holed = area("G01", [LEFT, HOLE])
    enclave = area("G09", [HOLE])
    assert routed(118.305, 31.305, [holed, enclave]).grid_id == "G09"
    # Without the enclave, the hole is outside every grid: the nearest boundary is the hole's edge.
    alone = routed(118.305, 31.305, [holed])
    assert alone.routing.method is RoutingMethod.NEAREST and alone.grid_id == "G01"
    assert alone.routing.distance_m == pytest.approx(190, abs=5)  # 0.002° of latitude ≈ 222 m; of lon ≈ 190 m


def test_given_a_point_on_a_holes_edge_when_routed_then_the_edge_belongs_to_both_and_lowest_id_wins() -> None:
    holed = area("G04", [LEFT, HOLE])
    enclave = area("G09", [HOLE])
    for lon, lat in ((118.303, 31.305), (118.307, 31.305), (118.305, 31.307), (118.303, 31.303)):
        assert routed(lon, lat, [enclave, holed]).grid_id == "G04"
        assert routed(lon, lat, [holed]).routing.method is RoutingMethod.CONTAINS


def test_given_a_multipolygon_grid_when_a_point_is_in_its_second_part_then_it_is_routed_there() -> None:
    island = [[118.35, 31.35], [118.36, 31.35], [118.36, 31.36], [118.35, 31.36], [118.35, 31.35]]
    two_parts = GridArea.from_geojson("G11", {"type": "MultiPolygon", "coordinates": [[RIGHT], [island]]})
    assert routed(118.355, 31.355, [G01, two_parts]).grid_id == "G11"
    assert two_parts.geojson()["type"] == "MultiPolygon"


def test_given_a_point_within_the_fallback_distance_when_routed_then_the_nearest_grid_with_distance() -> None:
    lon, lat = geo.offset((118.32, 31.305), 200, 0)
    result = routed(lon, lat, [G01, G02])
    assert result.grid_id == "G02"
    assert result.routing.method is RoutingMethod.NEAREST
    assert result.routing.distance_m == pytest.approx(200, abs=0.5)
    assert result.routing.note is not None and "G02" in result.routing.note


def test_given_two_grids_equally_near_when_routed_then_the_lowest_grid_id_is_chosen() -> None:
    lon, lat = geo.offset((118.31, 31.31), 0, 100)  # 100 m north of the shared corner
    assert routed(lon, lat, [G02, G01]).grid_id == "G01"


def test_given_a_point_beyond_the_fallback_when_routed_then_the_command_centres_queue() -> None:
    lon, lat = geo.offset((118.32, 31.305), 501, 0)
    result = routed(lon, lat, [G01, G02])
    assert result.grid_id == COMMAND_CENTRE_GRID
    assert result.routing.method is RoutingMethod.COMMAND_CENTRE
    assert result.routing.note is not None and "指挥中心" in result.routing.note
    assert routed(lon, lat, [G01, G02], fallback_m=600).grid_id == "G02"
    assert routed(118.31, 31.31, []).grid_id == COMMAND_CENTRE_GRID


def test_given_a_point_a_millimetre_outside_when_routed_then_it_counts_as_on_the_edge() -> None:
    lon, lat = geo.offset((118.32, 31.305), 0.001, 0)
    assert routed(lon, lat, [G02]).routing.method is RoutingMethod.CONTAINS
    lon, lat = geo.offset((118.32, 31.305), 0.05, 0)
    assert routed(lon, lat, [G02]).routing.method is RoutingMethod.NEAREST


def test_given_bad_geometry_or_position_when_used_then_a_value_error() -> None:
    with pytest.raises(ValueError, match="end where it starts"):
        GridArea(grid_id="G01", polygons=[[[[118.3, 31.3], [118.31, 31.3], [118.31, 31.31], [118.3, 31.31]]]])
    with pytest.raises(ValueError, match="Polygon or MultiPolygon"):
        GridArea.from_geojson("G01", {"type": "Point", "coordinates": [118.3, 31.3]})
    with pytest.raises(ValueError, match="WGS-84"):
        route_point(float("nan"), 31.3, [G01])


def test_given_the_seeded_district_when_every_cover_and_camera_is_routed_then_its_registered_grid() -> None:
    """The half-open rule that assigned the seed's covers agrees with routing (no seed point lies on
    an edge), and every boundary of the tiling is routable."""
    data = generate()
    areas = [GridArea.from_geojson(grid_id, g) for grid_id, g in data["boundaries"].items()]
    for record in [*data["devices"], *data["cameras"]]:
        result = route_point(record["lon"], record["lat"], areas)
        assert (result.grid_id, result.routing.method) == (record["grid_id"], RoutingMethod.CONTAINS)
