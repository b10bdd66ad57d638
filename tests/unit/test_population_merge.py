"""Merge: survivorship rules, lineage, review items, steward decisions, order independence."""

from __future__ import annotations

import itertools
import random
from datetime import date
from pathlib import Path

from smartzone.domain.idnumbers import id_key, make_fake
from smartzone.population.merge import Decisions, apply_link, merge_partition, queue_item
from smartzone.population.models import GoldenRecord, ReviewReason, SourceRow, StewardDecision
from smartzone.population.rules import FieldRule, Rules, choose, load_rules

ROOT = Path(__file__).resolve().parents[2]
RULES = load_rules(ROOT / "events" / "population" / "rules.json")
SECRET = b"test-key"
ID_A = make_fake("340291", date(1948, 7, 9), 31)  # fake county 91; male
ID_B = make_fake("340292", date(2010, 1, 5), 42)  # female
KEY_A, KEY_B = id_key(ID_A, SECRET), id_key(ID_B, SECRET)


def row(
    source: str, number: int, day: str, priority: int, key: str, id_number: str, **fields: str
) -> SourceRow:
    return SourceRow(source, number, day, priority, key, id_number, "resident_18", (), dict(fields))


ROWS = [
    row("police_hukou", 1, "2024-06-30", 1, KEY_A, ID_A, name="张三", sex="male", address="新地址1号"),
    row(
        "census_2020",
        7,
        "2020-11-01",
        3,
        KEY_A,
        ID_A,
        name="张三",
        birth_date="1948-07-09",
        address="旧地址2号",
    ),
    row("visit_2023", 3, "2023-05-01", 4, KEY_A, ID_A, name="张山", phone="13900000002", sex="female"),
    row("visit_2021", 9, "2021-04-01", 4, KEY_A, ID_A, name="张三", phone="13900000001"),
    row(
        "health_records",
        2,
        "2023-12-31",
        5,
        KEY_B,
        ID_B,
        name="李四",
        phone="13700000000",
        birth_date="2010-01-06",
    ),
    row("education", 5, "2023-09-01", 6, KEY_B, ID_B, name="李四", address="学府路3号"),
]


def by_key(result_golden: list[dict]) -> dict[str, GoldenRecord]:
    return {g["id_key"]: GoldenRecord.model_validate(g) for g in result_golden}


def test_given_rows_of_two_people_when_merged_then_each_gets_one_record_with_rule_chosen_fields() -> None:
    result = merge_partition(ROWS, RULES)
    records = by_key(result.golden)
    assert set(records) == {KEY_A, KEY_B} and result.merged_rows == 6
    a = records[KEY_A].fields
    assert a["name"].value == "张三" and a["name"].lineage.rule == "source_priority"
    assert (a["name"].lineage.source, a["name"].lineage.row) == ("police_hukou", 1)
    assert a["address"].value == "新地址1号" and a["address"].lineage.rule == "most_recent"
    assert a["phone"].value == "13900000002" and a["phone"].lineage.source_date == "2023-05-01"
    assert a["sex"].value == "male" and a["sex"].lineage.rule == "id_derived"
    assert a["birth_date"].value == "1948-07-09" and a["birth_date"].lineage.source == "census_2020"
    assert records[KEY_A].id_number == ID_A and len(records[KEY_A].sources) == 4


def test_given_a_golden_record_when_inspected_then_every_field_has_full_lineage() -> None:
    for record in by_key(merge_partition(ROWS, RULES).golden).values():
        for golden in record.fields.values():
            lineage = golden.lineage
            assert lineage.source and lineage.row >= 1 and lineage.source_date and lineage.rule
            assert record.rules_version == RULES.version


def test_given_disagreements_when_merged_then_review_items_name_the_field_and_candidates() -> None:
    result = merge_partition(ROWS, RULES)
    reasons = {(r.id_key, r.field, r.reason) for r in result.reviews}
    assert (KEY_A, "name", ReviewReason.FIELD_CONFLICT) in reasons  # 张三 / 张山
    assert (KEY_A, "sex", ReviewReason.CONTRADICTS_ID) in reasons  # a source says female
    assert (KEY_B, "birth_date", ReviewReason.CONTRADICTS_ID) in reasons  # 2010-01-06 vs the ID's 01-05
    name_item = next(r for r in result.reviews if r.field == "name")
    assert {c.value for c in name_item.candidates} == {"张三", "张山"} and name_item.chosen == "张三"


def test_given_an_unresolvable_tie_when_chosen_then_a_deterministic_value_and_a_tie_flag_result() -> None:
    rule = FieldRule(rule="source_priority", then=("most_recent",))
    candidates = [
        (5, -20240131, "civil_elderly", 4, "甲路1号", "2024-01-31"),
        (5, -20240131, "civil_low_income", 2, "乙路2号", "2024-01-31"),
    ]
    best, used, tie = choose(candidates, rule)
    assert tie and used == "deterministic_fallback" and best[2] == "civil_elderly"
    assert choose(list(reversed(candidates)), rule) == (best, used, tie)
    rows = [
        row("civil_elderly", 4, "2024-01-31", 5, KEY_A, ID_A, address="甲路1号"),
        row("civil_low_income", 2, "2024-01-31", 5, KEY_A, ID_A, address="乙路2号"),
    ]
    result = merge_partition(rows, RULES)
    assert [r.reason for r in result.reviews] == [ReviewReason.UNRESOLVED_TIE]


def test_given_most_complete_and_most_frequent_rules_when_chosen_then_they_decide() -> None:
    rows = [(4, -20200101, "a", 1, "路1号", "2020-01-01"), (4, -20200101, "b", 1, "滨江路1号", "2020-01-01")]
    assert choose(rows, FieldRule(rule="most_complete"))[0][4] == "滨江路1号"
    rows = [(4, -1, "a", 1, "汉族", "x"), (4, -1, "b", 1, "回族", "x"), (4, -1, "c", 1, "汉族", "x")]
    best, used, _ = choose(rows, FieldRule(rule="most_frequent"))
    assert best[4] == "汉族" and used == "most_frequent"


def test_given_any_input_order_when_merged_then_the_result_is_identical() -> None:
    reference = merge_partition(ROWS, RULES)
    for permutation in itertools.islice(itertools.permutations(ROWS), 0, 720, 37):
        again = merge_partition(list(permutation), RULES)
        assert again.golden == reference.golden
        assert again.reviews == reference.reviews
    shuffled = ROWS[:]
    random.Random(3).shuffle(shuffled)
    assert merge_partition(shuffled, RULES).golden == reference.golden


def decision(**kw: object) -> StewardDecision:
    base = {"decision_id": "d1", "steward": "steward-01", "decided_at": "2026-11-01T08:00:00Z"}
    return StewardDecision.model_validate({**base, **kw})


def test_given_a_steward_decision_when_re_run_then_it_wins_and_closes_the_review_item() -> None:
    fix = decision(
        action="set_field", id_key=KEY_A, field="name", value="张山", candidates_seen=["张三", "张山"]
    )
    for _ in range(2):  # a re-run with the same decisions gives the same result
        result = merge_partition(ROWS, RULES, [fix])
        name = by_key(result.golden)[KEY_A].fields["name"]
        assert (
            name.value == "张山"
            and name.lineage.rule == "steward_decision"
            and name.lineage.source == "steward"
        )
        assert not [r for r in result.reviews if r.field == "name"]
    newer = [*ROWS, row("social_security", 8, "2024-05-31", 4, KEY_A, ID_A, name="章三")]
    reopened = merge_partition(newer, RULES, [fix])
    assert by_key(reopened.golden)[KEY_A].fields["name"].value == "张山"
    assert [r.reason for r in reopened.reviews if r.field == "name"] == [
        ReviewReason.NEW_VALUES_SINCE_DECISION
    ]


def test_given_a_dismissal_when_re_run_then_the_item_stays_closed_until_values_change() -> None:
    item = next(r for r in merge_partition(ROWS, RULES).reviews if r.field == "name")
    dismiss = decision(action="dismiss", item_id=item.item_id, candidates_seen=["张三", "张山"])
    assert not [r for r in merge_partition(ROWS, RULES, Decisions([dismiss])).reviews if r.field == "name"]
    newer = [*ROWS, row("social_security", 8, "2024-05-31", 4, KEY_A, ID_A, name="章三")]
    assert [r.item_id for r in merge_partition(newer, RULES, [dismiss]).reviews if r.field == "name"] == [
        item.item_id
    ]


def test_given_a_row_without_a_valid_id_when_queued_then_it_keeps_reasons_and_fields_and_can_be_linked() -> (
    None
):
    bad = SourceRow(
        "visit_2021", 12, "2021-04-01", 4, None, None, None, ("check_char",), {"name": "张三", "id_text": "X"}
    )
    item = queue_item(bad)
    assert item.reason is ReviewReason.INVALID_ID and item.details == ["check_char"]
    assert item.source == "visit_2021" and item.row == 12 and item.row_fields["name"] == "张三"
    assert queue_item(bad).item_id == item.item_id  # stable across runs
    link = decision(action="link_row", source="visit_2021", row=12, id_key=KEY_A, id_number=ID_A)
    linked = apply_link(bad, Decisions([link]).links, SECRET)
    assert linked.id_key == KEY_A and "id_text" not in linked.fields
    result = merge_partition([*ROWS, linked], RULES)
    assert ("visit_2021", 12) in {(s.source, s.row) for s in by_key(result.golden)[KEY_A].sources}


def test_given_rules_when_loaded_then_watched_fields_raise_reviews_and_identity_fields_come_from_the_id() -> (
    None
):
    assert isinstance(RULES, Rules) and RULES.version
    assert RULES.for_field("name").review_on_disagreement
    assert RULES.for_field("sex").rule == "id_derived" and RULES.for_field("birth_date").rule == "id_derived"
    assert RULES.for_field("unknown_field") == RULES.default


def test_given_a_decided_item_when_its_candidates_change_then_it_is_emitted_to_reopen_that_decision() -> None:
    # Given a steward decided the name conflict with set_field on ANOTHER field (the item stays decided)
    item = next(r for r in merge_partition(ROWS, RULES).reviews if r.field == "name")
    other = decision(
        action="set_field", item_id=item.item_id, id_key=KEY_A, field="address", value="新地址1号",
        candidates_seen=["张三", "张山"],
    )  # fmt: skip
    # When re-run with the same candidates Then the item stays closed (not emitted)
    assert not [r for r in merge_partition(ROWS, RULES, [other]).reviews if r.item_id == item.item_id]
    # When a source brings a new name Then the same item comes back, marked to reopen that decision
    newer = [*ROWS, row("social_security", 8, "2024-05-31", 4, KEY_A, ID_A, name="章三")]
    (again,) = [r for r in merge_partition(newer, RULES, [other]).reviews if r.item_id == item.item_id]
    assert again.reopens == "d1" and {c.value for c in again.candidates} == {"张三", "张山", "章三"}
    # And a dismissal re-opened by new values names the dismissal
    dismiss = decision(action="dismiss", item_id=item.item_id, candidates_seen=["张三", "张山"])
    (dismissed,) = [r for r in merge_partition(newer, RULES, [dismiss]).reviews if r.field == "name"]
    assert dismissed.reopens == "d1"
    # And an item never decided reopens nothing
    assert all(r.reopens is None for r in merge_partition(newer, RULES).reviews)
