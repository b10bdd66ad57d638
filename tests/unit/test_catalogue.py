"""The data catalogue (issue 8): validation rules, codes, seeds, stale flag, masking, DCAT round trip."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from smartzone.domain.catalogue import (
    MaskingRule,
    Resource,
    UpdateCycle,
    check_catalogue,
    code_from_path,
    is_stale,
    mask_row,
    next_code,
    parse_code,
    path_code,
)
from smartzone.domain.catalogue_schema import RESOURCE_SCHEMA, schema_problems
from smartzone.domain.dcat import DcatError, export_catalogue, import_catalogue
from tools import catalogue_seed
from tools.catalogue_dcat import roundtrip

NOW = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)


def valid_record(**changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "code": "210007000/000012",
        "name": "社区网格人口信息",
        "department_id": "emergency",
        "provider_code": "007",
        "summary": "网格内常住人口的基本信息",
        "classification": "210",
        "items": [
            {
                "name": "公民身份号码",
                "column": "id_number",
                "type": "string",
                "personal_class": "id_number",
                "key": True,
            },
            {"name": "姓名", "column": "person_name", "type": "string", "personal_class": "name"},
            {"name": "联系电话", "column": "phone", "type": "string", "personal_class": "phone"},
            {"name": "居住地址", "column": "address", "type": "string", "personal_class": "address"},
            {"name": "户号", "column": "household_no", "type": "string", "personal_class": "other_personal"},
            {"name": "所属网格", "column": "grid_id", "type": "string"},
            {"name": "人数", "column": "quantity", "type": "integer"},
        ],
        "format": "csv",
        "update_cycle": "daily",
        "sharing_type": "conditional",
        "condition": "仅限履行法定职责使用",
        "sharing_method": "file",
        "published_on": "2025-06-01",
    }
    record.update(changes)
    return {k: v for k, v in record.items() if v is not None}


@pytest.fixture(scope="module")
def seed() -> dict[str, Any]:
    return catalogue_seed.generate()


@pytest.fixture(scope="module")
def seed_resources(seed: dict[str, Any]) -> list[Resource]:
    return catalogue_seed.validate(seed)


# -- validation rules: each refused by the schema and by the model, naming the field ------------------
BROKEN = {
    "conditional without a condition": (dict(condition=None), "condition"),
    "not shared without a legal basis": (dict(sharing_type="not_shared", condition=None), "legal_basis"),
    "a condition on an unconditional resource": (dict(sharing_type="unconditional"), "condition"),
    "xlsx shared as an API": (dict(format="xlsx", sharing_method="api"), "sharing_method"),
    "api format shared as a file": (dict(format="api", sharing_method="file"), "sharing_method"),
    "malformed code": (dict(code="21-007-000/12"), "code"),
    "code of another classification": (dict(code="211007000/000012"), "code"),
    "unknown classification": (dict(classification="299", code="299007000/000012"), "classification"),
    "unknown update cycle": (dict(update_cycle="fortnightly"), "update_cycle"),
    "no items": (dict(items=[]), "items"),
    "bad publication date": (dict(published_on="2025-13-01"), "published_on"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_given_a_broken_rule_when_validated_then_schema_and_model_refuse_it_naming_the_field(
    case: str,
) -> None:
    changes, field = BROKEN[case]
    record = valid_record(**changes)
    problems = schema_problems(record)
    assert problems, f"the schema accepted: {case}"
    assert any(p.field.split(".")[0] == field for p in problems), problems
    with pytest.raises(ValidationError) as refused:
        Resource.model_validate(record)
    assert field in str(refused.value)


def test_given_a_valid_record_then_schema_and_model_accept_it_and_default_the_masking_rules() -> None:
    record = valid_record()
    assert schema_problems(record) == []
    resource = Resource.model_validate(record)
    rules = {i.column: i.rule for i in resource.items}
    assert rules["id_number"] is MaskingRule.ID_NUMBER
    assert rules["household_no"] is MaskingRule.REDACT
    assert rules["grid_id"] is MaskingRule.NONE


def test_given_a_personal_item_without_masking_then_it_is_refused() -> None:
    record = valid_record()
    record["items"][1]["masking"] = "none"
    assert [p.field for p in schema_problems(record)] == ["items.1.masking"]
    with pytest.raises(ValidationError, match="personal item 'person_name' needs a masking rule"):
        Resource.model_validate(record)


def test_given_a_phone_rule_on_an_integer_item_then_it_is_refused() -> None:
    record = valid_record()
    record["items"][6]["masking"] = "phone"
    assert schema_problems(record)
    with pytest.raises(ValidationError, match="applies to string items only"):
        Resource.model_validate(record)


def test_given_the_code_names_another_department_number_then_the_model_refuses_it() -> None:
    with pytest.raises(ValidationError, match="names department number 008, but the provider code is 007"):
        Resource.model_validate(valid_record(code="210008000/000012"))


def test_given_the_same_column_twice_then_it_is_refused() -> None:
    record = valid_record()
    record["items"].append(dict(record["items"][5]))
    with pytest.raises(ValidationError, match="column 'grid_id' appears twice"):
        Resource.model_validate(record)


@pytest.mark.parametrize("reserved", ["dt", "resource", "_batch", "_row"])
def test_given_an_item_named_like_a_data_lake_column_when_validated_then_schema_and_model_refuse_it(
    reserved: str,
) -> None:
    """Given an item whose column is one the data lake adds (partitions ``dt`` and ``resource``, row
    identity ``_batch``/``_row``), when validated, then both the schema and the model refuse it
    naming the item's column: queries would overwrite (``dt``) or drop (``resource``) it."""
    record = valid_record()
    record["items"][5]["column"] = reserved
    assert "items.5.column" in {p.field for p in schema_problems(record)}
    with pytest.raises(ValidationError, match=r"items\.5\.column|column"):
        Resource.model_validate(record)


def test_given_an_item_called_dt_or_resource_then_the_model_names_the_reserved_column() -> None:
    for reserved in ("dt", "resource"):
        record = valid_record()
        record["items"][5]["column"] = reserved
        with pytest.raises(
            ValidationError, match=rf"items\.5\.column: '{reserved}' is reserved by the data lake"
        ):
            Resource.model_validate(record)


def test_given_the_schema_then_it_is_a_valid_draft_2020_12_schema() -> None:
    from jsonschema import Draft202012Validator

    Draft202012Validator.check_schema(RESOURCE_SCHEMA)


# -- codes ---------------------------------------------------------------------------------------------------
def test_given_a_code_then_its_parts_and_path_form_are_read() -> None:
    assert parse_code("210007000/000012") == {
        "category": "2",
        "item": "10",
        "dept": "007",
        "sub": "000",
        "seq": "000012",
    }
    assert path_code("210007000/000012") == "210007000-000012"
    assert code_from_path("210007000-000012") == "210007000/000012"
    assert code_from_path("210007000/000012") == "210007000/000012"
    assert code_from_path("../etc/passwd") is None
    assert next_code("210", "007", ["210007000/000001", "210007000/000003", "211007000/000009"]) == (
        "210007000/000004"
    )


def test_given_two_entries_with_one_code_then_the_catalogue_check_refuses_the_duplicate() -> None:
    first = Resource.model_validate(valid_record())
    second = Resource.model_validate(valid_record(name="另一个资源"))
    problems = check_catalogue([first, second])
    assert [p.message for p in problems] == ["code: 210007000/000012 is used twice"]


def test_given_one_department_with_two_numbers_then_the_catalogue_check_refuses_it() -> None:
    first = Resource.model_validate(valid_record())
    second = Resource.model_validate(valid_record(code="210009000/000001", provider_code="009"))
    other = Resource.model_validate(
        valid_record(code="210009000/000002", provider_code="009", department_id="water")
    )
    messages = [p.message for p in check_catalogue([first, second, other])]
    assert "provider_code: emergency is numbered 007, not 009" in messages
    assert "provider_code: 009 already belongs to emergency" in messages


# -- the seed catalogue -----------------------------------------------------------------------------------
def test_given_the_seed_then_160_plus_entries_from_13_departments_validate_with_unique_codes(
    seed_resources: list[Resource],
) -> None:
    resources = seed_resources
    assert len(resources) >= 160
    assert len({r.department_id for r in resources}) == 13
    assert len({r.code for r in resources}) == len(resources)
    assert {r.sharing_type.value for r in resources} == {"unconditional", "conditional", "not_shared"}
    assert {r.sharing_method.value for r in resources} == {"file", "database", "api"}
    district = json.loads(catalogue_seed.DISTRICT_PATH.read_text(encoding="utf-8"))
    assert {r.department_id for r in resources} == {d["department_id"] for d in district["departments"]}


def test_given_the_checked_in_files_then_they_match_the_generator() -> None:
    assert catalogue_seed.main(["--check"]) == 0


# -- stale flag ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("cycle", "age", "stale"),
    [
        ("daily", timedelta(hours=23), False),
        ("daily", timedelta(hours=25), True),
        ("realtime", timedelta(minutes=90), True),
        ("monthly", timedelta(days=30), False),
        ("yearly", timedelta(days=400), True),
        ("irregular", timedelta(days=4000), False),
    ],
)
def test_given_a_last_load_then_stale_means_older_than_the_update_cycle(
    cycle: str, age: timedelta, stale: bool
) -> None:
    resource = Resource.model_validate(
        valid_record(update_cycle=cycle, last_loaded_at=(NOW - age).isoformat())
    )
    assert is_stale(resource, NOW) is stale
    assert UpdateCycle(cycle).label


def test_given_nothing_loaded_then_the_resource_is_stale() -> None:
    assert is_stale(Resource.model_validate(valid_record()), NOW) is True


# -- masking per item -----------------------------------------------------------------------------------------
def test_given_a_row_then_each_personal_item_is_masked_by_its_rule_unless_unmasked() -> None:
    resource = Resource.model_validate(valid_record())
    row = {
        "id_number": "340202199001011234",
        "person_name": "欧阳娜娜",
        "phone": "13812345678",
        "address": "弋江区高新大道178号3栋501室",
        "household_no": "H-1",
        "grid_id": "G03",
        "quantity": 4,
    }
    masked = mask_row(resource, row)
    assert masked == {
        "id_number": "340202********1234",
        "person_name": "欧阳*",
        "phone": "138****5678",
        "address": "弋江区高新大道",
        "household_no": "***",
        "grid_id": "G03",
        "quantity": 4,
    }
    partly = mask_row(resource, row, unmasked={"phone"})
    assert partly["phone"] == "13812345678"
    assert partly["id_number"] == "340202********1234"
    assert mask_row(resource, {"person_name": None})["person_name"] is None


# -- DCAT ---------------------------------------------------------------------------------------------------------
def test_given_every_seed_entry_when_exported_to_dcat_and_imported_then_it_comes_back_unchanged(
    seed_resources: list[Resource],
) -> None:
    resources = seed_resources
    loaded = resources[0].model_copy(update={"last_loaded_at": NOW})
    assert roundtrip([*resources, loaded.model_copy(update={"code": "101001000/000099"})]) == []


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_given_the_dcat_export_then_it_is_json_ld_with_one_dcat_dataset_per_entry(
    seed_resources: list[Resource],
) -> None:
    import rdflib

    resources = seed_resources[:40]
    document = export_catalogue(resources)
    graph = rdflib.Graph().parse(data=json.dumps(document), format="json-ld")
    dcat = rdflib.Namespace("http://www.w3.org/ns/dcat#")
    dct = rdflib.Namespace("http://purl.org/dc/terms/")
    datasets = set(graph.subjects(rdflib.RDF.type, dcat.Dataset))
    assert len(datasets) == 40
    assert len(set(graph.subjects(rdflib.RDF.type, dcat.Distribution))) == 40
    identifiers = {str(o) for o in graph.objects(None, dct.identifier)}
    assert {r.code for r in resources} <= identifiers
    sz = rdflib.Namespace("https://smartzone.example.gov.cn/ns/catalogue#")
    assert len(set(graph.objects(None, sz.sharingType))) == 3


def test_given_a_dcat_document_missing_a_term_then_the_import_names_it(
    seed_resources: list[Resource],
) -> None:
    document = export_catalogue(seed_resources[:1])
    broken = copy.deepcopy(document)
    del broken["dcat:dataset"][0]["sz:sharingType"]
    with pytest.raises(DcatError, match="sz:sharingType is missing"):
        import_catalogue(broken)
    with pytest.raises(DcatError, match="not a dcat:Catalog"):
        import_catalogue({"@type": "dcat:Dataset"})
