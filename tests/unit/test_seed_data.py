"""The demo district's seed data: deterministic, complete, valid and geometrically consistent.

Also the geometry helpers it relies on (``smartzone.domain.geo``), notably the boundary rule that
makes every point of a tiling belong to exactly one grid.
"""

from __future__ import annotations

import itertools
import json
import random
import re
from functools import cache
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartzone.domain import geo
from smartzone.domain.registry import Device, Grid
from tools.seed import validate_district
from tools.seed_data import DEFAULT_PATH, DEFAULT_SEED, dumps, generate

MAIN_ROADS = {"高新大道", "科技路", "长江路", "创新大道", "滨江大道", "银湖路", "学府路", "港湾路"}


@cache
def district() -> dict[str, Any]:
    return generate(DEFAULT_SEED)


def polygons() -> dict[str, dict[str, Any]]:
    return district()["boundaries"]


def grids_containing(lon: float, lat: float) -> list[str]:
    return [gid for gid, polygon in polygons().items() if geo.contains(polygon, lon, lat)]


# --- determinism and the committed file ---------------------------------------------------------


def test_given_a_seed_when_generated_twice_then_the_data_is_identical() -> None:
    assert dumps(generate(DEFAULT_SEED)) == dumps(district())


def test_given_another_seed_when_generated_then_the_district_differs_but_keeps_its_shape() -> None:
    other = generate(DEFAULT_SEED + 1)
    assert other["devices"] != district()["devices"]
    assert len(other["devices"]) == 600
    assert len(other["grids"]) == 12
    assert other["devices"][177]["road"] == "高新大道"


def test_given_the_committed_file_when_regenerated_from_its_seed_then_it_is_byte_identical() -> None:
    text = DEFAULT_PATH.read_text(encoding="utf-8")
    data = json.loads(text)
    assert data["version"] == 1
    assert data["seed"] == DEFAULT_SEED
    assert text == dumps(generate(data["seed"])), "run: python -m tools.seed_data"


def test_given_the_committed_file_when_validated_like_the_loader_then_every_record_passes() -> None:
    loaded = validate_district(json.loads(DEFAULT_PATH.read_text(encoding="utf-8")), str(DEFAULT_PATH))
    assert len(loaded.grids) == 12
    assert len(loaded.devices) == 600
    assert set(loaded.boundaries) == {g.grid_id for g in loaded.grids}
    assert loaded.cameras == 25  # 20 river-bank cameras, 3 construction sites, 2 enterprises
    assert {c.kind.value for c in loaded.camera_records} == {"river", "site", "enterprise"}


# --- registry records ---------------------------------------------------------------------------


def test_given_the_district_then_it_has_600_unique_valid_covers_mh_0001_to_mh_0600() -> None:
    devices = [Device.model_validate(raw) for raw in district()["devices"]]
    assert [d.device_id for d in devices] == [f"MH-{n:04d}" for n in range(1, 601)]
    assert len({(d.lon, d.lat) for d in devices}) == 600
    for device in devices:
        assert device.device_type == "manhole_cover"
        assert device.road in MAIN_ROADS
        assert device.name == f"{device.road}{int(device.device_id[3:])}号井"


def test_given_the_district_then_it_has_12_valid_grids_each_with_one_or_two_reachable_workers() -> None:
    grids = [Grid.model_validate(raw) for raw in district()["grids"]]
    assert [g.grid_id for g in grids] == [f"G{n:02d}" for n in range(1, 13)]
    workers = [w for g in grids for w in g.workers]
    assert all(1 <= len(g.workers) <= 2 for g in grids)
    assert len({w.worker_id for w in workers}) == len(workers)
    assert len({w.phone for w in workers}) == len(workers)
    for grid in grids:
        for worker in grid.workers:
            assert re.fullmatch(r"1[3-9]\d{9}", worker.phone)
            assert re.fullmatch(rf"{grid.grid_id.lower()}\.worker\d?@example\.org", worker.email or "")
            assert re.fullmatch(r"[\u4e00-\u9fff]{2,3}", worker.name)


def test_given_the_communities_then_they_partition_the_grids_and_house_over_50000_residents() -> None:
    communities = district()["communities"]
    assert 4 <= len(communities) <= 5
    grid_ids = [gid for c in communities for gid in c["grid_ids"]]
    assert sorted(grid_ids) == [f"G{n:02d}" for n in range(1, 13)]
    by_grid = {g["grid_id"]: g for g in district()["grids"]}
    for community in communities:
        assert community["name"].endswith("社区")
        assert all(by_grid[gid]["community"] == community["name"] for gid in community["grid_ids"])
    assert sum(c["residents"] for c in communities) > 50_000
    big = [c for c in communities if c["residents"] > 11_000]
    assert any(len(c["grid_ids"]) == 1 and len(by_grid[c["grid_ids"][0]]["workers"]) == 1 for c in big)


def test_given_the_command_centre_then_it_has_dispatchers_with_contacts() -> None:
    centre = district()["command_centre"]
    assert centre["email"].endswith("@example.org")
    assert centre["dispatchers"]
    assert all(re.fullmatch(r"1[3-9]\d{9}", d["phone"]) for d in centre["dispatchers"])


# --- geometry -----------------------------------------------------------------------------------


def test_given_the_grid_polygons_then_they_are_valid_counter_clockwise_rings_inside_the_bbox() -> None:
    west, south, east, north = district()["district"]["bbox"]
    assert 7_500 < geo.haversine_m((west, south), (east, south)) < 8_500
    assert 5_500 < geo.haversine_m((west, south), (west, north)) < 6_800
    for polygon in polygons().values():
        geo.validate_polygon(polygon)
        ring = polygon["coordinates"][0]
        assert geo.signed_area(ring) > 0
        assert all(geo.in_bbox((west, south, east, north), lon, lat) for lon, lat in ring)


def test_given_the_grid_polygons_then_their_areas_add_up_to_the_district() -> None:
    total = sum(geo.signed_area(p["coordinates"][0]) for p in polygons().values())
    outline = geo.signed_area(district()["district"]["boundary"]["coordinates"][0])
    assert total == pytest.approx(outline, rel=1e-9)


def test_given_every_cover_when_located_then_it_lies_in_its_own_grid_and_no_other() -> None:
    for device in district()["devices"]:
        assert grids_containing(device["lon"], device["lat"]) == [device["grid_id"]], device["device_id"]


def test_given_vertices_edge_points_and_random_points_when_located_then_no_point_is_in_two_grids() -> None:
    rng = random.Random(7)
    west, south, east, north = district()["district"]["bbox"]
    samples = [(rng.uniform(west, east), rng.uniform(south, north)) for _ in range(3_000)]
    for polygon in polygons().values():
        ring = polygon["coordinates"][0]
        for a, b in itertools.pairwise(ring):
            samples += [(a[0], a[1]), ((a[0] + b[0]) / 2, (a[1] + b[1]) / 2)]
    outline = district()["district"]["boundary"]
    for lon, lat in samples:
        found = grids_containing(lon, lat)
        assert len(found) <= 1, (lon, lat, found)
        assert (len(found) == 1) == geo.contains(outline, lon, lat), (lon, lat)


@given(st.floats(0.001, 0.999), st.floats(0.001, 0.999))
def test_given_any_point_of_the_district_when_located_then_it_is_in_one_grid(u: float, v: float) -> None:
    west, south, east, _ = district()["district"]["bbox"]
    lon = west + u * (east - west)
    lat = south + v * (31.352 - south)  # below the lowest point of the river bank
    assert len(grids_containing(lon, lat)) == 1


def test_given_the_story_cover_mh_0178_then_it_is_on_gaoxin_avenue_and_named_after_its_number() -> None:
    cover = next(d for d in district()["devices"] if d["device_id"] == "MH-0178")
    assert cover["road"] == "高新大道"
    assert cover["name"] == "高新大道178号井"
    assert grids_containing(cover["lon"], cover["lat"]) == [cover["grid_id"]]


def test_given_the_roads_then_there_are_eight_and_every_cover_lies_on_its_road() -> None:
    roads = {r["name"]: r for r in district()["roads"]}
    assert set(roads) == MAIN_ROADS
    for device in district()["devices"]:
        line = roads[device["road"]]["line"]["coordinates"]
        assert geo.distance_to_line_m((device["lon"], device["lat"]), line) < 12, device["device_id"]
    counts = {name: sum(d["road"] == name for d in district()["devices"]) for name in roads}
    assert all(counts[name] > 0.8 * 600 * r["length_m"] / sum(x["length_m"] for x in roads.values())
               for name, r in roads.items())  # fmt: skip


def test_given_the_river_bank_then_20_cameras_watch_7_7_km_of_it_from_the_riverside_grids() -> None:
    river = district()["river"]
    bank = river["bank"]["coordinates"]
    assert geo.line_length_m(bank) == pytest.approx(7_700, abs=20)
    cameras = district()["cameras"]
    assert [c["camera_id"] for c in cameras] == [f"CAM-{n:02d}" for n in range(1, 21)]
    segments = {s["segment_id"]: s for s in river["segments"]}
    watched = sorted(cid for s in segments.values() for cid in s["camera_ids"])
    assert watched == [c["camera_id"] for c in cameras]
    for camera in cameras:
        assert grids_containing(camera["lon"], camera["lat"]) == [camera["grid_id"]]
        assert camera["grid_id"] in {"G01", "G02", "G03", "G04"}
        assert geo.distance_to_line_m((camera["lon"], camera["lat"]), bank) < 60
        segment = segments[camera["river_segment"]]
        assert segment["from_m"] <= camera["chainage_m"] < segment["to_m"]
        assert camera["name"]


# --- geo helpers --------------------------------------------------------------------------------

SQUARE = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}


@pytest.mark.parametrize(
    ("point", "inside"),
    [
        ((0.5, 0.5), True),
        ((0.0, 0.5), True),  # west edge
        ((0.5, 0.0), True),  # south edge
        ((0.0, 0.0), True),  # south-west corner
        ((1.0, 0.5), False),  # east edge
        ((0.5, 1.0), False),  # north edge
        ((1.0, 1.0), False),
        ((1.0, 0.0), False),
        ((0.0, 1.0), False),
        ((1.5, 0.5), False),
    ],
)
def test_given_a_square_when_testing_boundary_points_then_west_and_south_edges_are_inside(
    point: tuple[float, float], inside: bool
) -> None:
    assert geo.contains(SQUARE, *point) is inside


@given(
    st.floats(-0.4, 0.4),
    st.floats(-0.4, 0.4),
    st.floats(0, 1),
    st.floats(-1e-9, 1e-9),
)
def test_given_two_polygons_sharing_a_slanted_edge_when_a_point_is_on_or_near_it_then_exactly_one_contains_it(
    top_shift: float, bottom_shift: float, t: float, nudge: float
) -> None:
    bottom, top = [1 + bottom_shift, 0.0], [1 + top_shift, 1.0]
    left = {"type": "Polygon", "coordinates": [[[0, 0], bottom, top, [0, 1], [0, 0]]]}
    right = {"type": "Polygon", "coordinates": [[bottom, [3, 0], [3, 1], top, bottom]]}
    lat = min(t, 0.999)
    lon = bottom[0] + (top[0] - bottom[0]) * lat + nudge
    assert geo.contains(left, lon, lat) != geo.contains(right, lon, lat)


def test_given_a_polygon_with_a_hole_then_points_in_the_hole_are_outside() -> None:
    hole = [[0.25, 0.25], [0.25, 0.75], [0.75, 0.75], [0.75, 0.25], [0.25, 0.25]]
    polygon = {"type": "Polygon", "coordinates": [SQUARE["coordinates"][0], hole]}
    assert not geo.contains(polygon, 0.5, 0.5)
    assert geo.contains(polygon, 0.1, 0.5)
    multi = {"type": "MultiPolygon", "coordinates": [polygon["coordinates"], [hole]]}
    assert geo.contains(multi, 0.5, 0.5)


@pytest.mark.parametrize(
    ("geometry", "message"),
    [
        ({"type": "Point", "coordinates": [0, 0]}, "Polygon"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [0, 0]]]}, "four positions"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]]}, "end where it starts"),
        ({"type": "Polygon", "coordinates": [[[31, 118], [31, 119], [32, 119], [31, 118]]]}, "[lon, lat]"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, "x"], [1, 1], [0, 0]]]}, "finite numbers"),
    ],
)
def test_given_a_malformed_polygon_when_validated_then_the_error_says_what_is_wrong(
    geometry: dict[str, Any], message: str
) -> None:
    with pytest.raises(geo.GeometryError, match=re.escape(message)):
        geo.validate_polygon(geometry)


def test_given_a_line_when_walking_along_it_then_distances_and_headings_are_right() -> None:
    line = [[118.30, 31.30], [118.31, 31.30], [118.31, 31.31]]
    first = geo.haversine_m(line[0], line[1])
    assert 940 < first < 960  # ~951 m per 0.01° of longitude at 31.3° N
    assert geo.line_length_m(line) == pytest.approx(first + geo.haversine_m(line[1], line[2]))
    lon, lat, heading = geo.point_along(line, first / 2)
    assert (lon, lat) == pytest.approx((118.305, 31.30))
    assert heading == pytest.approx(90, abs=0.01)
    assert geo.point_along(line, first + 10)[2] == pytest.approx(0, abs=0.01)
    moved = geo.offset((118.305, 31.30), 0, 100)
    assert geo.distance_to_line_m(moved, line[:2]) == pytest.approx(100, rel=1e-3)
    assert geo.bbox({"type": "LineString", "coordinates": line}) == (118.30, 31.30, 118.31, 31.31)
