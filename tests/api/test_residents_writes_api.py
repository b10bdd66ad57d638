"""Residents API (issue 7), the writing half: steward decisions, links, erasure (one world each)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.api.test_residents_api import STEWARD, _build, _clear_caches, audit_today
from tests.support.api import ApiClient
from tests.support.residents import PEOPLE_IDS, district_records, key_of


@pytest.fixture
def population(api_env, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:  # type: ignore[no-untyped-def]
    """A world of its own (residents, counts, review items, users) for a test that writes."""
    _build(api_env.table_name, monkeypatch)
    yield api_env
    _clear_caches()


def test_given_a_steward_decision_then_stored_for_the_next_run_item_closed_and_audited(
    population, people
) -> None:
    from smartzone.repositories.residents import ResidentRepository

    client = ApiClient(STEWARD)
    decided = client.post(
        "/v1/population/reviews/conflict-zhang-name/decision",
        body={"action": "set_field", "value": "张秀瑛", "note": "户籍核实"},
    )
    assert decided.status == 201, decided.body
    again = client.post("/v1/population/reviews/conflict-zhang-name/decision", body={"action": "dismiss"})
    assert again.status == 409
    decisions = ResidentRepository(population.table_name).decisions()
    assert len(decisions) == 1
    d = decisions[0]
    assert (d.action.value, d.field, d.value, d.steward) == ("set_field", "name", "张秀瑛", "steward-01")
    assert d.id_key == key_of(PEOPLE_IDS["zhang"]) and sorted(d.candidates_seen) == ["张秀瑛", "张秀英"]
    open_items = [i["item_id"] for i in client.get("/v1/population/reviews").body["items"]]
    assert open_items == ["invalid-row-1"]
    assert any(e["action"] == "steward_decision" for e in audit_today(people.admin))


def test_given_a_queued_row_when_linked_to_a_valid_id_then_the_decision_holds_its_key(population) -> None:
    from smartzone.repositories.residents import ResidentRepository

    number = PEOPLE_IDS["li"]
    response = ApiClient(STEWARD).post(
        "/v1/population/reviews/invalid-row-1/decision", body={"action": "link_row", "id_number": number}
    )
    assert response.status == 201, response.body
    assert number not in str(response.body)
    (decision,) = ResidentRepository(population.table_name).decisions()
    assert (decision.id_key, decision.id_number, decision.source, decision.row) == (
        key_of(number),
        number,
        "visit_2021",
        12,
    )


# -- erasure and the audit log ----------------------------------------------------------------------------
def test_given_an_erasure_request_then_personal_data_gone_counts_lowered_and_audited(
    population, people
) -> None:
    from smartzone.repositories.clients import client as aws
    from smartzone.repositories.residents import ResidentRepository, resident_key

    number = PEOPLE_IDS["zhang"]
    key = key_of(number)
    response = ApiClient(people.admin).post(
        "/v1/residents/erasure", body={"id_number": number, "reason": "本人申请删除 2026-11-29 #17"}
    )
    assert response.status == 200, response.body
    assert response.body["erased"]["resident"] == 1 and response.body["erased"]["review_items"] == 1
    assert response.body["erased"]["category_memberships"] == 1
    stored = aws("dynamodb").get_item(
        TableName=population.table_name, Key={k: {"S": v} for k, v in resident_key(key).items()}
    )["Item"]
    assert set(stored) == {"pk", "sk", "id_key", "erased_at", "entity"}
    assert ApiClient(people.admin).post("/v1/residents/lookup", body={"id_number": number}).status == 404
    counts = ApiClient(people.dispatcher).get("/v1/residents/counts").body
    assert (
        counts["total"] == 2 and counts["by_grid"]["G03"] == 1 and counts["by_category"]["elderly_alone"] == 1
    )
    entry = next(e for e in audit_today(people.admin) if e["action"] == "erasure")
    assert entry["subject_key"] == f"RESIDENT#{key}" and number not in str(entry)
    # a later merge run does not bring the person back
    from smartzone.domain.residents import resident_from_golden

    again = ResidentRepository(population.table_name).write_residents(
        [resident_from_golden(r) for r in district_records()]
    )
    assert key not in {r.id_key for r in again}


def test_given_a_dispatcher_when_erasing_or_reading_the_audit_log_then_403(population, people) -> None:
    client = ApiClient(people.dispatcher)
    assert (
        client.post("/v1/residents/erasure", body={"id_number": PEOPLE_IDS["li"], "reason": "test"}).status
        == 403
    )
    assert client.get("/v1/audit").status == 403


# -- review findings -------------------------------------------------------------------------------------
def test_given_an_erased_resident_when_a_run_writes_their_review_items_again_then_none_is_recreated(
    population, people
) -> None:
    from smartzone.repositories.residents import ResidentRepository
    from tests.support.residents import review_items

    # Given 张 erased (their review item, holding sealed names, is deleted)
    zhang = key_of(PEOPLE_IDS["zhang"])
    erased = ApiClient(people.admin).post(
        "/v1/residents/erasure", body={"resident_key": zhang, "reason": "本人申请删除 #18"}
    )
    assert erased.status == 200 and erased.body["erased"]["review_items"] == 1
    repo = ResidentRepository(population.table_name)
    # When the next merge run writes the same review items
    outcome = repo.write_reviews(review_items(), "2026-11-30T06:00:00Z")
    # Then the erased person's item is skipped, the others are written
    assert outcome["skipped_erased"] == 1 and outcome["opened"] == 1
    assert repo.review("conflict-zhang-name") is None
    assert repo.review("invalid-row-1") is not None


def test_given_a_decided_item_when_a_run_marks_it_reopened_then_it_is_open_again(population) -> None:
    from smartzone.population.models import Candidate
    from smartzone.repositories.residents import ResidentRepository
    from tests.support.residents import review_items

    # Given the name conflict dismissed by a steward
    client = ApiClient(STEWARD)
    decided = client.post("/v1/population/reviews/conflict-zhang-name/decision", body={"action": "dismiss"})
    assert decided.status == 201
    repo = ResidentRepository(population.table_name)
    item = review_items()[0]
    # When a run writes it unchanged (no reopens) Then it stays decided
    assert repo.write_reviews([item], "2026-11-30T06:00:00Z")["kept_decided"] == 1
    # When a run marks it as reopening a decision that is not the stored one Then it stays decided
    assert repo.write_reviews([item.model_copy(update={"reopens": "other"})], "x")["kept_decided"] == 1
    # When a run brings a new candidate and marks it as reopening that very decision
    new = Candidate(value="章秀英", source="social_security", row=8, source_date="2024-05-31")
    changed = item.model_copy(
        update={"candidates": [*item.candidates, new], "reopens": decided.body["decision_id"]}
    )
    assert repo.write_reviews([changed], "2026-11-30T06:00:00Z")["reopened"] == 1
    # Then it is open again with the new candidates, and may be decided again
    _, state = repo.review("conflict-zhang-name")  # type: ignore[misc]
    assert state["status"] == "open" and state["reopened_from"] == decided.body["decision_id"]
    assert "conflict-zhang-name" in {i["item_id"] for i in client.get("/v1/population/reviews").body["items"]}
    again = client.post(
        "/v1/population/reviews/conflict-zhang-name/decision",
        body={"action": "set_field", "value": "张秀英"},
    )
    assert again.status == 201


def test_given_a_preemptive_erasure_of_an_unknown_key_then_a_tombstone_keeps_later_runs_out(
    population, people
) -> None:
    from smartzone.domain.residents import resident_from_golden
    from smartzone.repositories.residents import ResidentRepository

    unknown = "cd" * 32
    response = ApiClient(people.admin).post(
        "/v1/residents/erasure",
        body={"resident_key": unknown, "reason": "本人申请删除 #19", "preemptive": True},
    )
    assert response.status == 200, response.body
    stored = ResidentRepository(population.table_name).get(unknown)
    assert stored is not None and stored.erased_at is not None
    records = [resident_from_golden(r) for r in district_records()]
    records[0] = records[0].model_copy(update={"id_key": unknown})
    written = ResidentRepository(population.table_name).write_residents(records)
    assert unknown not in {r.id_key for r in written}
