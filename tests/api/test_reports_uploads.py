"""Patrol reports (idempotent on the client's request id) and presigned photo uploads."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from functions.api.routes.reports import report_order_id
from tests.api.conftest import UPLOADS_BUCKET, People
from tests.support.api import ApiClient

REPORT = {
    "client_request_id": "7b0c1f9e-report-1",
    "category": "patrol_report",
    "description": "高新大道与长江路口有建筑垃圾占道",
    "location": {"lon": 118.3521, "lat": 31.3311, "road": "高新大道"},
    "photos": ["uploads/2026/11/29/gw-g03-01/abc.jpg"],
}


def test_given_a_patrol_report_when_posted_then_a_dispatched_order_in_the_reporters_grid(
    people: People, api_env: Any
) -> None:
    response = ApiClient(people.gw_g03).post("/v1/reports", REPORT)
    assert response.status == 201, response.body
    order = response.body
    assert order["order_id"] == report_order_id("gw-g03-01", REPORT["client_request_id"])
    assert (order["status"], order["source"], order["grid_id"]) == ("dispatched", "patrol", "G03")
    assert order["category"] == "patrol_report" and order["location"]["lon"] == 118.3521
    assert order["timeline"][0]["photos"] == REPORT["photos"]
    assert order["timeline"][0]["actor"] == "gw-g03-01"
    listed = ApiClient(people.gw_g03).get("/v1/workorders", category="patrol_report").body["items"]
    assert [o["order_id"] for o in listed] == [order["order_id"]]
    assert ApiClient(people.gw_g04).get(f"/v1/workorders/{order['order_id']}").status == 404


def test_given_an_offline_retry_when_the_same_report_is_posted_again_then_200_and_one_order(
    people: People, api_env: Any
) -> None:
    client = ApiClient(people.gw_g03)
    first = client.post("/v1/reports", REPORT)
    retry = client.post("/v1/reports", REPORT)
    assert (first.status, retry.status) == (201, 200)
    assert retry.body["order_id"] == first.body["order_id"]
    assert retry.body["created_at"] == first.body["created_at"]
    items = ApiClient(people.dispatcher).get("/v1/workorders", category="patrol_report").body["items"]
    assert len(items) == 1


def test_given_two_reporters_with_the_same_request_id_when_posting_then_two_orders(
    people: People, api_env: Any
) -> None:
    a = ApiClient(people.gw_g03).post("/v1/reports", REPORT)
    b = ApiClient(people.gw_g04).post("/v1/reports", REPORT)
    assert (a.status, b.status) == (201, 201)
    assert a.body["order_id"] != b.body["order_id"]
    assert b.body["grid_id"] == "G04"


def test_given_a_reporter_without_a_grid_when_reporting_then_422(people: People, api_env: Any) -> None:
    response = ApiClient(people.gw_nogrid).post("/v1/reports", REPORT)
    assert response.status == 422
    assert response.body["field"] == "grid_id"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"client_request_id": None}, "client_request_id"),
        ({"category": "device_offline"}, "category"),
        ({"category": "ufo"}, "category"),
        ({"description": ""}, "description"),
        ({"location": {"lon": 200, "lat": 31.3}}, "lon"),
        ({"photos": ["s3://other-bucket/x.jpg"]}, "photos"),
        ({"extra": 1}, "extra"),
    ],
)
def test_given_a_bad_report_when_posted_then_422_naming_the_field(
    people: People, api_env: Any, change: dict[str, Any], field: str
) -> None:
    body = {**REPORT, **change}
    body = {k: v for k, v in body.items() if v is not None}
    response = ApiClient(people.gw_g03).post("/v1/reports", body)
    assert response.status == 422
    named = [response.body["field"], *(d["field"] for d in response.body["details"])]
    assert any(field in name.split(".") for name in named)


def policy_of(ticket: dict[str, Any]) -> dict[str, Any]:
    policy: dict[str, Any] = json.loads(base64.b64decode(ticket["fields"]["policy"]))
    return policy


def test_given_a_photo_when_asking_for_an_upload_then_a_presigned_post_limited_by_type_and_size(
    people: People, api_env: Any, clock: Any
) -> None:
    response = ApiClient(people.gw_g03).post(
        "/v1/uploads", {"content_type": "image/png", "size_bytes": 2_000_000, "purpose": "order_photo"}
    )
    assert response.status == 201, response.body
    ticket = response.body
    assert UPLOADS_BUCKET in ticket["url"]
    assert ticket["key"].startswith("uploads/") and "/gw-g03-01/" in ticket["key"]
    assert ticket["key"].endswith(".png") and ticket["fields"]["key"] == ticket["key"]
    conditions = policy_of(ticket)["conditions"]
    assert {"Content-Type": "image/png"} in conditions
    assert ["content-length-range", 1, 2_000_000] in conditions
    assert {"bucket": UPLOADS_BUCKET} in conditions and {"key": ticket["key"]} in conditions
    assert ticket["fields"]["Content-Type"] == "image/png"


def test_given_an_upload_ticket_when_its_policy_is_read_then_it_expires_in_ten_minutes(
    people: People, api_env: Any
) -> None:
    from datetime import datetime

    response = ApiClient(people.tech).post(
        "/v1/uploads", {"content_type": "image/jpeg", "size_bytes": 1, "purpose": "report_photo"}
    )
    expiration = datetime.fromisoformat(policy_of(response.body)["expiration"].replace("Z", "+00:00"))
    issued = datetime.fromisoformat(response.body["expires_at"].replace("Z", "+00:00"))
    assert abs((expiration - issued).total_seconds()) < 5
    assert response.body["key"].endswith(".jpg")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"content_type": "application/pdf", "size_bytes": 10, "purpose": "order_photo"}, "content_type"),
        (
            {"content_type": "image/png", "size_bytes": 10 * 1024 * 1024 + 1, "purpose": "order_photo"},
            "size_bytes",
        ),
        ({"content_type": "image/png", "size_bytes": 0, "purpose": "order_photo"}, "size_bytes"),
        ({"content_type": "image/png", "size_bytes": 10, "purpose": "selfie"}, "purpose"),
        ({"content_type": "image/png", "size_bytes": 10}, "purpose"),
    ],
)
def test_given_a_bad_upload_request_when_posted_then_422_naming_the_field(
    people: People, api_env: Any, body: dict[str, Any], field: str
) -> None:
    response = ApiClient(people.gw_g03).post("/v1/uploads", body)
    assert response.status == 422
    named = [response.body["field"], *(d["field"] for d in response.body["details"])]
    assert any(field in name.split(".") for name in named)


def test_given_an_uploaded_key_when_attached_to_a_transition_then_it_is_on_the_timeline(
    people: People, store_order: Any
) -> None:
    from tests.support.orders import tilt_order

    order = store_order(tilt_order())
    client = ApiClient(people.gw_g03)
    key = client.post(
        "/v1/uploads", {"content_type": "image/webp", "size_bytes": 5000, "purpose": "order_photo"}
    ).body["key"]
    response = client.post(
        f"/v1/workorders/{order.order_id}/transitions", {"action": "comment", "photos": [key]}
    )
    assert response.status == 200
    assert response.body["timeline"][-1]["photos"] == [key]
