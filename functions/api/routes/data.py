"""`/v1/data/{code}`: push batches into the data lake and query a resource's data.

- ``POST /v1/data/{code}/batches`` ``{"batch_id"?, "rows": [{column or 信息项名称: value}, …]}``:
  the providing department only (403 for anyone else). Validated row by row against the items;
  the answer is the batch report (rows loaded, rejected rows with their reasons, never values).
  A batch id given twice replaces the first batch's rows (safe retries).
- ``GET /v1/data/{code}/batches/{batch_id}``: a batch's report (pushed or dropped in S3), provider only.
- ``POST /v1/data/{code}/query`` (a :class:`QuerySpec`): any department the sharing rules let read
  the resource (``data_access.authorize_read``: 403 with the reason otherwise, and logged);
  personal items masked per rule unless the grant unmasks them; every answer logged.
  ``limit`` rows per page; ``next_cursor`` continues the same query. ``"export": true`` answers
  with ``download_url`` (a CSV of every matching row, presigned for 15 minutes, or until the
  caller's grant ends when that is sooner) instead of rows, and is refused (403) when a result
  column would be masked for the caller. A failure of the query engine answers 502 (504 when it
  took too long), never an unhandled error.
"""

from __future__ import annotations

import re
import tempfile
import uuid
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.event_handler.openapi.params import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field

from smartzone.datalake.ingest import IngestError, IngestReport, rows_to_ndjson
from smartzone.datalake.layout import FileFormat, report_key
from smartzone.datalake.query import QueryRefused, QuerySpec
from smartzone.datalake.service import DataLake, ingest_batch, refused_report, run_export, run_query
from smartzone.domain.errors import ServiceError
from smartzone.repositories.cursor import decode_cursor, encode_cursor
from smartzone.repositories.datalake import QueryFailed, QueryTimeout
from smartzone.settings import get_settings

from .. import data_access
from ..context import caller_of, cursor_secret
from ..data_access import authorize_read, department_of, log_access, resource_or_404
from ..errors import ForbiddenError, NotFoundError, Unprocessable

router = Router()

MAX_PUSH_ROWS = 5000
CODE_PATH = r"^[0-9]{9}[-/][0-9]{6}$"
_BATCH = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class QueryUnavailable(ServiceError):
    status = 504
    code = "query_timeout"


class QueryEngineFailed(ServiceError):
    status = 502
    code = "query_failed"


@cache
def lake() -> DataLake:
    return DataLake.from_settings(get_settings())


class BatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    batch_id: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="the pusher's id for the batch (retries replace it)",
    )
    rows: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_PUSH_ROWS)


class QueryOut(BaseModel):
    columns: list[str]
    rows: list[dict[str, Any]]
    masked: list[str] = Field(description="result columns shown masked (personal data without a grant)")
    next_cursor: str | None = None
    engine: str
    download_url: str | None = Field(None, description="export: a short-lived link to the CSV file")
    expires_in: int | None = Field(None, description="export: seconds the link stays valid")


def _provider_resource(code: str) -> Any:
    caller = caller_of(router)
    resource = resource_or_404(code)
    if department_of(router, caller) != resource.department_id:
        raise ForbiddenError("only the providing department loads data into its resource", field="code")
    return resource


@router.post("/<code>/batches")
def push_batch(
    code: Annotated[str, PathParam(pattern=CODE_PATH)], body: Annotated[BatchIn, Body()]
) -> IngestReport:
    resource = _provider_resource(code)
    batch_id = "p" + (body.batch_id or uuid.uuid4().hex)
    data_lake = lake()
    data_lake.cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=data_lake.cache_dir, prefix="push-") as tmp:
        source = rows_to_ndjson(body.rows, Path(tmp) / "batch.ndjson")
        try:
            return ingest_batch(data_lake, source, FileFormat.JSON, resource, batch_id=batch_id)
        except IngestError as exc:
            refused_report(data_lake, resource, FileFormat.JSON, batch_id, str(exc))
            raise Unprocessable(str(exc), field="rows") from exc


@router.get("/<code>/batches/<batch_id>")
def get_batch(
    code: Annotated[str, PathParam(pattern=CODE_PATH)],
    batch_id: Annotated[str, PathParam(pattern=r"^[A-Za-z0-9_-]{1,80}$")],
) -> IngestReport:
    resource = _provider_resource(code)
    found = lake().bucket.get_json(report_key(resource.code, batch_id))
    if found is None:
        raise NotFoundError("no such batch", field="batch_id")
    return IngestReport.model_validate(found)


def _detail(spec: QuerySpec) -> str:
    """What was asked, without values (they may be personal data)."""
    parts = [f"select={','.join(spec.select or ['*'])}"]
    if spec.filters:
        parts.append("filters=" + ",".join(f"{f.column}:{f.op}" for f in spec.filters))
    if spec.aggregates:
        parts.append("aggregates=" + ",".join(f"{a.fn}({a.column or '*'})" for a in spec.aggregates))
    if spec.group_by:
        parts.append("group_by=" + ",".join(spec.group_by))
    return "; ".join(parts)[:500]


def _export(access: Any, body: QuerySpec) -> QueryOut:
    grant = access.decision.grant
    try:
        export = run_export(
            lake(),
            access.resource,
            body,
            access.unmasked_items,
            valid_until=grant.expires_at if grant is not None else None,
            clock=lambda: data_access.current_time(),
        )
    except QueryRefused as exc:
        raise _refusal(exc) from exc
    except QueryTimeout as exc:
        raise QueryUnavailable("the export took too long; narrow the filters", field=None) from exc
    except QueryFailed as exc:
        raise QueryEngineFailed("the query engine could not run the export", field=None) from exc
    log_access(access, action="export", detail=_detail(body))
    return QueryOut(
        columns=[],
        rows=[],
        masked=[],
        engine=export.engine,
        download_url=export.url,
        expires_in=export.expires_in,
    )


def _refusal(exc: QueryRefused) -> ServiceError:
    return (
        ForbiddenError(str(exc), field=exc.field)
        if exc.status == 403
        else Unprocessable(str(exc), field=exc.field)
    )


@router.post("/<code>/query")
def query(code: Annotated[str, PathParam(pattern=CODE_PATH)], body: Annotated[QuerySpec, Body()]) -> QueryOut:
    action = "export" if body.export else "query"
    access = authorize_read(router, code, action=action, detail=_detail(body))
    resource = access.resource
    if body.export:
        return _export(access, body)
    scope = body.scope(resource.code, access.department_id)
    offset = 0
    if body.cursor:
        offset = int(decode_cursor(body.cursor, scope, cursor_secret()).get("o", 0))
    started = datetime.now(UTC)
    try:
        page = run_query(lake(), resource, body, access.unmasked_items, offset)
    except QueryRefused as exc:
        raise _refusal(exc) from exc
    except QueryTimeout as exc:
        raise QueryUnavailable("the query took too long; narrow the filters", field=None) from exc
    except QueryFailed as exc:
        raise QueryEngineFailed("the query engine could not run the query", field=None) from exc
    elapsed = (datetime.now(UTC) - started).total_seconds()
    log_access(access, action="query", rows=len(page.rows), detail=f"{_detail(body)}; {elapsed:.2f}s")
    next_cursor = (
        encode_cursor({"o": page.next_offset}, scope, cursor_secret())
        if page.next_offset is not None
        else None
    )
    return QueryOut(
        columns=page.columns, rows=page.rows, masked=page.masked, next_cursor=next_cursor, engine=page.engine
    )
