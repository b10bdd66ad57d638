"""The data lake's AWS side: objects in the data-lake bucket, Glue tables, Athena queries.

- :class:`DataLakeBucket`: upload / download / move objects (layout in
  :mod:`smartzone.datalake.layout`); a resource's Parquet files are mirrored into a local folder
  (by ETag, so unchanged files are not fetched again) for the embedded engine.
- :class:`GlueTables`: one Glue table per resource (created or updated by ingest from its
  information items), Parquet under ``datalake/resource=<slug>/``, partition ``dt`` found by
  partition projection (no crawler, no ``MSCK REPAIR``).
- :class:`AthenaQueries`: start a query in the workgroup, poll it with a deadline (stopped when
  the deadline passes), read the first page of results.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from smartzone.datalake.ingest import SQL_TYPES, SYSTEM_COLUMNS
from smartzone.datalake.layout import resource_prefix, table_name
from smartzone.domain.catalogue import ItemType, Resource
from smartzone.observability import logger
from smartzone.repositories.clients import client

GLUE_TYPES: dict[ItemType, str] = {
    ItemType.STRING: "string",
    ItemType.INTEGER: "bigint",
    ItemType.DECIMAL: "double",
    ItemType.DATE: "date",
    ItemType.DATETIME: "timestamp",
    ItemType.BOOLEAN: "boolean",
}
assert set(GLUE_TYPES) == set(SQL_TYPES)
PROJECTION_START = "2020-01-01"
"""First load date partition projection considers (``dt`` values before it are not read)."""


class DataLakeBucket:
    def __init__(self, bucket: str) -> None:
        if not bucket:
            raise ValueError("the data-lake bucket is not configured (DATALAKE_BUCKET)")
        self.bucket = bucket

    def upload(self, key: str, path: Path, content_type: str = "application/octet-stream") -> None:
        client("s3").upload_file(str(path), self.bucket, key, ExtraArgs={"ContentType": content_type})

    def put_json(self, key: str, body: Any) -> None:
        client("s3").put_object(
            Bucket=self.bucket,
            Key=key,
            Body=json.dumps(body, ensure_ascii=False, default=str).encode(),
            ContentType="application/json",
        )

    def get_json(self, key: str) -> Any | None:
        try:
            found = client("s3").get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise
        return json.loads(found["Body"].read())

    def download(self, key: str, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        client("s3").download_file(self.bucket, key, str(path))

    def move(self, key: str, target: str) -> None:
        s3 = client("s3")
        s3.copy_object(Bucket=self.bucket, Key=target, CopySource={"Bucket": self.bucket, "Key": key})
        s3.delete_object(Bucket=self.bucket, Key=key)

    def keys(self, prefix: str) -> list[tuple[str, str]]:
        """(key, ETag) of every object under ``prefix``."""
        found: list[tuple[str, str]] = []
        for page in client("s3").get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            found += [(o["Key"], o.get("ETag", "")) for o in page.get("Contents", [])]
        return found

    def mirror_resource(self, code: str, root: Path) -> list[Path]:
        """The resource's Parquet files as local files under ``root`` (same relative keys); only
        new or changed objects are downloaded, and local files no longer in S3 are removed."""
        prefix = resource_prefix(code)
        wanted: list[Path] = []
        for key, etag in self.keys(prefix):
            if not key.endswith(".parquet"):
                continue
            path = root / key
            marker = path.with_name(path.name + ".etag")
            if not (path.is_file() and marker.is_file() and marker.read_text() == etag):
                self.download(key, path)
                marker.write_text(etag)
            wanted.append(path)
        local = root / prefix
        if local.is_dir():
            keep = set(wanted)
            for stale in local.rglob("*.parquet"):
                if stale not in keep:
                    stale.unlink()
        return sorted(wanted)

    def presign(self, key: str, expires_s: int = 900) -> str:
        return str(
            client("s3").generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires_s
            )
        )


def presign_s3_url(url: str, expires_s: int = 900) -> str:
    """A short-lived GET link for ``s3://bucket/key`` (e.g. an Athena result file)."""
    if not url.startswith("s3://"):
        raise ValueError(f"not an S3 URL: {url!r}")
    bucket, _, key = url.removeprefix("s3://").partition("/")
    return str(
        client("s3").generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires_s
        )
    )


def glue_table_input(resource: Resource, bucket: str) -> dict[str, Any]:
    """The Glue ``TableInput`` of a resource: its items (+ ``_batch``, ``_row``) as Parquet columns
    under its prefix, partition ``dt`` by projection (``yyyy-MM-dd`` dates, daily)."""
    columns = [
        {"Name": i.column, "Type": GLUE_TYPES[i.type], "Comment": i.name[:255]} for i in resource.items
    ]
    columns += [{"Name": "_batch", "Type": "string"}, {"Name": "_row", "Type": "bigint"}]
    assert [c["Name"] for c in columns[-2:]] == list(SYSTEM_COLUMNS)
    location = f"s3://{bucket}/{resource_prefix(resource.code)}"
    return {
        "Name": table_name(resource.code),
        "Description": f"{resource.code} {resource.name}"[:2048],
        "TableType": "EXTERNAL_TABLE",
        "PartitionKeys": [{"Name": "dt", "Type": "date"}],
        "Parameters": {
            "classification": "parquet",
            "EXTERNAL": "TRUE",
            "projection.enabled": "true",
            "projection.dt.type": "date",
            "projection.dt.format": "yyyy-MM-dd",
            "projection.dt.range": f"{PROJECTION_START},NOW",
            "projection.dt.interval": "1",
            "projection.dt.interval.unit": "DAYS",
            "storage.location.template": location + "dt=${dt}/",
        },
        "StorageDescriptor": {
            "Columns": columns,
            "Location": location,
            "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
            "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
            "SerdeInfo": {
                "SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
                "Parameters": {"serialization.format": "1"},
            },
        },
    }


class GlueTables:
    def __init__(self, database: str) -> None:
        self.database = database

    def ensure(self, resource: Resource, bucket: str) -> bool:
        """Create the resource's table, or update it when its columns changed. True when written;
        False when nothing changed or the database does not exist (locally: no Glue)."""
        glue = client("glue")
        wanted = glue_table_input(resource, bucket)
        try:
            current = glue.get_table(DatabaseName=self.database, Name=wanted["Name"])["Table"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "EntityNotFoundException":
                raise
            try:
                glue.create_table(DatabaseName=self.database, TableInput=wanted)
            except ClientError as missing:
                if missing.response.get("Error", {}).get("Code") != "EntityNotFoundException":
                    raise
                # No such database: the local platform has no Glue (queries run on DuckDB there).
                logger.warning("no Glue database; table not created", extra={"database": self.database})
                return False
            return True
        if current.get("StorageDescriptor", {}).get("Columns") == wanted["StorageDescriptor"]["Columns"]:
            return False
        glue.update_table(DatabaseName=self.database, TableInput=wanted)
        return True


class QueryTimeout(TimeoutError):
    """The Athena query did not finish before its deadline (it was stopped)."""


class QueryFailed(RuntimeError):
    """Athena reports the query failed or was cancelled, or DuckDB raised while running it."""


@dataclass(frozen=True)
class AthenaResult:
    columns: list[str]
    rows: list[list[str | None]]
    """Values as Athena returns them (text); the caller converts them."""
    execution_id: str
    output_location: str | None
    bytes_scanned: int


class AthenaQueries:
    def __init__(
        self,
        workgroup: str,
        database: str,
        *,
        output: str = "",
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.workgroup = workgroup
        self.database = database
        self.output = output
        """The workgroup's result location (``s3://…/``), for when an execution does not report it."""
        self._sleep = sleep
        self._clock = clock

    def run(self, sql: str, timeout_s: float, max_rows: int) -> AthenaResult:
        """Run ``sql`` and read at most ``max_rows`` rows (0: none; the result stays in S3)."""
        athena = client("athena")
        started = athena.start_query_execution(
            QueryString=sql,
            WorkGroup=self.workgroup,
            QueryExecutionContext={"Database": self.database},
        )
        execution_id = started["QueryExecutionId"]
        deadline = self._clock() + timeout_s
        delay = 0.2
        while True:
            execution = athena.get_query_execution(QueryExecutionId=execution_id)["QueryExecution"]
            state = execution["Status"]["State"]
            if state == "SUCCEEDED":
                break
            if state in ("FAILED", "CANCELLED"):
                reason = execution["Status"].get("StateChangeReason", state)
                raise QueryFailed(f"Athena query {execution_id} {state.lower()}: {reason}")
            if self._clock() >= deadline:
                athena.stop_query_execution(QueryExecutionId=execution_id)
                raise QueryTimeout(f"Athena query {execution_id} did not finish within {timeout_s:.0f} s")
            self._sleep(delay)
            delay = min(delay * 2, 2.0)
        columns: list[str] = []
        rows: list[list[str | None]] = []
        token: str | None = None
        first = True
        while max_rows > 0 and len(rows) < max_rows:
            args: dict[str, Any] = {
                "QueryExecutionId": execution_id,
                "MaxResults": min(1000, max_rows - len(rows) + 1),
            }
            if token:
                args["NextToken"] = token
            page = athena.get_query_results(**args)
            result_set = page["ResultSet"]
            if not columns:
                columns = [c["Name"] for c in result_set.get("ResultSetMetadata", {}).get("ColumnInfo", [])]
            data = [[d.get("VarCharValue") for d in r.get("Data", [])] for r in result_set.get("Rows", [])]
            if first and data and data[0] == columns:
                data = data[1:]  # the header row of a SELECT's first page
            first = False
            rows += data
            token = page.get("NextToken")
            if not token:
                break
        statistics = execution.get("Statistics", {})
        return AthenaResult(
            columns=columns,
            rows=rows[:max_rows],
            execution_id=execution_id,
            output_location=execution.get("ResultConfiguration", {}).get("OutputLocation")
            or (f"{self.output.rstrip('/')}/{execution_id}.csv" if self.output else None),
            bytes_scanned=int(statistics.get("DataScannedInBytes", 0)),
        )
