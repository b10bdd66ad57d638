"""The catalogue and sharing API (issue 8): browse, admin edits, the approval workflow, reads.

Reads of shared data are exercised through a minimal route built on ``functions.api.data_access``
(the same calls the data query endpoint makes: authorize, mask by the grant, log).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response

from smartzone.domain.catalogue import Resource, mask_row
from smartzone.domain.errors import ServiceError
from smartzone.domain.identity import Caller
from smartzone.domain.users import UserProfile
from tests.support.api import ApiClient, ApiResponse, claims_of, rest_event
from tests.support.telemetry import FakeContext
from tests.unit.test_catalogue import valid_record

WATER = Caller.of("sub-dw", "dept-water", ["department"])
EMERGENCY = Caller.of("sub-de", "dept-emergency", ["department"])
HEALTH = Caller.of("sub-dh", "dept-health", ["department"])
ORPHAN = Caller.of("sub-do", "dept-orphan", ["department"])
"""Has the department role but no department in the registry."""
ADMIN = Caller.of("sub-admin", "admin-01", ["admin"])
GRID_WORKER = Caller.of("sub-gw-g03", "gw-g03-01", ["grid_worker"])

CONDITIONAL = valid_record()
SECOND_CONDITIONAL = valid_record(code="210007000/000013", name="应急转移人员信息")
UNCONDITIONAL = valid_record(
    code="212007000/000001",
    classification="212",
    sharing_type="unconditional",
    condition=None,
    name="避难场所",
)
NOT_SHARED = valid_record(
    code="203007000/000001",
    classification="203",
    sharing_type="not_shared",
    condition=None,
    legal_basis="《自然灾害救助条例》第十九条",
    name="灾害救助对象",
)
ROW = {
    "id_number": "340202199001011234",
    "person_name": "欧阳娜娜",
    "phone": "13812345678",
    "address": "弋江区高新大道178号3栋501室",
    "household_no": "H-1",
    "grid_id": "G03",
    "quantity": 4,
}


class SharingClock:
    def __init__(self) -> None:
        self.now = datetime.now(tz=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> SharingClock:
    from functions.api import data_access

    fake = SharingClock()
    monkeypatch.setattr(data_access, "current_time", fake)
    return fake


@pytest.fixture
def catalogue(api_env) -> Any:  # type: ignore[no-untyped-def]
    from functions.api import data_access
    from smartzone.repositories.catalogue import CatalogueRepository
    from smartzone.repositories.users import UserRepository

    data_access._catalogue.cache_clear()
    data_access._sharing.cache_clear()
    users = UserRepository(api_env.table_name)
    for dept in ("water", "emergency", "health"):
        users.put(
            UserProfile(
                username=f"dept-{dept}", name=f"{dept}联络员", roles=["department"], department_id=dept
            )
        )
    users.put(UserProfile(username="dept-orphan", name="无部门", roles=["department"]))
    repo = CatalogueRepository(api_env.table_name)
    for record in (CONDITIONAL, SECOND_CONDITIONAL, UNCONDITIONAL, NOT_SHARED):
        repo.create(Resource.model_validate(record))
    return repo


# -- a data read, as the query endpoint does it ----------------------------------------------------------------
reader = APIGatewayRestResolver(enable_validation=True)


@reader.get("/v1/data/<code>")
def _read(code: str) -> dict[str, Any]:
    from functions.api.data_access import authorize_read, log_access

    access = authorize_read(reader, code, action="query", detail="test read")
    rows = [mask_row(access.resource, ROW, access.unmasked_items)]
    log_access(access, action="query", rows=len(rows), detail="test read")
    return {"rows": rows}


@reader.exception_handler(ServiceError)
def _refused(exc: ServiceError) -> Response[str]:
    from functions.api.errors import error_response

    return error_response(exc.status, exc.body())


def read(caller: Caller, code: str = "210007000-000012", api_key_id: str | None = None) -> ApiResponse:
    reader.context.clear()
    event = rest_event("GET", f"/v1/data/{code}", authorizer=claims_of(caller))
    if api_key_id is not None:
        event["requestContext"]["identity"]["apiKeyId"] = api_key_id  # as API Gateway passes it
    result = reader.resolve(event, FakeContext())
    return ApiResponse(result["statusCode"], json.loads(result["body"]), {})


def request_access(
    caller: Caller, code: str = "210007000/000012", items: list[str] | None = None
) -> ApiResponse:
    body = {
        "resource_code": code,
        "purpose": "防汛转移人员核对",
        "items": items if items is not None else ["phone"],
    }
    return ApiClient(caller).post("/v1/sharing/requests", body)


def decide(caller: Caller, request_id: str, **body: Any) -> ApiResponse:
    return ApiClient(caller).post(f"/v1/sharing/requests/{request_id}/decision", body)


# -- browse ------------------------------------------------------------------------------------------------------
def test_given_the_catalogue_when_browsed_then_filters_stale_flags_and_access_are_shown(
    catalogue: Any,
) -> None:
    everything = ApiClient(WATER).get("/v1/catalogue")
    assert everything.status == 200
    assert [r["code"] for r in everything.body["items"]] == sorted(
        r["code"] for r in (CONDITIONAL, SECOND_CONDITIONAL, UNCONDITIONAL, NOT_SHARED)
    )
    by_code = {r["code"]: r for r in everything.body["items"]}
    assert by_code[UNCONDITIONAL["code"]]["access"] == {
        "allowed": True,
        "reason": "unconditional",
        "unmasked_items": [],
        "expires_at": None,
    }
    assert by_code[CONDITIONAL["code"]]["access"]["reason"] == "no_grant"
    assert all(r["stale"] for r in everything.body["items"])  # nothing loaded yet
    conditional = ApiClient(GRID_WORKER).get("/v1/catalogue", sharing_type="conditional")
    assert {r["code"] for r in conditional.body["items"]} == {CONDITIONAL["code"], SECOND_CONDITIONAL["code"]}
    assert conditional.body["items"][0]["access"] is None  # not a department
    theme = ApiClient(WATER).get("/v1/catalogue", classification="212", department="emergency")
    assert [r["code"] for r in theme.body["items"]] == [UNCONDITIONAL["code"]]
    assert ApiClient(WATER).get("/v1/catalogue", department="water").body["items"] == []

    # the detail's stale flag follows the last load
    before = ApiClient(WATER).get("/v1/catalogue/210007000-000012")
    assert before.status == 200 and before.body["stale"] is True and before.body["version"] == 1
    assert catalogue.record_load("210007000/000012", datetime.now(tz=UTC)) is True
    assert catalogue.record_load("210007000/000012", datetime.now(tz=UTC) - timedelta(days=1)) is False
    after = ApiClient(WATER).get("/v1/catalogue/210007000-000012")
    assert after.body["stale"] is False and after.body["last_loaded_at"] is not None
    assert ApiClient(WATER).get("/v1/catalogue/210007000-000999").status == 404
    assert ApiClient(WATER).get("/v1/catalogue/not-a-code-at-al").status == 404


def test_given_seed_entries_when_loaded_and_paged_then_every_entry_is_listed_once(
    api_env: Any, tmp_path: Path
) -> None:
    from functions.api import data_access
    from tools.catalogue_seed import generate, load_catalogue

    data_access._catalogue.cache_clear()
    sample = generate()
    sample["resources"] = sample["resources"][:30]  # 13 of public security, 13 of health, 4 of civil affairs
    path = tmp_path / "catalogue.json"
    path.write_text(json.dumps(sample, ensure_ascii=False), encoding="utf-8")
    outcome = load_catalogue(api_env.table_name, path)
    assert len(outcome) == 30 and set(outcome.values()) == {"created"}
    assert set(load_catalogue(api_env.table_name, path).values()) == {"unchanged"}
    seen: list[str] = []
    cursor: str | None = None
    while True:
        page = ApiClient(ADMIN).get("/v1/catalogue", limit="8", **({"cursor": cursor} if cursor else {}))
        assert page.status == 200 and len(page.body["items"]) <= 8
        seen += [r["code"] for r in page.body["items"]]
        cursor = page.body["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == 30
    health = ApiClient(ADMIN).get("/v1/catalogue", department="health", limit="100")
    assert len(health.body["items"]) == 13
    tampered = ApiClient(ADMIN).get("/v1/catalogue", department="health", cursor="abc.def")
    assert tampered.status == 400


# -- admin edits ---------------------------------------------------------------------------------------------------
def test_given_an_admin_when_creating_and_updating_entries_then_rules_and_versions_are_enforced(
    catalogue: Any,
) -> None:
    admin = ApiClient(ADMIN)
    new = valid_record(code="210007000/000020", name="新增资源")
    assert ApiClient(EMERGENCY).post("/v1/catalogue", new).status == 403
    created = admin.post("/v1/catalogue", new)
    assert created.status == 201 and created.body["version"] == 1
    again = admin.post("/v1/catalogue", new)
    assert (again.status, again.body["field"]) == (409, "code")
    cases = {
        "condition": valid_record(code="210007000/000021", condition=None),
        "sharing_method": valid_record(code="210007000/000022", format="xlsx", sharing_method="api"),
        "legal_basis": valid_record(code="210007000/000023", sharing_type="not_shared", condition=None),
        "provider_code": valid_record(code="210009000/000001", provider_code="009"),
    }
    for field, body in cases.items():
        refused = admin.post("/v1/catalogue", body)
        assert (refused.status, refused.body["field"]) == (422, field), refused.body
        assert field in refused.body["message"]
    missing = admin.post("/v1/catalogue", {k: v for k, v in new.items() if k != "summary"})
    assert (missing.status, missing.body["field"]) == (422, "summary")

    # updates carry the version read; a stale one is refused
    changed = {**UNCONDITIONAL, "summary": "区内应急避难场所分布与容量"}
    updated = admin.call("PUT", "/v1/catalogue/212007000-000001", body=changed, version="1")
    assert updated.status == 200 and updated.body["version"] == 2
    assert updated.body["summary"] == "区内应急避难场所分布与容量"
    stale = admin.call("PUT", "/v1/catalogue/212007000-000001", body=changed, version="1")
    assert (stale.status, stale.body["field"]) == (409, "version")
    other_code = admin.call("PUT", "/v1/catalogue/212007000-000001", body=CONDITIONAL, version="2")
    assert (other_code.status, other_code.body["field"]) == (422, "code")


# -- the approval workflow ----------------------------------------------------------------------------------------
def test_given_a_conditional_resource_when_requested_approved_and_read_then_access_follows_the_decision(
    catalogue: Any, clock: SharingClock
) -> None:
    # not before approval
    refused_read = read(WATER)
    assert refused_read.status == 403 and "approved request" in refused_read.body["message"]
    created = request_access(WATER, items=["phone", "person_name"])
    assert created.status == 201 and created.body["status"] == "pending"
    request_id = created.body["request_id"]
    assert read(WATER).status == 403

    inbox = ApiClient(EMERGENCY).get("/v1/sharing/requests", box="to_decide")
    assert [r["request_id"] for r in inbox.body["items"]] == [request_id]
    assert [r["request_id"] for r in ApiClient(WATER).get("/v1/sharing/requests").body["items"]] == [
        request_id
    ]
    assert ApiClient(HEALTH).get(f"/v1/sharing/requests/{request_id}").status == 404
    assert (
        decide(
            WATER, request_id, decision="approve", expires_at=(clock.now + timedelta(days=30)).isoformat()
        ).status
        == 403
    )

    approved = decide(
        EMERGENCY,
        request_id,
        decision="approve",
        expires_at=(clock.now + timedelta(days=30)).isoformat(),
        unmasked_items=["phone"],
    )
    assert approved.status == 200 and approved.body["status"] == "approved"
    again = decide(EMERGENCY, request_id, decision="refuse", reason="重复")
    assert again.status == 409

    allowed = read(WATER)
    assert allowed.status == 200
    row = allowed.body["rows"][0]
    assert row["phone"] == "13812345678"  # granted unmasked
    assert row["person_name"] == "欧阳*" and row["id_number"] == "340202********1234"  # asked, not granted
    assert read(WATER, "210007000-000013").status == 403  # the grant is for one resource only
    assert read(HEALTH).status == 403  # and for one department only
    provider = read(EMERGENCY)
    assert provider.body["rows"][0]["id_number"] == ROW["id_number"]

    grants = ApiClient(WATER).get("/v1/sharing/grants").body["items"]
    assert [(g["resource_code"], g["unmasked_items"], g["active"]) for g in grants] == [
        ("210007000/000012", ["phone"], True)
    ]
    detail = ApiClient(WATER).get("/v1/catalogue/210007000-000012").body
    assert detail["access"]["allowed"] is True and detail["access"]["unmasked_items"] == ["phone"]

    # after expiry
    clock.now += timedelta(days=31)
    expired = read(WATER)
    assert expired.status == 403 and "expired" in expired.body["message"]

    log = ApiClient(EMERGENCY).get("/v1/sharing/access-log", resource_code="210007000/000012").body["items"]
    outcomes = sorted((e["department_id"], e["allowed"], e["reason"]) for e in log)
    assert outcomes == sorted(
        [
            ("water", False, "no_grant"),
            ("water", False, "no_grant"),
            ("water", True, "granted"),
            ("health", False, "no_grant"),
            ("emergency", True, "provider"),
            ("water", False, "grant_expired"),
        ]
    )
    assert ApiClient(WATER).get("/v1/sharing/access-log", resource_code="210007000/000012").status == 403
    mine = ApiClient(WATER).get("/v1/sharing/access-log").body["items"]
    assert len(mine) == 5 and all(e["department_id"] == "water" for e in mine)


def test_given_a_request_when_approved_with_bad_terms_or_refused_then_access_stays_closed(
    catalogue: Any, clock: SharingClock
) -> None:
    request_id = request_access(WATER).body["request_id"]
    in_an_hour = (clock.now + timedelta(hours=1)).isoformat()
    bad_terms = {
        "expires_at": [
            {"expires_at": (clock.now - timedelta(hours=1)).isoformat()},
            {"expires_at": (clock.now + timedelta(days=400)).isoformat()},
            {},
        ],
        "unmasked_items": [{"expires_at": in_an_hour, "unmasked_items": ["id_number"]}],
    }
    for field, bodies in bad_terms.items():
        for body in bodies:
            refused = decide(EMERGENCY, request_id, decision="approve", **body)
            assert (refused.status, refused.body["field"]) == (422, field), body
    no_reason = decide(EMERGENCY, request_id, decision="refuse")
    assert (no_reason.status, no_reason.body["field"]) == (422, "reason")
    refused = decide(EMERGENCY, request_id, decision="refuse", reason="申请用途与该资源无关")
    assert refused.status == 200 and refused.body["status"] == "refused"
    assert refused.body["reason"] == "申请用途与该资源无关"
    assert read(WATER).status == 403
    assert ApiClient(WATER).get(f"/v1/sharing/requests/{request_id}").body["status"] == "refused"
    late = decide(EMERGENCY, request_id, decision="approve", expires_at=in_an_hour)
    assert late.status == 409


REFUSED_REQUESTS = [
    (EMERGENCY, {"resource_code": "210007000/000012"}, 409, "resource_code"),  # its own resource
    (WATER, {"resource_code": "203007000/000001"}, 409, "resource_code"),  # not shared
    (WATER, {"resource_code": "212007000/000001"}, 409, "items"),  # unconditional: open already
    (WATER, {"resource_code": "210007000/000012", "items": ["grid_id"]}, 422, "items"),  # not personal
    (WATER, {"resource_code": "210007000/000099"}, 404, "code"),
    (ORPHAN, {"resource_code": "210007000/000012"}, 403, None),  # no department in the registry
    (GRID_WORKER, {"resource_code": "210007000/000012"}, 403, None),
]


def test_given_requests_that_cannot_be_made_then_each_is_refused_with_its_status_and_field(
    catalogue: Any,
) -> None:
    for caller, body, status, field in REFUSED_REQUESTS:
        response = ApiClient(caller).post("/v1/sharing/requests", {"purpose": "核对数据", **body})
        assert (response.status, response.body.get("field")) == (status, field), (caller.username, body)


def test_given_an_unconditional_resource_then_every_department_reads_it_masked_and_not_shared_is_closed(
    catalogue: Any, as_user: Callable[[Caller], ApiClient]
) -> None:
    masked = read(HEALTH, "212007000-000001")
    assert masked.status == 200 and masked.body["rows"][0]["phone"] == "138****5678"
    closed = read(WATER, "203007000-000001")
    assert closed.status == 403 and closed.body["message"] == "this resource is not shared"
    assert read(ORPHAN, "212007000-000001").status == 403
    assert read(WATER, "212007000-009999").status == 404


def test_given_department_api_keys_when_a_department_uses_another_ones_key_then_403(
    catalogue: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from functions.api import data_access
    from smartzone.settings import get_settings

    monkeypatch.setenv("DEPARTMENT_API_KEYS", json.dumps({"water": "key-water", "health": "key-health"}))
    get_settings.cache_clear()
    try:
        assert read(WATER, "212007000-000001", api_key_id="key-water").status == 200
        borrowed = read(WATER, "212007000-000001", api_key_id="key-health")
        assert (borrowed.status, borrowed.body["field"]) == (403, "x-api-key")
        assert read(WATER, "212007000-000001", api_key_id="vendor-key").status == 403
        assert read(WATER, "212007000-000001").status == 200  # no key: not a data route (or local)
    finally:
        get_settings.cache_clear()
        data_access._department_keys.cache_clear()
