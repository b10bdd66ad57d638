"""Coordinate systems (``smartzone.domain.coordinates``): GCJ-02 and BD-09 to and from WGS-84."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smartzone.domain import geo
from smartzone.domain.coordinates import (
    bd09_to_gcj02,
    bd09_to_wgs84,
    from_wgs84,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    geometry_to_wgs84,
    out_of_china,
    to_wgs84,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)

china_lon = st.floats(75.0, 134.0)
china_lat = st.floats(18.0, 53.0)


def test_given_the_published_reference_point_when_converted_forward_then_the_published_values() -> None:
    """Reference values of the widely used coordtransform library for (116.404, 39.915)."""
    assert wgs84_to_gcj02(116.404, 39.915) == pytest.approx(
        (116.41024449916938, 39.91640428150164), abs=1e-12
    )
    assert gcj02_to_bd09(116.404, 39.915) == pytest.approx((116.41036949371029, 39.92133699351021), abs=1e-12)


def test_given_a_point_in_the_district_when_shifted_to_gcj02_then_by_a_few_hundred_metres() -> None:
    wgs = (118.34, 31.33)
    assert 100 < geo.haversine_m(wgs, wgs84_to_gcj02(*wgs)) < 700
    assert geo.haversine_m(wgs, wgs84_to_bd09(*wgs)) > geo.haversine_m(wgs, wgs84_to_gcj02(*wgs))


@settings(max_examples=150, deadline=None)
@given(lon=china_lon, lat=china_lat)
def test_given_any_point_in_china_when_gcj02_is_inverted_then_within_half_a_metre(
    lon: float, lat: float
) -> None:
    gcj = wgs84_to_gcj02(lon, lat)
    assert geo.haversine_m((lon, lat), gcj02_to_wgs84(*gcj)) < 0.5
    assert geo.haversine_m((lon, lat), to_wgs84(*gcj, "GCJ-02")) < 0.5


@settings(max_examples=150, deadline=None)
@given(lon=china_lon, lat=china_lat)
def test_given_any_point_in_china_when_bd09_is_inverted_then_within_half_a_metre(
    lon: float, lat: float
) -> None:
    bd = wgs84_to_bd09(lon, lat)
    assert geo.haversine_m((lon, lat), bd09_to_wgs84(*bd)) < 0.5
    assert geo.haversine_m((lon, lat), to_wgs84(*bd, "BD-09")) < 0.5
    gcj = wgs84_to_gcj02(lon, lat)
    assert geo.haversine_m(gcj, bd09_to_gcj02(*gcj02_to_bd09(*gcj))) < 0.5


@pytest.mark.parametrize("point", [(2.35, 48.85), (-74.0, 40.7), (151.2, -33.9), (139.9, 36.0)])
def test_given_a_point_outside_china_when_converted_from_gcj02_then_unchanged(
    point: tuple[float, float],
) -> None:
    assert out_of_china(*point)
    assert wgs84_to_gcj02(*point) == point
    assert gcj02_to_wgs84(*point) == point
    assert to_wgs84(*point, "WGS-84") == point


def test_given_wgs84_when_exported_and_imported_again_then_the_same_point() -> None:
    point = (118.34, 31.33)
    for crs in ("WGS-84", "GCJ-02", "BD-09"):
        assert geo.haversine_m(point, to_wgs84(*from_wgs84(*point, crs), crs)) < 0.5  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown coordinate system"):
        to_wgs84(118.3, 31.3, "CGCS2000")  # type: ignore[arg-type]


def test_given_a_closed_ring_in_gcj02_when_converted_then_it_stays_closed_and_valid() -> None:
    ring = [[118.30, 31.30], [118.31, 31.30], [118.31, 31.31], [118.30, 31.31], [118.30, 31.30]]
    converted = geometry_to_wgs84([ring], "GCJ-02")
    assert converted[0][0] == converted[0][-1]
    geo.validate_polygon({"type": "Polygon", "coordinates": converted})
    assert 100 < geo.haversine_m(ring[0], converted[0][0]) < 700
