"""Form definitions, facts, validation messages, prefill statistics and export rendering (pure)."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from pydantic import ValidationError

from smartzone.domain.facts import (
    CATALOGUE,
    FactValue,
    FieldOutcome,
    InvalidSubject,
    Provenance,
    SourceKind,
    SubjectKey,
    SubjectType,
    outcome_of,
)
from smartzone.domain.form_exports import export_table, render_csv, render_xlsx
from smartzone.domain.forms import FormDefinition, FormDraft, Submission, validate_values
from smartzone.domain.masking import MaskDecision
from smartzone.domain.prefill_stats import counter_name, summarize_prefill

FIELDS: list[dict[str, Any]] = [
    {
        "name": "size",
        "fact": "household.size",
        "label_zh": "家庭人口数",
        "order": 2,
        "required": True,
        "schema": {"minimum": 1, "maximum": 30},
    },
    {"name": "phone", "fact": "resident.phone", "label_zh": "联系电话", "order": 1, "required": True},
    {"name": "name", "fact": "resident.name", "label_zh": "姓名", "order": 3, "schema": {"maxLength": 4}},
    {
        "name": "housing",
        "fact": "household.housing_type",
        "label_zh": "住房类型",
        "order": 4,
        "schema": {"enum": ["owned", "rented"]},
    },
    {"name": "checked", "fact": "address.gas_inspection_date", "label_zh": "检查日期", "order": 5},
    {"name": "low_income", "fact": "household.low_income", "label_zh": "是否低保户", "order": 6},
]


def form(version: int = 1, fields: list[dict[str, Any]] | None = None) -> FormDefinition:
    return FormDefinition(
        form_id="survey",
        version=version,
        department_id="civil-affairs",
        title_zh="调查表",
        assigned_grids=["G03"],
        fields=fields or FIELDS,
        created_at="2026-11-29T00:00:00.000Z",
        created_by="dept-civil-affairs",
    )


def test_the_json_schema_is_generated_from_the_fields_in_display_order() -> None:
    """Given fields bound to facts, then the version's JSON Schema is a valid draft 2020-12 schema
    whose properties follow ``order`` with labels, narrowing and required names."""
    schema = form().json_schema()
    Draft202012Validator.check_schema(schema)
    assert list(schema["properties"]) == ["phone", "size", "name", "housing", "checked", "low_income"]
    assert schema["required"] == ["phone", "size"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["size"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 30,
        "title": "家庭人口数",
        "x-order": 2,
        "x-fact": "household.size",
    }
    assert schema["$id"] == "urn:smartzone:form:survey:v1"
    assert form().subject_types == [SubjectType.ADDRESS, SubjectType.HOUSEHOLD, SubjectType.RESIDENT]


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"fields": [{**FIELDS[0], "fact": "household.shoe_size"}]}, "unknown fact"),
        ({"fields": [FIELDS[0], {**FIELDS[1], "name": "size"}]}, "unique"),
        ({"fields": [FIELDS[0], {**FIELDS[1], "fact": "household.size"}]}, "once per form"),
        ({"assigned_grids": []}, "at least one grid"),
        ({"fields": [{**FIELDS[3], "schema": {}}]}, "needs an enum"),
        ({"fields": [{**FIELDS[0], "schema": {"type": "string"}}]}, "only narrow"),
        ({"fields": [{**FIELDS[0], "schema": {"minimum": "one"}}]}, "valid JSON Schema"),
        ({"assigned_grids": ["grid-3"]}, "grid id"),
    ],
)
def test_bad_form_drafts_are_refused_with_the_reason(change: dict[str, Any], complaint: str) -> None:
    draft = {"title_zh": "调查表", "assigned_grids": ["G03"], "fields": FIELDS, **change}
    with pytest.raises(ValidationError, match=complaint):
        FormDraft.model_validate(draft)


def test_validation_names_each_field_in_chinese_and_english() -> None:
    """Given values breaking each kind of rule, then one problem per field, in field order."""
    problems = validate_values(
        form(),
        {
            "size": 31,
            "name": "司马相如之后",
            "housing": "castle",
            "checked": "2026-13-01",
            "low_income": "yes",
            "x": 1,
        },
    )
    found = {p.field: (p.message_zh, p.message_en) for p in problems}
    assert [p.field for p in problems] == ["phone", "size", "name", "housing", "checked", "low_income", "x"]
    assert found["phone"] == ("联系电话为必填项", "phone is required")
    assert found["size"] == ("家庭人口数不能大于30", "size must be at most 30")
    assert found["name"] == ("姓名不能超过4个字", "name must have at most 4 characters")
    assert found["housing"] == ("住房类型须为以下之一:owned、rented", "housing must be one of owned, rented")
    assert found["checked"] == ("检查日期格式不正确", "checked has an invalid format")
    assert found["low_income"] == ("是否低保户的类型不正确(应为是/否)", "low_income must be of type boolean")
    assert found["x"] == ("表单中没有字段x", "x is not a field of this form")
    assert validate_values(form(), {"phone": "0553-1234567", "size": 3, "low_income": True}) == []


def test_subject_keys() -> None:
    resident = "resident:" + "ab" * 32
    assert str(SubjectKey.parse(resident)) == resident
    assert SubjectKey.parse("household:H-LJ-0001") == SubjectKey(SubjectType.HOUSEHOLD, "H-LJ-0001")
    for bad in ("H-LJ-0001", "planet:earth", "resident:11010519491231002X", "household:", "site:a b"):
        with pytest.raises(InvalidSubject):
            SubjectKey.parse(bad)


def test_field_outcomes() -> None:
    stored = FactValue(
        subject="household:H1",
        code="household.size",
        value=4,
        source=Provenance(kind=SourceKind.IMPORT, table="人口库", by="import", at="2026-11-01T00:00:00.000Z"),
    )
    assert outcome_of(None, 4) is FieldOutcome.TYPED_NEW
    assert outcome_of(stored, 4) is FieldOutcome.PREFILLED_CONFIRMED
    assert outcome_of(stored, 5) is FieldOutcome.CORRECTED
    assert all(code.startswith(fact.subject_type.value + ".") for code, fact in CATALOGUE.items())


def test_prefill_ratios_per_form_community_and_day_within_the_callers_grids() -> None:
    day1 = {
        counter_name("a", "临江社区", "G03", "submissions"): 2,
        counter_name("a", "临江社区", "G03", "prefilled_confirmed"): 6,
        counter_name("a", "临江社区", "G03", "corrected"): 2,
        counter_name("a", "临江社区", "G03", "typed_new"): 4,
        counter_name("b", "科创社区", "G06", "submissions"): 1,
        counter_name("b", "科创社区", "G06", "typed_new"): 5,
        "pk": "STATS#2026-11-28",
    }
    day2 = {
        counter_name("a", "临江社区", "G04", "submissions"): 1,
        counter_name("a", "临江社区", "G04", "typed_new"): 3,
    }
    every = summarize_prefill([("2026-11-29", day2), ("2026-11-28", day1)], None)
    assert every.total.fields == 20 and every.total.submissions == 4
    assert every.by_form["a"].prefill_ratio == round(8 / 15, 4)
    assert every.by_form_community["a"]["临江社区"].confirmed_ratio == 0.4
    assert every.by_form["b"].prefill_ratio == 0
    assert [d.day for d in every.by_day] == ["2026-11-28", "2026-11-29"]
    g03 = summarize_prefill([("2026-11-28", day1), ("2026-11-29", day2)], {"G03"})
    assert g03.total.fields == 12 and list(g03.by_form) == ["a"] and len(g03.by_day) == 1
    assert summarize_prefill([], None).total.prefill_ratio is None


def submission(version: int, values: dict[str, Any]) -> Submission:
    return Submission(
        submission_id=f"s-{version}-0001",
        form_id="survey",
        form_version=version,
        department_id="civil-affairs",
        grid_id="G03",
        community="临江社区",
        subjects={"household": "household:H-1", "resident": "resident:" + "0" * 64},
        values=values,
        outcomes={},
        submitted_by="gw-g03-01",
        received_at="2026-11-29T02:00:00.000Z",
        fingerprint="x",
    )


def test_export_table_spans_versions_and_masks_personal_data() -> None:
    """Given submissions of v1 and v2, then the columns are v2's fields then fields only v1 had,
    the time is Beijing time, and names/phones are masked unless the decision unmasks them."""
    v1 = form(1)
    v2 = form(2, [f for f in FIELDS if f["name"] != "checked"])
    rows_in = [
        submission(1, {"phone": "13812345678", "size": 3, "checked": "2026-11-01", "name": "欧阳娜娜"}),
        submission(2, {"phone": "13812345678", "size": 4, "low_income": True}),
    ]
    header, rows = export_table(
        v2, {1: v1, 2: v2}, rows_in, MaskDecision(unmasked=False, full_addresses=True)
    )
    assert header[-1] == "检查日期" and "联系电话" in header and "家庭户编号" in header
    first = dict(zip(header, rows[0], strict=True))
    assert (first["提交时间"], first["联系电话"], first["姓名"], first["检查日期"]) == (
        "2026-11-29 10:00",
        "138****5678",
        "欧阳*",
        "2026-11-01",
    )
    assert dict(zip(header, rows[1], strict=True))["是否低保户"] == "是"
    _, clear = export_table(v2, {1: v1, 2: v2}, rows_in, MaskDecision(unmasked=True, full_addresses=True))
    assert dict(zip(header, clear[0], strict=True))["联系电话"] == "13812345678"


def test_csv_has_a_bom_and_defuses_formulas_and_xlsx_opens() -> None:
    from openpyxl import load_workbook

    data = render_csv(["姓名", "备注"], [["张*", '=HYPERLINK("x")'], ["李*", 3]])
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows == [["姓名", "备注"], ["张*", '\'=HYPERLINK("x")'], ["李*", "3"]]
    book = load_workbook(io.BytesIO(render_xlsx("调查表:2026/11?", ["姓名", "人数"], [["张*", 4]])))
    sheet = book.worksheets[0]
    assert sheet.title == "调查表202611"
    assert [[c.value for c in r] for r in sheet.iter_rows()] == [["姓名", "人数"], ["张*", 4]]
    assert sheet["A1"].font.bold


def test_given_list_values_when_exported_then_they_are_joined_with_the_chinese_comma() -> None:
    """Given a submission whose values are lists (several choices or attachments), when exported,
    then each cell holds the items joined with ``、`` (not Python's repr), masked when personal."""
    header, rows = export_table(
        form(1),
        {1: form(1)},
        [submission(1, {"housing": ["owned", "rented"], "phone": ["13812345678", "13900001111"]})],
        MaskDecision(unmasked=False, full_addresses=True),
    )
    cell = dict(zip(header, rows[0], strict=True))
    assert cell["住房类型"] == "owned、rented"
    assert cell["联系电话"] == "138****5678、139****1111"


def test_given_a_department_when_prefill_is_summarized_for_its_forms_then_others_are_left_out() -> None:
    day = {
        counter_name("mine", "临江社区", "G03", "submissions"): 1,
        counter_name("mine", "临江社区", "G03", "typed_new"): 2,
        counter_name("theirs", "科创社区", "G06", "submissions"): 1,
        counter_name("theirs", "科创社区", "G06", "typed_new"): 5,
    }
    owned = summarize_prefill([("2026-11-29", day)], None, {"mine"})
    assert list(owned.by_form) == ["mine"] and owned.total.fields == 2


def test_given_a_late_offline_value_then_it_does_not_replace_a_later_collected_one() -> None:
    """Given a stored value collected at 10:00, when a value collected at 09:00 arrives later, then
    it does not replace it (history only); one collected at 11:00 (or unknown, at receipt) does."""
    from smartzone.repositories.facts import replaces

    def source(at: str, collected_at: str | None = None, grid: str | None = "G03") -> Provenance:
        return Provenance(kind=SourceKind.FORM, by="gw", at=at, collected_at=collected_at, grid_id=grid)

    stored = FactValue(
        subject="household:H-1",
        code="household.size",
        value=4,
        source=source("2026-11-29T03:00:00.000Z", "2026-11-29T02:00:00.000Z"),
    )
    assert stored.source.collected == "2026-11-29T02:00:00.000Z"
    assert not replaces(source("2026-11-29T05:00:00.000Z", "2026-11-29T01:00:00.000Z"), stored)
    assert replaces(source("2026-11-29T05:00:00.000Z", "2026-11-29T03:00:00.000Z"), stored)
    assert replaces(source("2026-11-29T05:00:00.000Z"), stored)
    assert replaces(source("2026-11-29T05:00:00.000Z"), None)


def test_given_facts_from_several_grids_then_a_grid_worker_reaches_only_its_own() -> None:
    from smartzone.domain.facts import within_grids

    def value(grid: str | None) -> FactValue:
        return FactValue(
            subject="household:H-1",
            code="household.address",
            value="x",
            source=Provenance(kind=SourceKind.FORM, by="gw", at="2026-11-29T03:00:00.000Z", grid_id=grid),
        )

    assert within_grids(value("G03"), {"G03", "G04"})
    assert not within_grids(value("G06"), {"G03", "G04"})
    assert not within_grids(value(None), {"G03"})  # no grid recorded: not offered to grid workers
