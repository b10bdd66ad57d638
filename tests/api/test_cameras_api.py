"""The camera registry and grid boundaries through the API: lists and filters, reach by role, admin
writes with declared coordinate systems, PATCH of detection settings, bulk import, boundary import."""

from __future__ import annotations

from typing import Any

import pytest

from smartzone.domain import geo
from smartzone.domain.cameras import Camera, CameraKind, DetectionSetting
from smartzone.domain.coordinates import from_wgs84
from smartzone.domain.detections import DETECTION_POLICIES, DetectionType
from smartzone.domain.registry import Grid
from smartzone.repositories.cameras import CameraRepository
from smartzone.repositories.devices import DeviceRepository
from tests.api.conftest import People
from tests.support.api import ApiClient

G03_RING = [[118.30, 31.30], [118.31, 31.30], [118.31, 31.31], [118.30, 31.31], [118.30, 31.30]]
G04_RING = [[118.31, 31.30], [118.32, 31.30], [118.32, 31.31], [118.31, 31.31], [118.31, 31.30]]


def polygon(ring: list[list[float]]) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": [ring]}


@pytest.fixture
def district(api_env: Any) -> CameraRepository:
    """Grids G03 and G04 (side by side, with boundaries); cameras CAM-01 (river, G03), CAM-E01
    (enterprise, G03) and CAM-S01 (site, G04)."""
    DeviceRepository(api_env.table_name).put_many(
        [],
        [
            Grid(grid_id="G03", name="第三网格", community="滨江社区"),
            Grid(grid_id="G04", name="第四网格", community="滨江社区"),
        ],
        boundaries={"G03": polygon(G03_RING), "G04": polygon(G04_RING)},
    )
    repo = CameraRepository(api_env.table_name)
    repo.put_many(
        [
            Camera(
                camera_id="CAM-01",
                name="江岸01号",
                lon=118.305,
                lat=31.309,
                grid_id="G03",
                river_segment="RB-1",
            ),
            Camera(
                camera_id="CAM-E01",
                name="治污设施",
                kind=CameraKind.ENTERPRISE,
                lon=118.302,
                lat=31.302,
                grid_id="G03",
                detections=[DetectionSetting.default(DetectionType.POLLUTION_EQUIPMENT_STOPPED)],
            ),
            Camera(
                camera_id="CAM-S01", name="工地", kind=CameraKind.SITE, lon=118.315, lat=31.305, grid_id="G04"
            ),
        ]
    )
    return repo


def ids(response: Any) -> list[str]:
    assert response.status == 200, response.body
    return [c["camera_id"] for c in response.body["items"]]


REGISTRATION: dict[str, Any] = {"name": "江岸21号摄像机", "kind": "river", "lon": 118.3155, "lat": 31.3055}


def names_field(response: Any, field: str) -> bool:
    named = [response.body["field"], *(d["field"] for d in response.body.get("details", []))]
    return any(field in name.split(".") for name in named)


# --- reads: lists, filters, paging and reach ---------------------------------------------------------


def test_given_cameras_when_listed_and_read_then_filters_paging_and_reach_by_grid_hold(
    district: CameraRepository, people: People
) -> None:
    """Given three cameras in G03 and G04, when people list and read them, then dispatchers see all
    (filtered by grid and kind, paged by signed cursors), grid workers their grids' (404 beyond)."""
    client = ApiClient(people.dispatcher)
    assert ids(client.get("/v1/cameras")) == ["CAM-01", "CAM-E01", "CAM-S01"]
    assert ids(client.get("/v1/cameras", kind="site")) == ["CAM-S01"]
    assert ids(client.get("/v1/cameras", grid_id="G03")) == ["CAM-01", "CAM-E01"]
    assert ids(client.get("/v1/cameras", grid_id="G03", kind="enterprise")) == ["CAM-E01"]
    assert client.get("/v1/cameras", kind="drone").status == 422
    assert client.get("/v1/cameras/CAM-99").status == 404
    assert client.get("/v1/cameras/not-a-camera").status == 404

    seen: list[str] = []
    cursor: str | None = None
    for _ in range(5):
        page = client.get("/v1/cameras", limit="1", **({"cursor": cursor} if cursor else {}))
        seen += ids(page)
        cursor = page.body["next_cursor"]
        if cursor is None:
            break
    assert seen == ["CAM-01", "CAM-E01", "CAM-S01"]
    first = client.get("/v1/cameras", limit="1").body["next_cursor"]
    assert client.get("/v1/cameras", limit="1", cursor=first[:-2] + "xx").status == 400
    assert client.get("/v1/cameras", kind="site", cursor=first).status == 400  # another query's cursor

    worker = ApiClient(people.gw_g03)
    assert ids(worker.get("/v1/cameras")) == ["CAM-01", "CAM-E01"]
    assert ids(worker.get("/v1/cameras", kind="river")) == ["CAM-01"]
    assert worker.get("/v1/cameras", grid_id="G04").status == 404
    assert worker.get("/v1/cameras/CAM-S01").status == 404
    detail = worker.get("/v1/cameras/CAM-01")
    assert detail.status == 200
    assert (detail.body["grid_id"], detail.body["kind"], detail.body["version"]) == ("G03", "river", 1)
    assert ids(ApiClient(people.tech).get("/v1/cameras")) == []
    assert ApiClient(people.tech).get("/v1/cameras/CAM-01").status == 404


# --- PUT: create and replace ----------------------------------------------------------------------


def test_given_gcj02_coordinates_without_a_grid_when_an_admin_puts_a_camera_then_wgs84_its_grid_and_defaults(
    district: CameraRepository, people: People
) -> None:
    wgs = (118.3155, 31.3055)
    gcj = from_wgs84(*wgs, "GCJ-02")
    admin = ApiClient(people.admin)
    body = {**REGISTRATION, "lon": gcj[0], "lat": gcj[1], "crs": "GCJ-02"}
    created = admin.put("/v1/cameras/CAM-21", body)
    assert created.status == 201, created.body
    camera = created.body["camera"]
    assert created.body["status"] == "created" and camera["version"] == 1
    assert geo.haversine_m(wgs, (camera["lon"], camera["lat"])) < 0.5
    assert camera["grid_id"] == "G04"  # found by location
    assert [d["type"] for d in camera["detections"]] == [
        "illegal_dumping",
        "river_loitering",
        "illegal_fishing",
        "straw_burning",
    ]
    dumping = DETECTION_POLICIES[DetectionType.ILLEGAL_DUMPING]
    assert camera["detections"][0] == {
        "type": "illegal_dumping",
        "min_confidence": dumping.default_min_confidence,
        "quiet_window_s": dumping.default_quiet_window_s,
    }
    again = admin.put("/v1/cameras/CAM-21", body)
    assert (again.status, again.body["status"]) == (200, "unchanged")
    replaced = admin.put(
        "/v1/cameras/CAM-21",
        {
            **REGISTRATION,
            "grid_id": "G03",
            "vendor_id": "hikvision-demo",
            "detections": [{"type": "straw_burning"}],
        },
    )
    assert (replaced.status, replaced.body["status"], replaced.body["camera"]["version"]) == (
        200,
        "updated",
        2,
    )
    assert replaced.body["camera"]["grid_id"] == "G03"
    assert [d["type"] for d in replaced.body["camera"]["detections"]] == ["straw_burning"]
    assert district.batch_get(["CAM-21"])["CAM-21"].vendor_id == "hikvision-demo"


BAD_PUTS: list[tuple[str, dict[str, Any], str]] = [
    ("/v1/cameras/CAM-21", {"grid_id": "G99"}, "grid_id"),
    ("/v1/cameras/CAM-21", {"lon": 118.5, "lat": 31.5}, "grid_id"),  # in no grid
    ("/v1/cameras/cam_21", {}, "camera_id"),
    (
        "/v1/cameras/CAM-21",
        {"detections": [{"type": "straw_burning"}, {"type": "straw_burning"}]},
        "detections",
    ),
    (
        "/v1/cameras/CAM-21",
        {"detections": [{"type": "straw_burning", "min_confidence": 1.5}]},
        "min_confidence",
    ),
    ("/v1/cameras/CAM-21", {"detections": [{"type": "ufo"}]}, "type"),
    ("/v1/cameras/CAM-21", {"crs": "EPSG:3857"}, "crs"),
    ("/v1/cameras/CAM-21", {"lat": 95}, "lat"),
    ("/v1/cameras/CAM-21", {"vendor_id": "Bad Vendor"}, "vendor_id"),
    ("/v1/cameras/CAM-21", {"colour": "red"}, "colour"),
]
BAD_PATCHES: list[tuple[str, dict[str, Any], int, str | None]] = [
    ("/v1/cameras/CAM-01", {}, 422, "body"),
    ("/v1/cameras/CAM-01", {"name": None}, 422, "name"),
    ("/v1/cameras/CAM-01", {"grid_id": "G99"}, 422, "grid_id"),
    (
        "/v1/cameras/CAM-01",
        {"detections": [{"type": "river_loitering", "quiet_window_s": -1}]},
        422,
        "quiet_window_s",
    ),
    ("/v1/cameras/CAM-01", {"kind": "site"}, 422, "kind"),
    ("/v1/cameras/CAM-77", {"active": False}, 404, None),
]


def test_given_bad_or_unauthorised_writes_when_sent_then_422_naming_the_field_403_or_404(
    district: CameraRepository, people: People
) -> None:
    """Given the registry, when writes are malformed or come from non-admins, then each is refused
    with the right status (422 naming the field; 403 for a visible camera; 404 beyond reach) and
    nothing changes."""
    admin = ApiClient(people.admin)
    for path, change, field in BAD_PUTS:
        response = admin.put(path, {**REGISTRATION, **change})
        assert response.status == 422 and names_field(response, field), (change, response.body)
    for path, body, status, named in BAD_PATCHES:
        response = admin.patch(path, body)
        assert response.status == status, (body, response.body)
        assert named is None or names_field(response, named), (body, response.body)
    assert ApiClient(people.dispatcher).put("/v1/cameras/CAM-01", REGISTRATION).status == 403
    assert ApiClient(people.gw_g03).put("/v1/cameras/CAM-01", REGISTRATION).status == 403
    assert ApiClient(people.gw_g04).put("/v1/cameras/CAM-01", REGISTRATION).status == 404
    assert ApiClient(people.gw_g04).patch("/v1/cameras/CAM-01", {"active": False}).status == 404
    assert ApiClient(people.dispatcher).patch("/v1/cameras/CAM-01", {"active": False}).status == 403
    assert ApiClient(people.dispatcher).post("/v1/cameras/import", []).status == 403
    assert ids(ApiClient(people.dispatcher).get("/v1/cameras")) == ["CAM-01", "CAM-E01", "CAM-S01"]
    assert district.get("CAM-01").version == 1  # type: ignore[union-attr]


# --- PATCH ------------------------------------------------------------------------------------------


def test_given_a_camera_when_an_admin_patches_settings_and_grid_then_other_values_are_kept_and_reach_follows(
    district: CameraRepository, people: People
) -> None:
    admin = ApiClient(people.admin)
    tuned = admin.patch(
        "/v1/cameras/CAM-E01",
        {
            "detections": [{"type": "pollution_equipment_stopped", "min_confidence": 0.9}],
            "vendor_id": "uniview-demo",
        },
    )
    assert tuned.status == 200, tuned.body
    policy = DETECTION_POLICIES[DetectionType.POLLUTION_EQUIPMENT_STOPPED]
    assert tuned.body["camera"]["detections"] == [
        {
            "type": "pollution_equipment_stopped",
            "min_confidence": 0.9,
            "quiet_window_s": policy.default_quiet_window_s,
        }
    ]
    assert (tuned.body["status"], tuned.body["camera"]["version"]) == ("updated", 2)
    stored = district.batch_get(["CAM-E01"])["CAM-E01"]
    assert stored.vendor_id == "uniview-demo" and stored.name == "治污设施" and stored.lon == 118.302
    assert admin.patch("/v1/cameras/CAM-E01", {"vendor_id": "uniview-demo"}).body["status"] == "unchanged"
    assert admin.patch("/v1/cameras/CAM-E01", {"vendor_id": None}).body["camera"]["vendor_id"] is None

    moved = admin.patch("/v1/cameras/CAM-01", {"grid_id": "G04", "active": False})
    assert moved.status == 200, moved.body
    assert (moved.body["camera"]["grid_id"], moved.body["camera"]["active"]) == ("G04", False)
    assert ApiClient(people.gw_g03).get("/v1/cameras/CAM-01").status == 404
    assert ApiClient(people.gw_g04).get("/v1/cameras/CAM-01").status == 200
    assert ids(ApiClient(people.dispatcher).get("/v1/cameras", grid_id="G04")) == ["CAM-01", "CAM-S01"]


# --- bulk import ------------------------------------------------------------------------------------


def test_given_rows_when_an_admin_imports_cameras_then_a_result_per_row(
    district: CameraRepository, people: People
) -> None:
    existing = district.batch_get(["CAM-S01"])["CAM-S01"].model_dump(mode="json")
    rows = [
        {**REGISTRATION, "camera_id": "CAM-22"},
        existing,
        {**REGISTRATION, "camera_id": "CAM-23", "lat": 95},
        {**REGISTRATION, "camera_id": "CAM-22"},
        {**REGISTRATION, "camera_id": "CAM-24", "grid_id": "G99"},
        {**REGISTRATION, "camera_id": "CAM-25", "lon": 118.5, "lat": 31.5},
        "not an object",
    ]
    response = ApiClient(people.admin).post("/v1/cameras/import", rows)
    assert response.status == 200, response.body
    statuses = [(r["row"], r["camera_id"], r["status"]) for r in response.body["rows"]]
    assert statuses == [
        (0, "CAM-22", "created"),
        (1, "CAM-S01", "unchanged"),
        (2, "CAM-23", "error"),
        (3, "CAM-22", "error"),
        (4, "CAM-24", "error"),
        (5, "CAM-25", "error"),
        (6, None, "error"),
    ]
    fields = [r["errors"][0]["field"] for r in response.body["rows"][2:]]
    assert fields == ["lat", "camera_id", "grid_id", "grid_id", "row"]
    assert response.body["counts"] == {"created": 1, "updated": 0, "unchanged": 1, "error": 5}
    assert district.batch_get(["CAM-22"])["CAM-22"].grid_id == "G04"


# --- grid boundaries --------------------------------------------------------------------------------

BAD_GEOMETRIES: list[tuple[dict[str, Any], str]] = [
    ({"type": "Polygon", "coordinates": [G04_RING[:-1]]}, "end where it starts"),
    (
        {"type": "Polygon", "coordinates": [[[118.31, 31.30], [118.32, 31.30], [118.31, 31.30]]]},
        "four positions",
    ),
    (
        {"type": "Polygon", "coordinates": [[[31.30, 218.31], *G04_RING[1:-1], [31.30, 218.31]]]},
        "out of range",
    ),
    ({"type": "Point", "coordinates": [118.31, 31.30]}, "Polygon or MultiPolygon"),
    (
        {
            "type": "Polygon",
            "coordinates": [[[118.31, "x"], [118.32, 31.30], [118.32, 31.31], [118.31, "x"]]],
        },
        "finite",
    ),
]


def test_given_a_boundary_in_bd09_when_an_admin_puts_it_then_it_is_stored_in_wgs84_and_routes_reports(
    district: CameraRepository, people: People
) -> None:
    island = [[118.40, 31.40], [118.41, 31.40], [118.41, 31.41], [118.40, 31.41], [118.40, 31.40]]
    bd09 = [list(from_wgs84(lon, lat, "BD-09")) for lon, lat in island]
    admin = ApiClient(people.admin)
    response = admin.put(
        "/v1/grids/G04/boundary",
        {"crs": "BD-09", "geometry": {"type": "MultiPolygon", "coordinates": [[G04_RING], [bd09]]}},
    )
    assert response.status == 200, response.body
    stored = response.body["geometry"]
    assert stored["type"] == "MultiPolygon"
    assert all(geo.haversine_m(a, b) < 0.5 for a, b in zip(island, stored["coordinates"][1][0], strict=True))
    assert ApiClient(people.gw_g04).get("/v1/grids/G04/boundary").body["geometry"] == stored
    assert ApiClient(people.gw_g03).get("/v1/grids/G04/boundary").status == 404
    report = {
        "client_request_id": "r-island",
        "description": "岛上有垃圾",
        "location": {"lon": 118.405, "lat": 31.405},
    }
    order = ApiClient(people.gw_g03).post("/v1/reports", report)
    assert (order.status, order.body["grid_id"], order.body["routing"]["method"]) == (201, "G04", "contains")

    for geometry, message in BAD_GEOMETRIES:
        refused = admin.put("/v1/grids/G04/boundary", {"geometry": geometry})
        assert refused.status == 422 and refused.body["field"] == "geometry", refused.body
        assert message in refused.body["message"], refused.body
    body = {"geometry": polygon(G04_RING)}
    assert ApiClient(people.dispatcher).put("/v1/grids/G04/boundary", body).status == 403
    assert ApiClient(people.gw_g03).put("/v1/grids/G04/boundary", body).status == 404
    assert admin.put("/v1/grids/G99/boundary", body).status == 404
    assert admin.put("/v1/grids/G04/boundary", {**body, "crs": "EPSG:4490"}).status == 422
    assert ApiClient(people.dispatcher).get("/v1/grids/G04/boundary").body["geometry"] == stored
