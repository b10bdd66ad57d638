"""Residents API (issue 7): reach by role, masking and audited unmasking, lookup by HMAC, reviews,
steward decisions, erasure, the audit log."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from smartzone.domain.identity import Caller
from smartzone.domain.users import UserProfile
from tests.support.api import ApiClient
from tests.support.residents import (
    HMAC_SECRET,
    LOCAL_KEY,
    PEOPLE_IDS,
    PHONES,
    district_records,
    key_of,
    review_items,
)

STEWARD = Caller.of("sub-steward", "steward-01", ["data_steward"])
DEPARTMENT = Caller.of("sub-dept", "dept-health", ["department"])


def _build(table_name: str, mp: pytest.MonkeyPatch) -> None:
    """Three residents (two in G03, one in G04), their counts, two review items; a data steward."""
    from smartzone.domain.residents import resident_from_golden
    from smartzone.repositories.residents import ResidentRepository, counts_of
    from smartzone.repositories.users import UserRepository
    from tests.api.conftest import CURSOR_SECRET, PROFILES

    mp.setenv("ID_HMAC_SECRET", HMAC_SECRET)
    mp.setenv("PERSONAL_DATA_LOCAL_KEY", LOCAL_KEY)
    mp.setenv("CURSOR_SECRET", CURSOR_SECRET)
    _clear_caches()
    users = UserRepository(table_name)
    for profile in [*PROFILES, UserProfile(username="steward-01", name="数据管理员", roles=["data_steward"])]:
        users.put(profile)
    repo = ResidentRepository(table_name)
    written = repo.write_residents([resident_from_golden(r, run_id="t1") for r in district_records()])
    repo.replace_counts(dict(counts_of(written)))
    repo.write_reviews(review_items(), "2026-11-29T06:00:00Z")


def _clear_caches() -> None:
    from functions.api import context
    from functions.api.routes import residents
    from smartzone.repositories import personal_data
    from smartzone.settings import get_settings

    get_settings.cache_clear()
    for cached in (
        personal_data.sealer,
        personal_data.id_hmac_key,
        residents.residents_repo,
        residents.audit_log,
        context.users,
        context.cursor_secret,
    ):
        cached.cache_clear()


@pytest.fixture(scope="module")
def world() -> Iterator[object]:
    """One emulated account for the tests that only read (built once: setup is the slow part)."""
    from tests.support.api_env import emulated_platform

    with emulated_platform() as (res, mp):
        _build(res.table_name, mp)
        yield res
    _clear_caches()


@pytest.fixture
def population(world: object) -> object:
    """The shared world: tests here only read (those that write are in test_residents_writes_api)."""
    return world


@pytest.fixture
def people():  # type: ignore[no-untyped-def]
    from tests.api.conftest import PEOPLE

    return PEOPLE


def audit_today(admin: Caller) -> list[dict]:  # type: ignore[type-arg]
    response = ApiClient(admin).get("/v1/audit")
    assert response.status == 200, response.body
    return list(response.body["items"])


# -- reach ---------------------------------------------------------------------------------------
def test_given_a_grid_worker_when_listing_their_grid_then_masked_residents_and_the_grid_total(
    population, people
) -> None:
    response = ApiClient(people.gw_g03).get("/v1/residents", grid_id="G03")
    assert response.status == 200, response.body
    body = response.body
    assert body["total"] == 2
    names = sorted(item["name"] for item in body["items"])
    assert names == ["张*", "王*"]
    for item in body["items"]:
        assert item["masked"] is True
        assert item["id_number"].startswith("340299") and "*" in item["id_number"]
        assert item["phone"].startswith("13") and "****" in item["phone"]
        assert item["birth_date"].endswith("-**-**")


def test_given_a_grid_worker_when_asking_for_another_grid_or_its_resident_then_404(
    population, people
) -> None:
    client = ApiClient(people.gw_g03)
    assert client.get("/v1/residents", grid_id="G04").status == 404
    li = key_of(PEOPLE_IDS["li"])
    assert client.get(f"/v1/residents/{li}").status == 404
    lookup = client.post("/v1/residents/lookup", body={"id_number": PEOPLE_IDS["li"]})
    assert lookup.status == 404


def test_given_roles_without_population_access_when_listing_then_403(population, people) -> None:
    assert ApiClient(people.tech).get("/v1/residents", grid_id="G03").status == 403
    assert ApiClient(DEPARTMENT).get("/v1/residents/counts").status == 403


def test_given_a_community_or_category_when_listing_then_members_and_counts(population, people) -> None:
    dispatcher = ApiClient(people.dispatcher)
    community = dispatcher.get("/v1/residents", community="高新社区")
    assert community.status == 200 and community.body["total"] == 2
    category = dispatcher.get("/v1/residents", category="elderly_alone")
    assert category.status == 200 and category.body["total"] == 2
    assert {i["grid_id"] for i in category.body["items"]} == {"G03"}
    counts = dispatcher.get("/v1/residents/counts").body
    assert counts["total"] == 3
    assert counts["by_grid"] == {"G03": 2, "G04": 1}
    assert counts["by_category"] == {"elderly_alone": 2, "low_income": 1}
    worker = ApiClient(people.gw_g04).get("/v1/residents/counts").body
    assert worker["by_grid"] == {"G04": 1} and worker["total"] == 1 and worker["by_community"] == {}
    own = ApiClient(people.gw_g03).get("/v1/residents", category="low_income")
    assert own.status == 200 and own.body["total"] == 1


def test_given_pages_when_following_the_cursor_then_every_resident_once(population, people) -> None:
    client = ApiClient(people.admin)
    first = client.get("/v1/residents", grid_id="G03", limit="1")
    assert first.status == 200 and len(first.body["items"]) == 1 and first.body["next_cursor"]
    second = client.get("/v1/residents", grid_id="G03", limit="1", cursor=first.body["next_cursor"])
    keys = {first.body["items"][0]["resident_key"], second.body["items"][0]["resident_key"]}
    assert len(keys) == 2
    other_scope = client.get("/v1/residents", grid_id="G04", cursor=first.body["next_cursor"])
    assert other_scope.status == 400


# -- lookup and unmasking ----------------------------------------------------------------------------
def test_given_an_id_in_any_written_form_when_looking_up_then_the_resident_by_hmac(
    population, people
) -> None:
    number = PEOPLE_IDS["zhang"]
    written = " ".join([number[:6], number[6:14], number[14:]]).translate(
        str.maketrans("0123456789", "０１２３４５６７８９")
    )
    response = ApiClient(people.gw_g03).post("/v1/residents/lookup", body={"id_number": written})
    assert response.status == 200, response.body
    assert response.body["resident_key"] == key_of(number)
    assert response.body["id_number"] == number[:6] + "********" + number[-4:]
    assert response.body["name"] == "张*"
    assert response.body["phone"] == "138****0001"


def test_given_an_invalid_id_when_looking_up_then_422_naming_the_field_without_echoing_it(
    population, people
) -> None:
    bad = PEOPLE_IDS["zhang"][:-1] + ("0" if PEOPLE_IDS["zhang"][-1] != "0" else "1")
    response = ApiClient(people.admin).post("/v1/residents/lookup", body={"id_number": bad})
    assert response.status == 422
    assert response.body["field"] == "id_number"
    assert bad not in str(response.body) and bad[:17] not in str(response.body)


def test_given_an_admin_when_unmasking_then_plain_values_and_an_audit_entry(population, people) -> None:
    number = PEOPLE_IDS["zhang"]
    response = ApiClient(people.admin).post(
        "/v1/residents/lookup", body={"id_number": number, "unmask": True, "purpose": "核实走访信息"}
    )
    assert response.status == 200, response.body
    assert response.body["id_number"] == number and response.body["phone"] == PHONES["zhang"]
    assert response.body["name"] == "张秀英" and response.body["masked"] is False
    entries = [
        e for e in audit_today(people.admin) if e["action"] == "unmasked_read" and e["actor"] == "admin-01"
    ]
    assert len(entries) == 1
    entry = entries[0]
    assert entry["actor"] == "admin-01" and entry["role"] == "admin"
    assert entry["subject_key"] == f"RESIDENT#{key_of(number)}"
    assert entry["purpose"] == "核实走访信息"
    assert set(entry["fields"]) >= {"id_number", "name", "phone", "address"}
    assert number not in str(entries)


def test_given_a_grid_worker_when_asking_to_unmask_then_403_and_nothing_audited(population, people) -> None:
    response = ApiClient(people.gw_g03).get(
        f"/v1/residents/{key_of(PEOPLE_IDS['zhang'])}", unmask="true", purpose="x"
    )
    assert response.status == 403
    assert [
        e for e in audit_today(people.admin) if e["actor"] == "gw-g03-01" and e["action"] == "unmasked_read"
    ] == []


def test_given_unmask_without_purpose_then_422(population, people) -> None:
    response = ApiClient(people.dispatcher).get(f"/v1/residents/{key_of(PEOPLE_IDS['li'])}", unmask="true")
    assert response.status == 422 and response.body["field"] == "purpose"


# -- reviews and decisions ------------------------------------------------------------------------------
def test_given_the_review_queue_when_a_steward_reads_it_then_masked_values_and_sources(population) -> None:
    response = ApiClient(STEWARD).get("/v1/population/reviews")
    assert response.status == 200, response.body
    items = {i["item_id"]: i for i in response.body["items"]}
    conflict = items["conflict-zhang-name"]
    assert [c["value"] for c in conflict["candidates"]] == ["张*", "张*"]
    assert [c["source"] for c in conflict["candidates"]] == ["census_2020", "visit_2023"]
    queued = items["invalid-row-1"]
    assert queued["row_fields"]["phone"] == "136****1234" and queued["row_fields"]["name"] == "赵*"
    assert "*" in queued["row_fields"]["id_text"]


def test_given_a_steward_when_unmasking_reviews_then_values_and_one_audit_entry_per_item(
    population, people
) -> None:
    response = ApiClient(STEWARD).get("/v1/population/reviews", unmask="true", purpose="审核冲突")
    assert response.status == 200
    values = {c["value"] for i in response.body["items"] for c in i["candidates"]}
    assert values == {"张秀英", "张秀瑛"}
    entries = [e for e in audit_today(people.admin) if e["purpose"] == "审核冲突"]
    assert len(entries) == 2 and {e["actor"] for e in entries} == {"steward-01"}
    assert {e["action"] for e in entries} == {"unmasked_read"}


def test_given_other_roles_when_reading_reviews_then_403(population, people) -> None:
    assert ApiClient(people.dispatcher).get("/v1/population/reviews").status == 403
    assert ApiClient(people.gw_g03).get("/v1/population/reviews").status == 403


def test_given_set_field_without_value_then_422_and_unknown_item_404(population) -> None:
    client = ApiClient(STEWARD)
    missing = client.post("/v1/population/reviews/conflict-zhang-name/decision", body={"action": "set_field"})
    assert missing.status == 422 and missing.body["field"] == "value"
    assert client.post("/v1/population/reviews/nope/decision", body={"action": "dismiss"}).status == 404


# -- review findings -------------------------------------------------------------------------------------
def test_given_a_grid_worker_without_grids_when_listing_a_community_then_no_resident_at_all(
    population, people
) -> None:
    # Given gw-none (grid_ids=[]) When listing 高新社区 (two residents in G03) Then nothing is shown
    client = ApiClient(people.gw_nogrid)
    community = client.get("/v1/residents", community="高新社区")
    assert community.status == 200, community.body
    assert community.body["items"] == [] and community.body["total"] == 0
    category = client.get("/v1/residents", category="elderly_alone")
    assert category.status == 200 and category.body["items"] == [] and category.body["total"] == 0
    assert client.get("/v1/residents", grid_id="G03").status == 404
    counts = client.get("/v1/residents/counts").body
    assert counts["total"] == 0 and counts["by_grid"] == {}


def test_given_the_repository_when_asked_for_a_community_in_no_grids_then_empty_not_unfiltered(
    population,
) -> None:
    from smartzone.repositories.residents import ResidentRepository

    repo = ResidentRepository(population.table_name)
    assert repo.by_community("高新社区", limit=10, grids=[]) == ([], None)
    assert len(repo.by_community("高新社区", limit=10, grids=None)[0]) == 2
    assert len(repo.by_community("高新社区", limit=10, grids=["G03"])[0]) == 2
    assert repo.by_community("高新社区", limit=10, grids=["G04"])[0] == []


def test_given_an_id_with_arabic_indic_digits_when_looking_up_then_422_not_500(population, people) -> None:
    written = PEOPLE_IDS["zhang"].translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))
    response = ApiClient(people.admin).post("/v1/residents/lookup", body={"id_number": written})
    assert response.status == 422, response.body
    assert response.body["field"] == "id_number" and "format" in str(response.body)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"action": "set_field", "field": "favourite_colour", "value": "蓝"}, "field"),
        ({"action": "set_field", "field": "id_number", "value": "x"}, "field"),
        ({"action": "set_field", "field": "sex", "value": "男的"}, "value"),
        ({"action": "set_field", "field": "sex", "value": "男"}, "value"),
        ({"action": "set_field", "field": "birth_date", "value": "1990/01/02"}, "value"),
        ({"action": "set_field", "field": "birth_date", "value": "1990-02-30"}, "value"),
        ({"action": "set_field", "field": "birth_date", "value": "2999-01-01"}, "value"),
        ({"action": "set_field", "field": "living_alone", "value": "maybe"}, "value"),
        ({"action": "set_field", "field": "lat", "value": "north"}, "value"),
    ],
)
def test_given_a_set_field_with_an_unknown_field_or_a_mistyped_value_then_422_naming_it(
    population, body: dict[str, str], field: str
) -> None:
    # Given an open review item When a steward sets a field that is no golden field, or a bad value
    response = ApiClient(STEWARD).post("/v1/population/reviews/conflict-zhang-name/decision", body=body)
    # Then 422 naming field or value (never echoing the value), and the item stays open
    assert response.status == 422, response.body
    assert response.body["field"] == field
    assert body["value"] not in str(response.body) or body["value"] == "x"
    assert body.get("field", "") in str(response.body)
    open_items = {i["item_id"] for i in ApiClient(STEWARD).get("/v1/population/reviews").body["items"]}
    assert "conflict-zhang-name" in open_items


def test_given_an_unknown_resident_key_when_erasing_then_404_and_no_tombstone(population, people) -> None:
    from smartzone.repositories.residents import ResidentRepository

    unknown = "ab" * 32
    response = ApiClient(people.admin).post(
        "/v1/residents/erasure", body={"resident_key": unknown, "reason": "本人申请删除 #99"}
    )
    assert response.status == 404, response.body
    assert ResidentRepository(population.table_name).get(unknown) is None
    assert not [e for e in audit_today(people.admin) if e["subject_key"] == f"RESIDENT#{unknown}"]
