"""`/v1/data/{code}`: departments push batches and query shared data under the sharing rules."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from smartzone.domain.identity import Caller
from smartzone.domain.sharing import AccessRequest, approve
from smartzone.domain.users import UserProfile
from tests.support.api import ApiClient
from tests.support.datalake import PROVIDER, READER, good_row, person_id, resource

BUCKET = "smartzone-datalake-api-test"
PUSHED = resource()  # 101001000/000001, conditional, public-security
CONDITIONAL = resource(code="101001000/000003")
OPEN = resource(code="101001000/000002", sharing_type="unconditional")
PAGED = resource(code="101001000/000004", sharing_type="unconditional")
FILTERED = resource(code="101001000/000005", sharing_type="unconditional")
EXPORTED = resource(code="101001000/000006")  # conditional
PUSH_PATH = "/v1/data/101001000-000001"
COND_PATH = "/v1/data/101001000-000003"
OPEN_PATH = "/v1/data/101001000-000002"
PAGED_PATH = "/v1/data/101001000-000004"
FILTERED_PATH = "/v1/data/101001000-000005"
EXPORTED_PATH = "/v1/data/101001000-000006"
COLUMNS = [
    "id_number",
    "name",
    "phone",
    "grid_id",
    "age",
    "income",
    "registered_on",
    "updated_at",
    "lives_alone",
]

PROVIDER_USER = Caller.of("sub-dept-ps", "dept-public-security", ["department"])
READER_USER = Caller.of("sub-dept-ca", "dept-civil-affairs", ["department"])
OTHER = "housing"
OTHER_USER = Caller.of("sub-dept-ho", "dept-housing", ["department"])


def _row(n: int) -> dict[str, Any]:
    return dict(zip(COLUMNS, good_row(n), strict=True))


@pytest.fixture(scope="module")
def data_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One emulated account for the module (each test works on resources of its own): the API's
    environment as ``api_env`` sets it, plus the data-lake bucket, departments and resources."""
    from moto import mock_aws

    from functions.api import context
    from functions.api.routes import data
    from infra.local.resources import create_local_resources
    from smartzone.repositories.catalogue import CatalogueRepository
    from smartzone.repositories.clients import client, reset_clients
    from smartzone.repositories.users import UserRepository
    from smartzone.settings import get_settings

    with mock_aws(), pytest.MonkeyPatch.context() as env:
        reset_clients()
        get_settings.cache_clear()
        resources = create_local_resources()
        for name, value in resources.environment().items():
            env.setenv(name, value)
        env.setenv("CURSOR_SECRET", "test-cursor-secret")
        env.setenv("DATALAKE_BUCKET", BUCKET)
        env.setenv("GLUE_DATABASE", "not_provisioned")  # as on the local platform: no Glue, pushes still load
        env.setenv("DATALAKE_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        get_settings.cache_clear()
        context.users.cache_clear()
        context.cursor_secret.cache_clear()
        data.lake.cache_clear()
        client("s3").create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "cn-north-1"}
        )
        users = UserRepository(resources.table_name)
        for caller, department in ((PROVIDER_USER, PROVIDER), (READER_USER, READER), (OTHER_USER, OTHER)):
            users.put(
                UserProfile(
                    username=caller.username, name="部门接口", roles=["department"], department_id=department
                )
            )
        catalogue = CatalogueRepository(resources.table_name)
        for res in (PUSHED, CONDITIONAL, OPEN, PAGED, FILTERED, EXPORTED):
            catalogue.create(res)
        yield resources
        context.users.cache_clear()
        context.cursor_secret.cache_clear()
        data.lake.cache_clear()
    reset_clients()
    get_settings.cache_clear()


def _grant(
    table: str,
    *,
    unmasked: list[str],
    granted_at: datetime,
    days: int = 0,
    requester: str = READER,
    code: str = CONDITIONAL.code,
    lasts: timedelta | None = None,
) -> None:
    from smartzone.repositories.sharing import SharingRepository

    request = AccessRequest(
        request_id=f"req-{requester}" + ("" if code == CONDITIONAL.code else f"-{code[-6:]}"),
        resource_code=code,
        provider_id=PROVIDER,
        requester_id=requester,
        requested_by=f"dept-{requester}",
        purpose="独居老人关爱走访",
        items=unmasked,
        created_at=granted_at,
    )
    repo = SharingRepository(table)
    repo.create_request(request)
    decided, grant = approve(
        request,
        by=PROVIDER_USER.username,
        expires_at=granted_at + (lasts if lasts is not None else timedelta(days=days)),
        unmasked_items=unmasked,
        now=granted_at,
    )
    repo.record_decision(decided, grant)


def _log(table: str) -> list[Any]:
    from smartzone.repositories.sharing import SharingRepository

    return SharingRepository(table).access_log(CONDITIONAL.code)


def test_given_the_provider_when_it_pushes_a_batch_then_good_rows_load_and_bad_ones_are_reported(
    data_env: Any,
) -> None:
    bad = {**_row(2), "age": "很老", "id_number": person_id(2)[:-1] + "Y"}
    answer = ApiClient(PROVIDER_USER).post(
        f"{PUSH_PATH}/batches", {"batch_id": "b-001", "rows": [_row(1), bad, _row(3)]}
    )

    assert answer.status == 200, answer.body
    assert (answer.body["rows_loaded"], answer.body["rows_rejected"]) == (2, 1)
    (reject,) = answer.body["rejects"]
    assert reject["row"] == 2 and [r.split(":")[0] for r in reject["reasons"]] == ["id_number", "age"]
    assert person_id(2)[:-1] not in str(answer.body)  # reasons never carry the values
    assert answer.body["parquet_key"].startswith("datalake/resource=101001000-000001/dt=")

    from smartzone.repositories.catalogue import CatalogueRepository

    assert CatalogueRepository(data_env.table_name).get(PUSHED.code).last_loaded_at is not None  # type: ignore[union-attr]
    report = ApiClient(PROVIDER_USER).get(f"{PUSH_PATH}/batches/pb-001")
    assert report.status == 200 and report.body["rows_loaded"] == 2
    assert ApiClient(PROVIDER_USER).get(f"{PUSH_PATH}/batches/nope").status == 404


PUSH_REFUSALS = [
    (READER_USER, f"{PUSH_PATH}/batches", {"rows": [{"name": "x"}]}, 403, "code"),  # not the provider
    (PROVIDER_USER, "/v1/data/101001000-000099/batches", {"rows": [{"name": "x"}]}, 404, "code"),
    (PROVIDER_USER, f"{PUSH_PATH}/batches", {"rows": []}, 422, "rows"),
    (PROVIDER_USER, f"{PUSH_PATH}/batches", {"rows": [{"age": 1}], "batch_id": "../x"}, 422, "batch_id"),
    (PROVIDER_USER, f"{PUSH_PATH}/batches", {"rows": ["not an object"]}, 422, "rows.0"),
]


def test_given_pushes_outside_the_rules_when_sent_then_each_is_refused_naming_the_field(
    data_env: Any,
) -> None:
    for caller, path, body, status, field in PUSH_REFUSALS:
        answer = ApiClient(caller).post(path, body)
        assert (answer.status, answer.body.get("field")) == (status, field), (body, answer.body)


def test_given_an_unconditional_resource_when_another_department_queries_then_rows_come_masked_and_logged(
    data_env: Any,
) -> None:
    assert (
        ApiClient(PROVIDER_USER).post(f"{OPEN_PATH}/batches", {"rows": [_row(n) for n in range(5)]}).status
        == 200
    )
    answer = ApiClient(READER_USER).post(
        f"{OPEN_PATH}/query",
        {"select": ["id_number", "name", "age"], "filters": [{"column": "age", "op": "gte", "value": 22}]},
    )
    assert answer.status == 200, answer.body
    assert [r["age"] for r in answer.body["rows"]] == [22, 23, 24]
    assert answer.body["rows"][0]["id_number"] == person_id(2)[:6] + "********" + person_id(2)[-4:]
    assert answer.body["masked"] == ["id_number", "name"] and answer.body["engine"] == "duckdb"

    from smartzone.repositories.sharing import SharingRepository

    (entry,) = SharingRepository(data_env.table_name).access_log(OPEN.code)
    assert (entry.department_id, entry.allowed, entry.rows) == (READER, True, 3)
    assert "age:gte" in (entry.detail or "") and "22" not in (entry.detail or "").split(";")[1]

    # an export: every matching row as CSV behind a short-lived link, never with masked columns
    refused = ApiClient(READER_USER).post(f"{OPEN_PATH}/query", {"export": True})
    assert refused.status == 403 and refused.body["field"] == "export"
    export = ApiClient(READER_USER).post(
        f"{OPEN_PATH}/query",
        {
            "select": ["grid_id", "age"],
            "filters": [{"column": "age", "op": "lt", "value": 23}],
            "export": True,
        },
    )
    assert export.status == 200 and export.body["rows"] == [] and export.body["expires_in"] == 900

    import requests

    download = requests.get(export.body["download_url"], timeout=5)
    assert download.status_code == 200
    assert download.text.splitlines() == ["grid_id,age", "G01,20", "G02,21", "G03,22"]

    dispatcher = Caller.of("sub-disp", "disp-01", ["dispatcher"])  # not a department
    assert ApiClient(dispatcher).post(f"{OPEN_PATH}/query", {}).status == 403


def test_given_a_conditional_resource_when_read_before_approval_with_it_and_after_expiry_then_only_the_grant_opens_it(
    data_env: Any,
) -> None:
    ApiClient(PROVIDER_USER).post(f"{COND_PATH}/batches", {"rows": [_row(n) for n in range(3)]})
    spec = {"select": ["id_number", "name"], "limit": 1}

    before = ApiClient(READER_USER).post(f"{COND_PATH}/query", spec)
    assert before.status == 403 and before.body["field"] == "code"

    now = datetime.now(UTC)
    _grant(data_env.table_name, unmasked=["id_number"], granted_at=now - timedelta(hours=1), days=30)
    during = ApiClient(READER_USER).post(f"{COND_PATH}/query", spec)
    assert during.status == 200, during.body
    assert during.body["rows"] == [
        {"id_number": person_id(0), "name": "张*"}
    ]  # the grant unmasks id_number only
    assert during.body["masked"] == ["name"]

    own = ApiClient(PROVIDER_USER).post(f"{COND_PATH}/query", spec)  # the provider sees its own data unmasked
    assert own.body["rows"] == [{"id_number": person_id(0), "name": "张0"}]

    log = _log(data_env.table_name)
    assert sorted((e.department_id, e.allowed) for e in log) == sorted(
        [(PROVIDER, True), (READER, False), (READER, True)]
    )
    assert [e.unmasked_items for e in log if e.department_id == READER and e.allowed] == [["id_number"]]

    # another department whose approval has expired is refused again
    _grant(data_env.table_name, unmasked=[], granted_at=now - timedelta(days=40), days=30, requester=OTHER)
    expired = ApiClient(OTHER_USER).post(f"{COND_PATH}/query", spec)
    assert expired.status == 403 and "expired" in expired.body["message"]


QUERY_REFUSALS = [
    ({"filters": [{"column": "id_number", "value": "x"}]}, 403, "filters[0].column"),  # masked for the reader
    ({"select": ["salary"]}, 422, "select[0]"),
    ({"limit": 5000}, 422, "limit"),
    ({"group_by": ["grid_id"]}, 422, "body"),
]


def test_given_many_rows_when_paged_with_the_cursor_then_all_come_once_and_bad_cursors_and_specs_are_refused(
    data_env: Any,
) -> None:
    ApiClient(PROVIDER_USER).post(f"{PAGED_PATH}/batches", {"rows": [_row(n) for n in range(7)]})
    spec: dict[str, Any] = {"select": ["age"], "order_by": [{"column": "age", "desc": True}], "limit": 3}
    ages: list[int] = []
    cursor = None
    for _ in range(5):
        answer = ApiClient(READER_USER).post(
            f"{PAGED_PATH}/query", {**spec, "cursor": cursor} if cursor else spec
        )
        assert answer.status == 200, answer.body
        ages += [r["age"] for r in answer.body["rows"]]
        cursor = answer.body["next_cursor"]
        if cursor is None:
            break
    assert ages == [26, 25, 24, 23, 22, 21, 20]

    first = ApiClient(READER_USER).post(f"{PAGED_PATH}/query", spec).body["next_cursor"]
    other_spec = ApiClient(READER_USER).post(f"{PAGED_PATH}/query", {**spec, "limit": 2, "cursor": first})
    assert other_spec.status == 400 and other_spec.body["field"] == "cursor"
    other_caller = ApiClient(PROVIDER_USER).post(f"{PAGED_PATH}/query", {**spec, "cursor": first})
    assert other_caller.status == 400

    for bad, status, field in QUERY_REFUSALS:
        answer = ApiClient(READER_USER).post(f"{PAGED_PATH}/query", bad)
        assert (answer.status, answer.body.get("field")) == (status, field), (bad, answer.body)


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "1e999", ["nan", 1], 2**63])
def test_given_a_non_finite_or_out_of_range_number_when_filtered_on_then_422_names_the_filter(
    data_env: Any, value: Any
) -> None:
    """Given a filter value "inf"/"nan" (or beyond BIGINT), when queried, then 422 naming the filter's
    value — not a DuckDB BinderException answered as a bare 500."""
    ApiClient(PROVIDER_USER).post(f"{FILTERED_PATH}/batches", {"batch_id": "f1", "rows": [_row(1)]})
    column, op = ("income", "between") if isinstance(value, list) else ("income", "gt")
    if value == 2**63:
        column = "age"
    answer = ApiClient(READER_USER).post(
        f"{FILTERED_PATH}/query",
        {"select": ["age"], "filters": [{"column": column, "op": op, "value": value}]},
    )
    assert (answer.status, answer.body.get("field")) == (422, "filters[0].value"), answer.body
    assert answer.body["message"].startswith("filters[0].value")


def test_given_the_engine_fails_when_a_query_or_export_runs_then_502_with_a_message(
    data_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given DuckDB raising while it runs a built statement (any duckdb.Error), when a department
    queries or exports, then the API answers 502 ``query_failed`` with a message, never a bare 500."""
    import duckdb

    from smartzone.datalake import service

    ApiClient(PROVIDER_USER).post(f"{FILTERED_PATH}/batches", {"batch_id": "f1", "rows": [_row(1)]})

    def broken(*_: Any, **__: Any) -> Any:
        raise duckdb.BinderException('Referenced column "nan" not found in FROM clause!')

    monkeypatch.setattr(service, "run_duckdb", broken)
    answer = ApiClient(READER_USER).post(f"{FILTERED_PATH}/query", {"select": ["age"]})
    assert answer.status == 502 and answer.body["error"] == "query_failed", answer.body
    assert answer.body["message"] and "nan" not in answer.body["message"]

    monkeypatch.setattr(service, "duckdb_view_sql", broken)
    export = ApiClient(READER_USER).post(f"{FILTERED_PATH}/query", {"select": ["age"], "export": True})
    assert export.status == 502 and export.body["error"] == "query_failed", export.body


def test_given_a_grant_ending_in_five_minutes_when_exporting_then_the_link_expires_with_the_grant(
    data_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given an approved request that ends in 5 minutes, when the department exports, then the
    link's lifetime is the grant's remaining time (not 900 s): a link never outlives the grant."""
    from urllib.parse import parse_qs, urlparse

    from functions.api import data_access

    ApiClient(PROVIDER_USER).post(f"{EXPORTED_PATH}/batches", {"rows": [_row(n) for n in range(3)]})
    now = datetime.now(UTC).replace(microsecond=0)
    _grant(
        data_env.table_name,
        unmasked=[],
        granted_at=now - timedelta(hours=1),
        lasts=timedelta(hours=1, minutes=5),
        code=EXPORTED.code,
    )
    monkeypatch.setattr(data_access, "current_time", lambda: now)
    export = ApiClient(READER_USER).post(
        f"{EXPORTED_PATH}/query", {"select": ["grid_id", "age"], "export": True}
    )

    assert export.status == 200, export.body
    assert export.body["expires_in"] == 300
    query = parse_qs(urlparse(export.body["download_url"]).query)
    assert query.get("X-Amz-Expires", query.get("Expires")) is not None
    if "X-Amz-Expires" in query:
        assert query["X-Amz-Expires"] == ["300"]

    # the provider (no grant involved) keeps the full 15 minutes
    own = ApiClient(PROVIDER_USER).post(
        f"{EXPORTED_PATH}/query", {"select": ["grid_id", "age"], "export": True}
    )
    assert own.status == 200 and own.body["expires_in"] == 900
