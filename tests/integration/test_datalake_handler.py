"""The data-lake function against moto: dropped files, the stale check, Glue tables, Athena queries."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from smartzone.datalake.query import QueryRefused, QuerySpec
from smartzone.datalake.service import DataLake, file_batch_id, run_export, run_query
from tests.support.datalake import csv_text, good_row, person_id, resource
from tests.support.telemetry import FakeContext

BUCKET = "smartzone-datalake-test"
DATABASE = "smartzone_datalake"
RES = resource()
REFUSED, STALE, FRESH = "101001000/000003", "101001000/000002", "101001000/000004"
EVENT = json.loads((Path(__file__).parents[2] / "events" / "datalake_object_created.json").read_text())


@pytest.fixture(scope="module")
def lake_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One emulated account for the module (each test works on resources of its own)."""
    from moto import mock_aws

    from functions.datalake import handler
    from infra.local.resources import create_local_resources
    from smartzone.repositories.catalogue import CatalogueRepository
    from smartzone.repositories.clients import client, reset_clients
    from smartzone.settings import get_settings

    with mock_aws(), pytest.MonkeyPatch.context() as env:
        reset_clients()
        get_settings.cache_clear()
        resources = create_local_resources()
        for name, value in resources.environment().items():
            env.setenv(name, value)
        env.setenv("DATALAKE_BUCKET", BUCKET)
        env.setenv("GLUE_DATABASE", DATABASE)
        env.setenv("DATALAKE_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        get_settings.cache_clear()
        handler.lake.cache_clear()
        client("s3").create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "cn-north-1"}
        )
        client("glue").create_database(DatabaseInput={"Name": DATABASE})
        catalogue = CatalogueRepository(resources.table_name)
        for code in (RES.code, REFUSED, STALE, FRESH):
            catalogue.create(resource(code=code))
        yield catalogue
        handler.lake.cache_clear()
    reset_clients()
    get_settings.cache_clear()


def _drop(key: str, body: str) -> dict[str, Any]:
    from smartzone.repositories.clients import client

    put = client("s3").put_object(Bucket=BUCKET, Key=key, Body=body.encode())
    event = json.loads(json.dumps(EVENT))
    event["detail"]["bucket"]["name"] = BUCKET
    event["detail"]["object"].update({"key": key, "etag": put["ETag"].strip('"')})
    return event


def _keys(prefix: str) -> list[str]:
    from smartzone.repositories.clients import client

    return [o["Key"] for o in client("s3").list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])]


def test_given_a_dropped_csv_when_its_event_arrives_then_it_is_stored_partitioned_and_the_load_recorded(
    lake_env: Any, tmp_path: Path
) -> None:
    from functions.datalake import handler
    from smartzone.repositories.clients import client
    from smartzone.repositories.datalake import DataLakeBucket

    key = "incoming/101001000-000001/三月.csv"
    event = _drop(key, csv_text([good_row(1), ["bad", "李四"], good_row(3)]))
    before = datetime.now(UTC)

    outcome = handler.handler(event, FakeContext())

    assert outcome["status"] == "ingested" and (outcome["rows_loaded"], outcome["rows_rejected"]) == (2, 1)
    batch = file_batch_id(key, event["detail"]["object"]["etag"])
    (parquet,) = _keys("datalake/resource=101001000-000001/")
    assert parquet.startswith("datalake/resource=101001000-000001/dt=") and parquet.endswith(
        f"/part-{batch}.parquet"
    )
    assert len(_keys("rejects/101001000-000001/")) == 1
    assert _keys("incoming/101001000-000001/") == []
    assert _keys("processed/101001000-000001/") == ["processed/101001000-000001/三月.csv"]
    loaded = lake_env.get(RES.code).last_loaded_at
    assert loaded is not None and loaded >= before.replace(microsecond=0) - timedelta(seconds=1)

    # Glue knows the table: items + _batch/_row, partition dt by projection
    table = client("glue").get_table(DatabaseName=DATABASE, Name="r_101001000_000001")["Table"]
    assert [c["Name"] for c in table["StorageDescriptor"]["Columns"]][-2:] == ["_batch", "_row"]
    assert table["Parameters"]["projection.dt.type"] == "date"

    # the same event again (at-least-once delivery): the file is gone, nothing is loaded twice
    assert handler.handler(event, FakeContext())["status"] == "gone"
    assert len(_keys("datalake/resource=101001000-000001/")) == 1

    # the embedded engine mirrors the files locally, fetching only new or changed objects
    bucket = DataLakeBucket(BUCKET)
    (mirrored,) = bucket.mirror_resource(RES.code, tmp_path / "mirror")
    assert mirrored == tmp_path / "mirror" / parquet
    stamp = mirrored.stat().st_mtime_ns
    assert bucket.mirror_resource(RES.code, tmp_path / "mirror") == [mirrored]
    assert mirrored.stat().st_mtime_ns == stamp


def test_given_a_file_without_required_columns_when_dropped_then_it_is_refused_with_a_report(
    lake_env: Any,
) -> None:
    from functions.datalake import handler
    from smartzone.repositories.datalake import DataLakeBucket

    outcome = handler.handler(_drop("incoming/101001000-000003/a.csv", "age\n3\n"), FakeContext())

    assert outcome["status"] == "refused" and "id_number" in outcome["error"]
    report = DataLakeBucket(BUCKET).get_json(f"reports/101001000-000003/{outcome['batch_id']}.json")
    assert report is not None
    assert report["error"] == outcome["error"] and _keys("datalake/resource=101001000-000003/") == []
    assert lake_env.get(REFUSED).last_loaded_at is None


def test_given_resources_with_old_loads_when_the_schedule_runs_then_the_stale_ones_are_listed(
    lake_env: Any,
) -> None:
    from functions.datalake import handler
    from smartzone.repositories.datalake import DataLakeBucket

    now = datetime.now(UTC)
    lake_env.record_load(FRESH, now - timedelta(hours=2))  # daily: fresh
    lake_env.record_load(STALE, now - timedelta(days=3))  # daily: stale
    outcome = handler.handler(
        {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}, FakeContext()
    )

    listing = DataLakeBucket(BUCKET).get_json(f"reports/stale/{now.date().isoformat()}.json")
    assert listing is not None
    codes = [s["code"] for s in listing["stale"]]
    assert STALE in codes and FRESH not in codes  # never-loaded resources are stale too
    assert outcome == {"status": "checked", "stale": len(codes)}


def test_given_the_athena_engine_when_a_query_runs_then_results_are_read_converted_and_masked(
    lake_env: Any,
) -> None:
    """moto's Athena answers with the rows given to it; the statement is the translated one."""
    import requests

    from smartzone.repositories.clients import client
    from smartzone.settings import Settings

    client("athena").create_work_group(
        Name="smartzone",
        Configuration={"ResultConfiguration": {"OutputLocation": "s3://athena-results/athena/"}},
    )
    header = {
        "Data": [{"VarCharValue": "id_number"}, {"VarCharValue": "age"}, {"VarCharValue": "updated_at"}]
    }
    rows = [
        {
            "Data": [
                {"VarCharValue": person_id(n)},
                {"VarCharValue": str(20 + n)},
                {"VarCharValue": "2024-05-01 02:00:00.000"},
            ]
        }
        for n in range(3)
    ]
    column_info = [
        {"Name": n, "Type": t, "CatalogName": "c", "SchemaName": "s", "TableName": "t", "Label": n}
        for n, t in (("id_number", "varchar"), ("age", "bigint"), ("updated_at", "timestamp"))
    ]
    requests.post(
        "http://motoapi.amazonaws.com/moto-api/static/athena/query-results",
        json={
            "account_id": "123456789012",
            "region": "cn-north-1",
            "results": [{"rows": [header, *rows], "column_info": column_info}],
        },
        timeout=5,
    )
    settings = Settings(
        query_engine="athena",
        athena_workgroup="smartzone",
        athena_output="s3://athena-results/athena/",
        glue_database=DATABASE,
        datalake_bucket=BUCKET,
    )

    page = run_query(
        DataLake.from_settings(settings),
        RES,
        QuerySpec(select=["id_number", "age", "updated_at"], limit=2),
        frozenset(),
        0,
    )

    assert (
        page.engine == "athena"
        and page.sql is not None
        and "OFFSET" not in page.sql
        and "LIMIT 3" in page.sql
    )
    assert [r["age"] for r in page.rows] == [20, 21] and page.next_offset == 2
    assert page.rows[0]["id_number"] == person_id(0)[:6] + "********" + person_id(0)[-4:]
    assert page.rows[0]["updated_at"] == "2024-05-01T02:00:00Z"
    assert len(client("athena").list_query_executions(WorkGroup="smartzone")["QueryExecutionIds"]) == 1

    # an export is Athena's own result file behind a presigned link (masked columns refused)
    lake = DataLake.from_settings(settings)
    export = run_export(lake, RES, QuerySpec(select=["grid_id", "age"], export=True), frozenset())
    assert export.engine == "athena" and export.url.startswith("https://athena-results.s3")
    assert "/athena/" in export.url and "Signature" in export.url
    with pytest.raises(QueryRefused):
        run_export(lake, RES, QuerySpec(select=["id_number"], export=True), frozenset())

    # a grant ending in two minutes: the presigned result link ends with it, not after 900 s
    now = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)
    short = run_export(
        lake,
        RES,
        QuerySpec(select=["grid_id", "age"], export=True),
        frozenset(),
        valid_until=now + timedelta(minutes=2),
        clock=lambda: now,
    )
    assert short.expires_in == 120 and "X-Amz-Expires=120" in short.url
