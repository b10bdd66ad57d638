"""Patrol reports routed by location (``POST /v1/reports``): the grid containing the point, a shared
edge, the nearest grid within 500 m, the command centre beyond, the reporter's grid without a
location, and locations declared in GCJ-02."""

from __future__ import annotations

from typing import Any

from smartzone.domain import geo
from smartzone.domain.coordinates import from_wgs84
from smartzone.domain.registry import Grid
from smartzone.domain.routing import COMMAND_CENTRE_GRID
from smartzone.repositories.devices import DeviceRepository
from tests.api.conftest import People
from tests.support.api import ApiClient

G03_RING = [[118.30, 31.30], [118.31, 31.30], [118.31, 31.31], [118.30, 31.31], [118.30, 31.30]]
G04_RING = [[118.31, 31.30], [118.32, 31.30], [118.32, 31.31], [118.31, 31.31], [118.31, 31.30]]


def report(request_id: str, location: dict[str, Any] | None) -> dict[str, Any]:
    body: dict[str, Any] = {"client_request_id": request_id, "description": "路面有建筑垃圾"}
    if location is not None:
        body["location"] = location
    return body


def test_given_grid_boundaries_when_reports_are_filed_then_each_order_goes_where_its_location_is(
    api_env: Any, people: People
) -> None:
    """Given G03 and G04 side by side with boundaries, when a G03 worker reports from several places,
    then each order goes to the grid by location, and the routing (with any fallback) is on the order."""
    DeviceRepository(api_env.table_name).put_many(
        [],
        [
            Grid(grid_id="G03", name="第三网格", community="滨江社区"),
            Grid(grid_id="G04", name="第四网格", community="滨江社区"),
        ],
        boundaries={
            "G03": {"type": "Polygon", "coordinates": [G03_RING]},
            "G04": {"type": "Polygon", "coordinates": [G04_RING]},
        },
    )
    worker = ApiClient(people.gw_g03)

    def post(request_id: str, location: dict[str, Any] | None) -> dict[str, Any]:
        response = worker.post("/v1/reports", report(request_id, location))
        assert response.status == 201, response.body
        body: dict[str, Any] = response.body
        return body

    inside = post("in-g04", {"lon": 118.315, "lat": 31.305, "road": "长江路"})
    assert (inside["grid_id"], inside["routing"]["method"], inside["routing"]["note"]) == (
        "G04",
        "contains",
        None,
    )
    assert ApiClient(people.gw_g04).get(f"/v1/workorders/{inside['order_id']}").status == 200

    edge = post("on-edge", {"lon": 118.31, "lat": 31.305})
    assert (edge["grid_id"], edge["routing"]["method"]) == ("G03", "contains")
    assert "G03、G04" in edge["routing"]["note"]

    near_lon, near_lat = geo.offset((118.32, 31.305), 200, 0)
    near = post("near", {"lon": near_lon, "lat": near_lat})
    assert (near["grid_id"], near["routing"]["method"]) == ("G04", "nearest")
    assert abs(near["routing"]["distance_m"] - 200) < 1

    far = post("far", {"lon": 118.5, "lat": 31.5})
    assert (far["grid_id"], far["routing"]["method"]) == (COMMAND_CENTRE_GRID, "command_centre")
    assert "指挥中心" in far["routing"]["note"]
    assert ApiClient(people.dispatcher).get(f"/v1/workorders/{far['order_id']}").status == 200

    no_location = post("nowhere", None)
    assert (no_location["grid_id"], no_location["routing"]["method"]) == ("G03", "registry")
    assert no_location["location"] is None

    gcj = from_wgs84(118.315, 31.305, "GCJ-02")
    converted = post("gcj", {"lon": gcj[0], "lat": gcj[1], "crs": "GCJ-02"})
    assert converted["grid_id"] == "G04"
    assert (
        geo.haversine_m((118.315, 31.305), (converted["location"]["lon"], converted["location"]["lat"])) < 0.5
    )

    homeless = ApiClient(people.gw_nogrid).post(
        "/v1/reports", report("homeless", {"lon": 118.305, "lat": 31.305})
    )
    assert (homeless.status, homeless.body["grid_id"]) == (201, "G03")
    refused = ApiClient(people.gw_nogrid).post("/v1/reports", report("homeless-2", None))
    assert (refused.status, refused.body["field"]) == (422, "grid_id")
