"""Forms (issue 6) over the API: collect once, store permanently, reuse many times.

Two departments' seeded forms share facts: civil affairs' household survey
(``household-survey``) and health's family-doctor sign-up (``family-doctor-signup``) both ask
the resident's name and phone and the household's address and size.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from smartzone.domain.identity import Caller
from tests.support.api import ApiClient, ApiResponse
from tests.support.forms import EXPORTS_BUCKET, FORM_PEOPLE, ID_HMAC_SECRET, setup_forms

P = FORM_PEOPLE


@pytest.fixture(scope="module")
def forms_env() -> Iterator[dict[str, Any]]:
    """ONE emulated platform for the whole module (set-up is the costly part): the API's
    environment and people (as ``api_env``), plus the forms' people, grids, seeded forms, exports
    bucket and queue. Tests use their own subjects, grids or forms so that they do not interact."""
    from smartzone.repositories import personal_data
    from tests.api.conftest import PROFILES
    from tests.support.api_env import clear_api_caches, emulated_platform, prepare_api

    def clear() -> None:
        clear_api_caches()
        personal_data.id_hmac_key.cache_clear()

    personal_data.id_hmac_key.cache_clear()
    with emulated_platform() as (resources, env):
        seeded = setup_forms(resources.table_name)
        env.setenv("EXPORTS_BUCKET", EXPORTS_BUCKET)
        env.setenv("EXPORTS_QUEUE_URL", seeded["queue_url"])
        env.setenv("ID_HMAC_SECRET", ID_HMAC_SECRET)
        prepare_api(resources.table_name, env, PROFILES)
        clear()
        yield {**seeded, "table": resources.table_name}
    clear()


def id_number(n: int) -> str:
    """The ``n``-th valid test ID number (born 1990-01-01 in Beijing's Xicheng district)."""
    from smartzone.domain.idnumbers import check_char

    first17 = f"11010219900101{n:03d}"
    return first17 + check_char(first17)


def resident_subject(n: int, caller: Caller = P.gw_g03) -> str:
    answer = ApiClient(caller).post("/v1/subjects", {"type": "resident", "id_number": id_number(n)})
    assert answer.status == 200, answer.body
    return str(answer.body["subject"])


def survey_body(household: str, resident: str, grid: str = "G03", **values: Any) -> dict[str, Any]:
    return {
        "client_submission_id": str(uuid.uuid4()),
        "grid_id": grid,
        "subjects": {"household": household, "resident": resident},
        "values": {
            "head_name": "张三丰",
            "head_phone": "13812345678",
            "household_size": 4,
            "address": "弋江区高新大道178号3栋501室",
            "housing_type": "owned",
            "low_income": False,
            **values,
        },
        "collected_at": "2026-11-29T10:00:00+08:00",
    }


def submit(caller: Caller, form_id: str, body: dict[str, Any]) -> ApiResponse:
    return ApiClient(caller).post(f"/v1/forms/{form_id}/submissions", body)


def test_seeded_forms_are_loaded_and_listed_for_the_grid_worker(forms_env) -> None:  # type: ignore[no-untyped-def]
    """Given the seed, when a G03 grid worker lists forms, then the forms assigned to 临江社区 or
    G03 are there with their owners, and a form's JSON Schema carries the display metadata."""
    assert forms_env["forms"] == {
        "building-gas-check": "created",
        "enterprise-fire-inspection": "created",
        "family-doctor-signup": "created",
        "household-survey": "created",
    }
    listed = ApiClient(P.gw_g03).get("/v1/forms")
    assert listed.status == 200
    owners = {f["form_id"]: f["department_id"] for f in listed.body["items"]}
    assert owners["household-survey"] == "civil-affairs"
    assert owners["family-doctor-signup"] == "health"
    assert owners["enterprise-fire-inspection"] == "fire-rescue"  # assigned to G03 itself
    form = ApiClient(P.gw_g03).get("/v1/forms/household-survey").body
    schema = form["json_schema"]
    assert schema["properties"]["household_size"]["title"] == "家庭人口数"
    assert schema["properties"]["household_size"]["minimum"] == 1
    assert schema["properties"]["housing_type"]["enum"] == ["owned", "rented", "public", "other"]
    assert "household_size" in schema["required"]
    assert [f["name"] for f in form["fields"]][:3] == ["head_name", "head_phone", "household_size"]
    assert form["subject_types"] == ["household", "resident"]


def test_prefill_submit_then_prefill_elsewhere_across_two_departments(forms_env) -> None:  # type: ignore[no-untyped-def]
    """Acceptance. Given nothing stored, when a grid worker submits civil affairs' household survey,
    then health's family-doctor form is prefilled with the shared facts and their provenance; when
    she confirms them there, the outcomes say prefilled-confirmed and the stats report the ratio."""
    household = "household:H-KC-0001"
    resident = resident_subject(1, P.gw_g06)
    assert resident.startswith("resident:") and id_number(1) not in resident
    gw = ApiClient(P.gw_g06)
    subjects = f"{household},{resident}"
    empty = gw.get("/v1/forms/household-survey/prefill", subject=subjects)
    assert empty.status == 200 and empty.body["prefilled"] == 0

    body = survey_body(household, resident, "G06")
    first = submit(P.gw_g06, "household-survey", body)
    assert first.status == 201, first.body
    assert set(first.body["outcomes"].values()) == {"typed_new"}
    assert first.body["community"] == "科创社区"
    assert first.body["values"]["head_phone"] == "138****5678"  # the worker's view is masked

    elsewhere = gw.get("/v1/forms/family-doctor-signup/prefill", subject=subjects)
    assert elsewhere.status == 200
    fields = {f["name"]: f for f in elsewhere.body["fields"]}
    assert elsewhere.body["prefilled"] == 4
    for name in ("name", "phone", "address", "family_members"):
        source = fields[name]["source"]
        assert source["kind"] == "form"
        assert source["form_id"] == "household-survey"
        assert source["form_version"] == 1
        assert source["submission_id"] == body["client_submission_id"]
        assert source["by"] == "gw-g06-01"
        assert source["at"] == first.body["received_at"]
    assert fields["family_members"]["value"] == 4
    assert fields["address"]["value"] == "弋江区高新大道178号3栋501室"  # staff see full addresses
    assert (fields["phone"]["value"], fields["phone"]["masked"]) == ("138****5678", True)
    assert fields["name"]["value"] == "张*"
    assert fields["doctor_team"]["value"] is None and fields["doctor_team"]["source"] is None
    unmasked = ApiClient(P.admin).get("/v1/forms/family-doctor-signup/prefill", subject=subjects).body
    assert next(f for f in unmasked["fields"] if f["name"] == "phone")["value"] == "13812345678"

    signup = {
        "client_submission_id": str(uuid.uuid4()),
        "grid_id": "G06",
        "subjects": {"household": household, "resident": resident},
        "confirmed": ["name", "phone", "address"],
        "values": {"family_members": 5, "doctor_team": "team-1", "chronic_conditions": "高血压"},
    }
    second = submit(P.gw_g06, "family-doctor-signup", signup)
    assert second.status == 201, second.body
    assert second.body["outcomes"] == {
        "name": "prefilled_confirmed",
        "phone": "prefilled_confirmed",
        "address": "prefilled_confirmed",
        "family_members": "corrected",
        "doctor_team": "typed_new",
        "chronic_conditions": "typed_new",
    }
    # The corrected household size is now the household's fact, with the sign-up as its source.
    back = gw.get("/v1/forms/household-survey/prefill", subject=subjects).body
    size = next(f for f in back["fields"] if f["name"] == "household_size")
    assert size["value"] == 5 and size["source"]["form_id"] == "family-doctor-signup"
    phone = next(f for f in back["fields"] if f["name"] == "head_phone")
    assert phone["source"]["form_id"] == "household-survey"  # confirmed: provenance kept

    stats = gw.get("/v1/stats").body["prefill"]  # G06's worker: G06 only
    assert stats["total"]["submissions"] == 2
    assert stats["total"]["fields"] == 12
    assert stats["by_form"]["family-doctor-signup"]["prefilled_confirmed"] == 3
    assert stats["by_form"]["family-doctor-signup"]["prefill_ratio"] == pytest.approx(4 / 6, abs=1e-4)
    assert stats["by_form"]["household-survey"]["prefill_ratio"] == 0
    assert stats["by_form_community"]["family-doctor-signup"]["科创社区"]["confirmed_ratio"] == 0.5
    assert stats["total"]["confirmed_ratio"] == 0.25
    assert [d["counts"]["submissions"] for d in stats["by_day"]] == [2]
    assert ApiClient(P.gw_g04).get("/v1/stats").body["prefill"]["total"]["submissions"] == 0


def test_retries_return_the_original_answer_and_never_duplicate(forms_env) -> None:  # type: ignore[no-untyped-def]
    """Given a submission, when the app retries it (offline), then the answer is the original one
    with 200 and facts and counters change once; reusing the id for other content is a 409."""
    from smartzone.repositories.facts import FactRepository

    household = "household:H-KC-0700"
    body = survey_body(household, resident_subject(2, P.gw_g07), "G07")
    first = submit(P.gw_g07, "household-survey", body)
    retry = submit(P.gw_g07, "household-survey", body)
    assert (first.status, retry.status) == (201, 200)
    assert retry.body == first.body
    assert len(FactRepository(forms_env["table"]).history(household, "household.size")) == 1
    listed = ApiClient(P.gw_g07).get("/v1/forms/household-survey/submissions")
    assert [s["submission_id"] for s in listed.body["items"]] == [body["client_submission_id"]]
    assert ApiClient(P.gw_g07).get("/v1/stats").body["prefill"]["total"]["submissions"] == 1
    changed = {**body, "values": {**body["values"], "household_size": 9}}
    conflict = submit(P.gw_g07, "household-survey", changed)
    assert (conflict.status, conflict.body["field"]) == (409, "client_submission_id")


def test_validation_errors_name_each_bad_field_in_chinese_and_english(forms_env) -> None:  # type: ignore[no-untyped-def]
    """Given bad values, when submitted, then 422 lists every bad field with zh and en messages
    and nothing is stored."""
    from smartzone.repositories.facts import FactRepository

    household = "household:H-LJ-0422"
    resident = resident_subject(3)
    body = survey_body(
        household, resident, household_size=0, head_phone="12345", housing_type="castle", extra=1
    )
    del body["values"]["head_name"]
    answer = submit(P.gw_g03, "household-survey", body)
    assert answer.status == 422
    details = {d["field"]: d for d in answer.body["details"]}
    assert set(details) == {
        "values.head_name",
        "values.head_phone",
        "values.household_size",
        "values.housing_type",
        "values.extra",
    }
    assert answer.body["field"] == "values.head_name"
    assert details["values.household_size"]["message_zh"] == "家庭人口数不能小于1"
    assert details["values.household_size"]["message_en"] == "household_size must be at least 1"
    assert details["values.head_name"]["message_zh"] == "户主姓名为必填项"
    assert details["values.head_phone"]["message_en"] == "head_phone has an invalid format"
    assert "owned" in details["values.housing_type"]["message_zh"]
    assert FactRepository(forms_env["table"]).current([(household, "household.size")]) == {}
    # Subjects and confirmations are checked too.
    no_subject = {**survey_body(household, resident), "subjects": {"household": household}}
    missing = submit(P.gw_g03, "household-survey", no_subject)
    assert (missing.status, missing.body["field"]) == (422, "subjects.resident")
    nothing = {**survey_body(household, resident), "confirmed": ["household_size"]}
    del nothing["values"]["household_size"]
    refused = submit(P.gw_g03, "household-survey", nothing)
    assert (refused.status, refused.body["field"]) == (422, "confirmed.household_size")
    bad_id = ApiClient(P.gw_g03).post("/v1/subjects", {"type": "resident", "id_number": "110105194912310021"})
    assert (bad_id.status, bad_id.body["field"]) == (422, "id_number")
    assert "110105194912310021" not in bad_id.body["message"]


LOW_INCOME_FORM: dict[str, Any] = {
    "form_id": "low-income-review",
    "title_zh": "低保家庭复核表",
    "assigned_communities": ["科创社区"],
    "fields": [
        {"name": "size", "fact": "household.size", "label_zh": "家庭人口数", "order": 1, "required": True},
        {"name": "low_income", "fact": "household.low_income", "label_zh": "是否低保户", "order": 2},
    ],
}


def test_versions_keep_old_submissions_and_retired_forms_take_none(forms_env) -> None:  # type: ignore[no-untyped-def]
    """Given a v1 submission, when civil affairs publishes v2 with a new required field, then the
    old submission keeps version 1, v1 stays readable, new submissions need the field; once
    retired, submissions are refused (409) and grid workers no longer see the form."""
    civil, gw = ApiClient(P.civil), ApiClient(P.gw_g06)
    assert civil.post("/v1/forms", LOW_INCOME_FORM).status == 201
    body = {"grid_id": "G06", "subjects": {"household": "household:H-KC-0100"}, "values": {"size": 3}}
    old = gw.post(
        "/v1/forms/low-income-review/submissions", {**body, "client_submission_id": str(uuid.uuid4())}
    )
    assert old.status == 201 and old.body["form_version"] == 1
    employed = {
        "name": "employment",
        "fact": "resident.employment_status",
        "label_zh": "户主就业状态",
        "order": 3,
        "required": True,
        "schema": {"enum": ["employed", "unemployed", "retired"]},
    }
    draft = {k: v for k, v in LOW_INCOME_FORM.items() if k != "form_id"}
    v2 = civil.put(
        "/v1/forms/low-income-review",
        {**draft, "fields": [*draft["fields"], employed], "expected_version": 1},
    )
    assert (v2.status, v2.body["version"]) == (200, 2)
    assert v2.body["subject_types"] == ["household", "resident"]
    stale = civil.put("/v1/forms/low-income-review", {**draft, "expected_version": 1})
    assert (stale.status, stale.body["field"]) == (409, "expected_version")
    v1 = civil.get("/v1/forms/low-income-review", version="1").body
    assert (v1["version"], [f["name"] for f in v1["fields"]]) == (1, ["size", "low_income"])
    assert civil.get("/v1/forms/low-income-review/submissions").body["items"][0]["form_version"] == 1
    missing = gw.post(
        "/v1/forms/low-income-review/submissions", {**body, "client_submission_id": str(uuid.uuid4())}
    )
    assert (missing.status, missing.body["field"]) == (422, "subjects.resident")
    offline_v1 = gw.post(
        "/v1/forms/low-income-review/submissions",
        {**body, "form_version": 1, "client_submission_id": str(uuid.uuid4())},
    )
    assert (offline_v1.status, offline_v1.body["form_version"]) == (201, 1)
    assert gw.put("/v1/forms/low-income-review", draft).status == 403
    retired = civil.post("/v1/forms/low-income-review/retire")
    assert (retired.status, retired.body["status"]) == (200, "retired")
    late = {**body, "form_version": 1, "client_submission_id": str(uuid.uuid4())}
    assert (
        gw.post("/v1/forms/low-income-review/submissions", late).status == 404
    )  # workers: active forms only
    assert ApiClient(P.admin).post("/v1/forms/low-income-review/submissions", late).status == 409
    assert "low-income-review" not in {f["form_id"] for f in gw.get("/v1/forms").body["items"]}
    assert civil.put("/v1/forms/low-income-review", draft).status == 409


def test_departments_create_forms_for_themselves(forms_env) -> None:  # type: ignore[no-untyped-def]
    """Given a department, when it creates a form, then it owns it (another department named in
    the body: 403); a duplicate id is 409; an unknown fact 422; grid workers 403."""
    draft: dict[str, Any] = {
        "form_id": "elderly-care-visit",
        "title_zh": "高龄老人走访记录",
        "assigned_grids": ["G04"],
        "fields": [
            {"name": "phone", "fact": "resident.phone", "label_zh": "联系电话", "order": 1, "required": True}
        ],
    }
    health = ApiClient(P.health)
    created = health.post("/v1/forms", draft)
    assert created.status == 201, created.body
    assert (created.body["department_id"], created.body["version"]) == ("health", 1)
    assert health.post("/v1/forms", draft).status == 409
    assert (
        health.post("/v1/forms", {**draft, "form_id": "x-other", "department_id": "civil-affairs"}).status
        == 403
    )
    unknown = {
        **draft,
        "form_id": "bad-form",
        "fields": [{**draft["fields"][0], "fact": "resident.shoe_size"}],
    }
    assert health.post("/v1/forms", unknown).status == 422
    assert ApiClient(P.gw_g04).post("/v1/forms", {**draft, "form_id": "gw-form"}).status == 403
    assert (
        ApiClient(P.admin).post("/v1/forms", {**draft, "form_id": "admin-form"}).body["field"]
        == "department_id"
    )


def test_access_rules(forms_env) -> None:  # type: ignore[no-untyped-def]
    """Grid workers: only forms of their grids/communities and their grids' submissions;
    departments: only forms they own; technicians: none."""
    resident = resident_subject(4)
    assert submit(P.gw_g03, "household-survey", survey_body("household:H-LJ-0404", resident)).status == 201
    # G04 is in 临江社区 too, but the fire inspection form is assigned to G03 and 科创社区 only.
    assert ApiClient(P.gw_g04).get("/v1/forms/enterprise-fire-inspection").status == 404
    assert ApiClient(P.gw_g03).get("/v1/forms/enterprise-fire-inspection").status == 200
    # Submissions: another grid's worker does not see G03's; the owner department does; others not.
    assert ApiClient(P.gw_g04).get("/v1/forms/household-survey/submissions").body["items"] == []
    assert ApiClient(P.gw_g04).get("/v1/forms/household-survey/submissions", grid_id="G03").status == 404
    assert ApiClient(P.civil).get("/v1/forms/household-survey/submissions", grid_id="G03").body["items"]
    assert ApiClient(P.health).get("/v1/forms/household-survey/submissions").status == 404
    assert ApiClient(P.health).get("/v1/forms/household-survey").status == 404
    health_forms = {f["form_id"] for f in ApiClient(P.health).get("/v1/forms").body["items"]}
    assert "family-doctor-signup" in health_forms and "household-survey" not in health_forms
    assert ApiClient(P.tech).get("/v1/forms").status == 403
    # A grid worker fills only in her grids; a form not assigned to the grid is refused.
    wrong_grid = submit(P.gw_g03, "household-survey", survey_body("household:H-LJ-0405", resident, "G04"))
    assert wrong_grid.status == 403
    inspection = {
        "client_submission_id": str(uuid.uuid4()),
        "grid_id": "G04",
        "subjects": {"enterprise": "enterprise:91340200MA2N0X1234"},
        "values": {
            "enterprise_name": "某公司",
            "contact_phone": "13800000000",
            "inspection_date": "2026-11-28",
            "hazard_found": False,
        },
    }
    unassigned = submit(P.admin, "enterprise-fire-inspection", inspection)
    assert (unassigned.status, unassigned.body["field"]) == (422, "grid_id")
    # Dispatchers see forms but do not fill them; grid workers do not export.
    assert (
        ApiClient(P.dispatcher).get("/v1/forms/household-survey/prefill", subject="household:H-1").status
        == 403
    )
    period = {"from": "2026-11-01", "to": "2026-11-30"}
    assert ApiClient(P.gw_g03).post("/v1/forms/household-survey/exports", period).status == 403


def test_attachments_are_presigned_and_must_be_the_workers_own(forms_env) -> None:  # type: ignore[no-untyped-def]
    """Given an attachment ticket, when its key goes into the attachment field, then the
    submission is accepted; another person's key is refused naming the field."""
    gw = ApiClient(P.gw_g03)
    ticket = gw.post(
        "/v1/forms/household-survey/attachments", {"content_type": "image/jpeg", "size_bytes": 2048}
    )
    assert ticket.status == 201, ticket.body
    assert "/gw-g03-01/" in ticket.body["key"] and ticket.body["fields"]["key"] == ticket.body["key"]
    resident = resident_subject(5)
    with_photo = survey_body("household:H-LJ-0505", resident, register_photo=ticket.body["key"])
    assert submit(P.gw_g03, "household-survey", with_photo).status == 201
    foreign = ticket.body["key"].replace("/gw-g03-01/", "/someone/")
    refused = submit(
        P.gw_g03, "household-survey", survey_body("household:H-LJ-0506", resident, register_photo=foreign)
    )
    assert (refused.status, refused.body["field"]) == (422, "values.register_photo")


def run_export_jobs(queue_url: str) -> int:
    """Deliver the queued export jobs to the exports function as SQS would; returns how many."""
    from functions.exports.handler import handler
    from smartzone.repositories.clients import client
    from tests.support.telemetry import FakeContext

    messages = client("sqs").receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
    records = [
        {
            "messageId": m["MessageId"],
            "receiptHandle": m["ReceiptHandle"],
            "body": m["Body"],
            "attributes": {},
            "messageAttributes": {},
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws-cn:sqs:cn-north-1:123456789012:smartzone-export-jobs",
            "awsRegion": "cn-north-1",
        }
        for m in messages
    ]
    result = handler({"Records": records}, FakeContext())
    assert result == {"batchItemFailures": []}
    return len(records)


def exported(table: str, export_id: str) -> bytes:
    from smartzone.repositories.clients import client
    from smartzone.repositories.exports import ExportRepository

    job = ExportRepository(table).get(export_id)
    assert job is not None and job.object_key is not None
    assert job.object_key == f"exports/household-survey/{export_id}.{job.format.value}"
    return bytes(client("s3").get_object(Bucket=EXPORTS_BUCKET, Key=job.object_key)["Body"].read())


def test_exports_are_excel_safe_and_masked_unless_the_role_allows(forms_env) -> None:  # type: ignore[no-untyped-def]
    """Given a submission, when civil affairs exports the period as CSV and an admin as XLSX, then
    the CSV is UTF-8 with BOM and Chinese headers with phones and names masked, the XLSX opens
    with openpyxl unmasked for the admin, whose download is audited; others get 404."""
    import csv
    import io
    from datetime import UTC, datetime

    from openpyxl import load_workbook

    from smartzone.domain.timeutil import SHANGHAI
    from smartzone.repositories.audit import AuditLog

    household = "household:H-LJ-0900"
    body = survey_body(household, resident_subject(9), head_name="欧阳娜娜", head_phone="13900001111")
    assert submit(P.gw_g03, "household-survey", body).status == 201
    today = datetime.now(SHANGHAI).date().isoformat()
    period = {"from": today, "to": today}

    civil = ApiClient(P.civil)
    accepted = civil.post("/v1/forms/household-survey/exports", {**period, "format": "csv"})
    assert accepted.status == 202 and accepted.body["masked"] is True
    export_id = accepted.body["export_id"]
    assert civil.get(f"/v1/exports/{export_id}").body["status"] == "queued"
    assert run_export_jobs(forms_env["queue_url"]) == 1
    status = civil.get(f"/v1/exports/{export_id}").body
    assert status["status"] == "done" and status["url"] and status["rows"] >= 1
    assert ApiClient(P.health).get(f"/v1/exports/{export_id}").status == 404

    data = exported(forms_env["table"], export_id)
    assert data.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs for UTF-8
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    header = rows[0]
    assert header[:3] == ["提交编号", "表单版本", "提交时间"]
    assert {"户主姓名", "户主联系电话", "家庭人口数", "家庭住址"} <= set(header)
    row = next(r for r in rows[1:] if r[0] == body["client_submission_id"])
    cell = dict(zip(header, row, strict=True))
    assert (cell["户主姓名"], cell["户主联系电话"]) == ("欧阳*", "139****1111")
    assert cell["家庭住址"] == "弋江区高新大道178号3栋501室"
    assert cell["家庭户编号"] == "H-LJ-0900" and cell["是否低保户"] == "否"

    admin = ApiClient(P.admin)
    xlsx = admin.post("/v1/forms/household-survey/exports", {**period, "format": "xlsx"})
    assert xlsx.status == 202 and xlsx.body["masked"] is False
    run_export_jobs(forms_env["queue_url"])
    assert admin.get(f"/v1/exports/{xlsx.body['export_id']}").body["status"] == "done"
    book = load_workbook(io.BytesIO(exported(forms_env["table"], xlsx.body["export_id"])), read_only=True)
    sheet = book.worksheets[0]
    assert sheet.title == "家庭户基本情况调查表"
    table = [list(r) for r in sheet.iter_rows(values_only=True)]
    found = dict(
        zip(table[0], next(r for r in table[1:] if r[0] == body["client_submission_id"]), strict=True)
    )
    assert (found["户主姓名"], found["户主联系电话"], found["家庭人口数"]) == ("欧阳娜娜", "13900001111", 4)
    entries, _ = AuditLog(forms_env["table"]).day(datetime.now(UTC).strftime("%Y-%m-%d"))
    audited = [e for e in entries if e.subject_key == f"FORMEXPORT#{xlsx.body['export_id']}"]
    assert len(audited) == 1 and audited[0].actor == "admin-01" and "户主联系电话" in audited[0].fields


def test_erasing_a_subject_removes_its_facts_and_anonymises_its_submissions(forms_env) -> None:  # type: ignore[no-untyped-def]
    """Given a resident's facts from a submission, when the resident's data is erased (the call
    helper C2's erasure makes), then facts and history are gone, prefill offers nothing, and the
    submission no longer holds the resident's fields or key."""
    from smartzone.repositories.facts import FactRepository
    from smartzone.repositories.submissions import SubmissionRepository

    resident = resident_subject(11, P.gw_g06)
    body = survey_body("household:H-KC-1100", resident, "G06")
    assert submit(P.gw_g06, "household-survey", body).status == 201
    store = FactRepository(forms_env["table"])
    assert store.submissions_of(resident) == [body["client_submission_id"]]
    changed = SubmissionRepository(forms_env["table"]).anonymise_subject(
        store.submissions_of(resident), resident, ["head_name", "head_phone"]
    )
    assert changed == 1
    assert store.erase_subject(resident) == 4  # name and phone: current value + history each
    assert store.current([(resident, "resident.phone")]) == {}
    prefill = ApiClient(P.gw_g06).get("/v1/forms/household-survey/prefill", subject=resident).body
    assert prefill["prefilled"] == 0
    kept = SubmissionRepository(forms_env["table"]).get(body["client_submission_id"])
    assert kept is not None and "head_phone" not in kept.values and kept.subjects["resident"] == "erased"
    assert kept.values["household_size"] == 4


def test_the_exports_function_acknowledges_unknown_jobs_and_fails_jobs_of_missing_forms(forms_env) -> None:  # type: ignore[no-untyped-def]
    """Given a message naming no job, or a job whose form is gone, then nothing is retried: the
    first is acknowledged, the second marked failed with its reason."""
    from functions.exports.handler import process_job
    from smartzone.domain.form_exports import ExportFormat, ExportJob, ExportStatus
    from smartzone.repositories.exports import ExportRepository

    assert process_job("no-such-job") is None
    repository = ExportRepository(forms_env["table"])
    job = ExportJob(
        export_id="e" * 32,
        form_id="no-such-form",
        from_day="2026-11-01",
        to_day="2026-11-30",
        format=ExportFormat.CSV,
        requested_by="admin-01",
        unmasked=False,
        created_at="2026-11-29T00:00:00.000Z",
    )
    repository.put(job, 1_790_000_000)
    failed = process_job(job.export_id)
    assert failed is not None and failed.status is ExportStatus.FAILED
    stored = repository.get(job.export_id)
    assert (
        stored is not None and stored.status is ExportStatus.FAILED and "no-such-form" in (stored.error or "")
    )


# -- review findings ---------------------------------------------------------------------------------
def test_given_another_grids_facts_when_a_grid_worker_prefills_then_they_are_not_offered(forms_env) -> None:  # type: ignore[no-untyped-def]
    """Given G06's worker surveyed household H-KC-0999, when G03's worker asks for its prefill,
    then nothing is offered (as if unknown), confirming is refused and her values count as typed
    new; G06's worker, the owning department and admins still see the values with their grid."""
    household, resident = "household:H-KC-0999", resident_subject(30, P.gw_g06)
    subjects = f"{household},{resident}"
    assert submit(P.gw_g06, "household-survey", survey_body(household, resident, "G06")).status == 201

    own = ApiClient(P.gw_g06).get("/v1/forms/household-survey/prefill", subject=subjects).body
    address = next(f for f in own["fields"] if f["name"] == "address")
    assert address["value"] == "弋江区高新大道178号3栋501室"
    assert (address["source"]["grid_id"], address["source"]["community"]) == ("G06", "科创社区")
    other = ApiClient(P.gw_g03).get("/v1/forms/household-survey/prefill", subject=subjects)
    assert other.status == 200 and other.body["prefilled"] == 0
    assert all(f["value"] is None and f["source"] is None for f in other.body["fields"])
    confirm = survey_body(household, resident, "G03")
    del confirm["values"]["address"]
    confirm["confirmed"] = ["address"]
    refused = submit(P.gw_g03, "household-survey", confirm)
    assert (refused.status, refused.body["field"]) == (422, "confirmed.address")
    typed = submit(P.gw_g03, "household-survey", survey_body(household, resident, "G03", household_size=6))
    assert typed.status == 201 and set(typed.body["outcomes"].values()) == {"typed_new"}

    own = ApiClient(P.gw_g06).get("/v1/forms/household-survey/prefill", subject=subjects).body
    assert own["prefilled"] == 0  # now G03's values: out of G06's reach in turn
    for caller in (P.civil, P.admin):
        seen = ApiClient(caller).get("/v1/forms/household-survey/prefill", subject=subjects).body
        assert seen["prefilled"] == 6
        assert next(f for f in seen["fields"] if f["name"] == "household_size")["value"] == 6


def _conflict() -> Exception:
    from botocore.exceptions import ClientError

    return ClientError(
        {
            "Error": {"Code": "TransactionCanceledException", "Message": "Transaction cancelled"},
            "CancellationReasons": [{"Code": "None"}, {"Code": "TransactionConflict"}, {"Code": "None"}],
        },
        "TransactWriteItems",
    )


def test_given_concurrent_submissions_when_the_transaction_conflicts_then_retry_then_503(  # type: ignore[no-untyped-def]
    forms_env, monkeypatch
) -> None:
    """Given the day's counters are being written by another submission, when the transaction is
    cancelled for TransactionConflict, then it is retried with backoff (201 once it goes through);
    when it keeps conflicting, the answer is 503 in Chinese and English and nothing is stored."""
    from smartzone.repositories import submissions as module
    from smartzone.repositories.clients import client
    from smartzone.repositories.submissions import SubmissionRepository

    ddb = client("dynamodb")
    real = ddb.transact_write_items
    sleeps: list[float] = []
    failures = {"left": 2}

    def flaky(**kwargs: Any) -> Any:
        if failures["left"] > 0:
            failures["left"] -= 1
            raise _conflict()
        return real(**kwargs)

    monkeypatch.setattr(module.time, "sleep", sleeps.append)
    monkeypatch.setattr(ddb, "transact_write_items", flaky)
    resident = resident_subject(31, P.gw_g07)
    body = survey_body("household:H-KC-0731", resident, "G07")
    assert submit(P.gw_g07, "household-survey", body).status == 201
    assert len(sleeps) == 2 and all(0 <= s <= 1.0 for s in sleeps)

    failures["left"] = 1000
    busy_body = survey_body("household:H-KC-0732", resident, "G07")
    busy = submit(P.gw_g07, "household-survey", busy_body)
    assert (busy.status, busy.body["error"]) == (503, "busy")
    assert "稍后重试" in busy.body["message"] and "retry" in busy.body["message"]
    assert SubmissionRepository(forms_env["table"]).get(busy_body["client_submission_id"]) is None


def test_given_a_newer_fact_when_a_late_offline_submission_arrives_then_it_does_not_replace_it(
    forms_env,
) -> None:  # type: ignore[no-untyped-def]
    """Given a household size collected now, when a submission collected yesterday arrives after
    it, then that submission is stored and its value kept in the history, but the current value
    (and its provenance) stays the later-collected one."""
    from smartzone.repositories.facts import FactRepository

    household, resident = "household:H-KC-0740", resident_subject(32, P.gw_g07)
    fresh = survey_body(household, resident, "G07", household_size=5)
    del fresh["collected_at"]  # collected when received
    assert submit(P.gw_g07, "household-survey", fresh).status == 201
    late = survey_body(household, resident, "G07", household_size=3)
    late["collected_at"] = "2026-11-28T09:00:00+08:00"
    stored = submit(P.gw_g07, "household-survey", late)
    assert stored.status == 201 and stored.body["outcomes"]["household_size"] == "corrected"

    prefill = ApiClient(P.gw_g07).get("/v1/forms/household-survey/prefill", subject=household).body
    size = next(f for f in prefill["fields"] if f["name"] == "household_size")
    assert size["value"] == 5 and size["source"]["submission_id"] == fresh["client_submission_id"]
    history = FactRepository(forms_env["table"]).history(household, "household.size")
    assert sorted(h.value for h in history) == [3, 5]
    late_entry = next(h for h in history if h.value == 3)
    assert late_entry.source.collected_at == "2026-11-28T01:00:00.000Z"
    listed = ApiClient(P.gw_g07).get("/v1/forms/household-survey/submissions", limit="200").body["items"]
    assert late["client_submission_id"] in {s["submission_id"] for s in listed}


def _export_record(export_id: str, receives: int) -> dict[str, Any]:
    return {
        "messageId": f"m-{export_id}-{receives}",
        "receiptHandle": "r",
        "body": f'{{"export_id": "{export_id}"}}',
        "attributes": {"ApproximateReceiveCount": str(receives)},
        "messageAttributes": {},
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws-cn:sqs:cn-north-1:123456789012:smartzone-export-jobs",
        "awsRegion": "cn-north-1",
    }


def test_given_an_export_that_fails_then_the_job_is_marked_failed_not_left_queued(  # type: ignore[no-untyped-def]
    forms_env, monkeypatch
) -> None:
    """Given a job whose rendering breaks (non-transient), then it is failed at once with the
    reason; given S3 failing transiently, then the message is retried while the job stays queued,
    and on the last receive (the queue's maxReceiveCount) the job is failed and acknowledged."""
    from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
    from botocore.exceptions import ClientError

    from functions.exports import handler as exports
    from smartzone.domain.form_exports import ExportFormat, ExportJob, ExportStatus
    from smartzone.repositories.exports import ExportRepository
    from tests.support.telemetry import FakeContext

    repository = ExportRepository(forms_env["table"])

    def job(export_id: str) -> ExportJob:
        queued = ExportJob(
            export_id=export_id,
            form_id="household-survey",
            from_day="2026-11-01",
            to_day="2026-11-30",
            format=ExportFormat.XLSX,
            requested_by="dept-civil-affairs",
            unmasked=False,
            created_at="2026-11-29T00:00:00.000Z",
        )
        repository.put(queued, 1_790_000_000)
        return queued

    def broken(_: ExportJob) -> tuple[bytes, int, list[str]]:
        raise ValueError("openpyxl: sheet title is invalid")

    monkeypatch.setattr(exports, "render", broken)
    first = job("a" * 32)
    assert exports.handler({"Records": [_export_record(first.export_id, 1)]}, FakeContext()) == {
        "batchItemFailures": []
    }
    failed = repository.get(first.export_id)
    assert failed is not None and failed.status is ExportStatus.FAILED
    assert "sheet title is invalid" in (failed.error or "")

    monkeypatch.undo()
    s3 = exports.client("s3")

    def unavailable(**_: Any) -> Any:
        raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "try later"}}, "PutObject")

    monkeypatch.setattr(s3, "put_object", unavailable)
    second = job("b" * 32)
    with pytest.raises(BatchProcessingError):  # the whole batch failed: SQS delivers it again
        exports.handler({"Records": [_export_record(second.export_id, 1)]}, FakeContext())
    queued = repository.get(second.export_id)
    assert queued is not None and queued.status is ExportStatus.QUEUED
    last = exports.handler({"Records": [_export_record(second.export_id, 3)]}, FakeContext())
    assert last == {"batchItemFailures": []}
    gave_up = repository.get(second.export_id)
    assert gave_up is not None and gave_up.status is ExportStatus.FAILED
    assert "ServiceUnavailable" in (gave_up.error or "")


def test_given_a_department_when_it_asks_for_stats_then_it_sees_the_prefill_of_its_own_forms(
    forms_env,
) -> None:  # type: ignore[no-untyped-def]
    """Given submissions of civil affairs' and health's forms, when each department asks for
    ``/v1/stats``, then it gets 200 with the prefill of its own forms only and no work-order
    figures; technicians are still refused."""
    household, resident = "household:H-KC-0750", resident_subject(33, P.gw_g07)
    assert submit(P.gw_g07, "household-survey", survey_body(household, resident, "G07")).status == 201
    signup = {
        "client_submission_id": str(uuid.uuid4()),
        "grid_id": "G07",
        "subjects": {"household": household, "resident": resident},
        "confirmed": ["name", "phone", "address", "family_members"],
        "values": {"doctor_team": "team-3"},
    }
    assert submit(P.gw_g07, "family-doctor-signup", signup).status == 201

    civil = ApiClient(P.civil).get("/v1/stats")
    assert civil.status == 200, civil.body
    assert "household-survey" in civil.body["prefill"]["by_form"]
    assert "family-doctor-signup" not in civil.body["prefill"]["by_form"]
    assert civil.body["orders"]["created"] == 0 and civil.body["detections"] == []
    assert civil.body["grid_ids"] == []
    health = ApiClient(P.health).get("/v1/stats").body["prefill"]
    assert list(health["by_form"]) == ["family-doctor-signup"]
    assert health["by_form"]["family-doctor-signup"]["prefilled_confirmed"] >= 4
    assert ApiClient(P.tech).get("/v1/stats").status == 403


def test_given_a_submission_of_an_unknown_version_then_its_values_are_masked(forms_env) -> None:  # type: ignore[no-untyped-def]
    """Given a stored submission whose form version cannot be found, when a department lists the
    form's submissions, then its text values are withheld (they may be personal data)."""
    from smartzone.domain.forms import Submission
    from smartzone.repositories.submissions import SubmissionRepository

    stray = Submission(
        submission_id=str(uuid.uuid4()),
        form_id="household-survey",
        form_version=99,
        department_id="civil-affairs",
        grid_id="G04",
        community="临江社区",
        subjects={"household": "household:H-LJ-0990"},
        values={"head_phone": "13812345678", "household_size": 4},
        outcomes={"head_phone": "typed_new", "household_size": "typed_new"},
        submitted_by="gw-g04-01",
        received_at="2026-11-29T03:00:00.000Z",
        fingerprint="x",
    )
    SubmissionRepository(forms_env["table"]).record(stray, [], "2026-11-29")
    listed = ApiClient(P.civil).get("/v1/forms/household-survey/submissions", grid_id="G04").body["items"]
    shown = next(s for s in listed if s["submission_id"] == stray.submission_id)
    assert shown["values"] == {"head_phone": "***", "household_size": 4}


def test_given_a_retired_form_when_an_offline_app_retries_then_it_gets_its_original_answer(forms_env) -> None:  # type: ignore[no-untyped-def]
    """Given a submission, when its form is retired and the app retries (it never saw the first
    answer), then the retry gets the original answer with 200; another worker reusing the id gets
    409 and sees nothing."""
    civil, gw = ApiClient(P.civil), ApiClient(P.gw_g06)
    assert civil.post("/v1/forms", {**LOW_INCOME_FORM, "form_id": "retry-review"}).status == 201
    body = {
        "client_submission_id": str(uuid.uuid4()),
        "grid_id": "G06",
        "subjects": {"household": "household:H-KC-0760"},
        "values": {"size": 2},
    }
    first = gw.post("/v1/forms/retry-review/submissions", body)
    assert first.status == 201
    assert civil.post("/v1/forms/retry-review/retire").status == 200
    retry = gw.post("/v1/forms/retry-review/submissions", body)
    assert (retry.status, retry.body) == (200, first.body)
    stranger = ApiClient(P.gw_g07).post("/v1/forms/retry-review/submissions", {**body, "grid_id": "G07"})
    assert (stranger.status, stranger.body["field"]) == (409, "client_submission_id")
    assert "values" not in stranger.body
