"""Queries over a resource's Parquet files: one spec → ONE SQL text → DuckDB here, Athena in the cloud.

A :class:`QuerySpec` (projection, filters eq / ne / in / ranges / null, order, page size and
cursor, or aggregates count / sum / avg / min / max grouped by columns) is checked against the
resource's information items and built into a single SQL text in DuckDB's dialect with sqlglot's
expression builder (values are literals, never pasted text). :func:`to_athena` translates that
text to Athena's dialect (Trino) with sqlglot; the same text runs on DuckDB over the same files.

Personal data: a column masked for the caller (its rule applies and no grant unmasks it) is
masked in the results (:func:`smartzone.domain.catalogue.mask_row`), and may not be filtered on,
grouped by, ordered by or aggregated other than counted — a filter on a masked ID number would
tell whether that person is in the data.

Paging: ``LIMIT page + 1 OFFSET n`` with a total order (the requested order, then the load date,
batch and row), so that pages never overlap or skip; the cursor (``n``) is HMAC-signed for this
query and caller (:mod:`smartzone.repositories.cursor`).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from smartzone.datalake.ingest import SQL_TYPES
from smartzone.datalake.layout import table_name
from smartzone.domain.catalogue import RESERVED_COLUMNS, InformationItem, ItemType, Resource, mask_row
from smartzone.domain.idnumbers import parse as parse_id
from smartzone.domain.timeutil import SHANGHAI

if TYPE_CHECKING:
    import duckdb
    from sqlglot import exp

MAX_PAGE = 1000
MAX_EXPORT_ROWS = 1_000_000
PARTITION_COLUMN = "dt"
"""The load date (Hive partition ``dt=YYYY-MM-DD``): filterable and orderable like an item."""
ORDER_TIEBREAK = ("dt", "_batch", "_row")
assert {PARTITION_COLUMN, *ORDER_TIEBREAK} <= set(RESERVED_COLUMNS)  # no item may shadow them
BIGINT_MIN, BIGINT_MAX = -(2**63), 2**63 - 1
"""The range of an integer item (stored as BIGINT): a filter value outside it is refused."""


class QueryRefused(ValueError):
    """The spec cannot be run for this caller: ``field`` names the part at fault."""

    def __init__(self, message: str, field: str, status: int = 422) -> None:
        super().__init__(message)
        self.field = field
        self.status = status


class Op(StrEnum):
    EQ = "eq"
    NE = "ne"
    IN = "in"
    GT = "gt"
    GTE = "gte"
    LT = "lt"
    LTE = "lte"
    BETWEEN = "between"
    IS_NULL = "is_null"
    NOT_NULL = "not_null"


class Filter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    column: str = Field(max_length=64)
    op: Op = Op.EQ
    value: Any = None
    """A scalar; a list for ``in`` (1–100 values); ``[low, high]`` for ``between`` (inclusive)."""


class AggregateFn(StrEnum):
    COUNT = "count"
    SUM = "sum"
    AVG = "avg"
    MIN = "min"
    MAX = "max"


class Aggregate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fn: AggregateFn
    column: str | None = Field(None, max_length=64, description="None only for count (all rows)")
    alias: str | None = Field(None, pattern=r"^[a-z][a-z0-9_]{0,62}$")

    @property
    def name(self) -> str:
        return self.alias or (f"{self.fn}_{self.column}" if self.column else str(self.fn))


class OrderBy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    column: str = Field(max_length=64)
    desc: bool = False


class QuerySpec(BaseModel):
    """What a department asks of one resource (``POST /v1/data/{code}/query``)."""

    model_config = ConfigDict(extra="forbid")

    select: list[str] | None = Field(None, max_length=200, description="columns; all items when omitted")
    filters: list[Filter] = Field(default_factory=list, max_length=20)
    group_by: list[str] = Field(default_factory=list, max_length=10)
    aggregates: list[Aggregate] = Field(default_factory=list, max_length=20)
    order_by: list[OrderBy] = Field(default_factory=list, max_length=10)
    limit: int = Field(100, ge=1, le=MAX_PAGE)
    cursor: str | None = Field(None, max_length=2048)
    export: bool = Field(
        False,
        description="all matching rows (up to MAX_EXPORT_ROWS) as a CSV file behind a short-lived link "
        "instead of a page; only for results without masked columns",
    )

    @model_validator(mode="after")
    def _shape(self) -> QuerySpec:
        if self.group_by and not self.aggregates:
            raise ValueError("group_by needs at least one aggregate")
        if self.aggregates and self.select:
            raise ValueError("select and aggregates do not go together: use group_by for the columns")
        if self.export and self.cursor:
            raise ValueError("an export has no pages: drop the cursor")
        return self

    def scope(self, code: str, who: str) -> str:
        """What a cursor is bound to: this resource, this caller and this spec (cursor aside)."""
        body = self.model_dump(mode="json", exclude={"cursor"})
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:32]
        return f"datalake|{code}|{who}|{digest}"


@dataclass(frozen=True)
class BuiltQuery:
    sql: str
    """DuckDB dialect: the one text of this query."""
    columns: list[str]
    """Result columns in order."""
    offset: int
    page: int
    aggregates: tuple[Aggregate, ...] = ()


# -- checking and building ------------------------------------------------------------------------------
def _columns(resource: Resource) -> dict[str, ItemType]:
    found = {i.column: i.type for i in resource.items}
    found[PARTITION_COLUMN] = ItemType.DATE
    return found


def _masked(resource: Resource, unmasked: Iterable[str]) -> set[str]:
    keep = set(unmasked)
    return {i.column for i in resource.items if i.rule.value != "none" and i.column not in keep}


_ADAPTERS: dict[ItemType, TypeAdapter[Any]] = {
    ItemType.STRING: TypeAdapter(str),
    ItemType.INTEGER: TypeAdapter(int),
    ItemType.DECIMAL: TypeAdapter(float),
    ItemType.DATE: TypeAdapter(date),
    ItemType.DATETIME: TypeAdapter(datetime),
    ItemType.BOOLEAN: TypeAdapter(bool),
}


def _literal(item: InformationItem | None, kind: ItemType, value: Any, field: str) -> exp.Expression:
    from sqlglot import exp

    if value is None:
        raise QueryRefused(f"{field}: a value is required", field)
    try:
        typed = _ADAPTERS[kind].validate_python(value, strict=False)
    except ValidationError as exc:
        raise QueryRefused(f"{field}: not a valid {kind} value", field) from exc
    if item is not None and item.personal_class.value == "id_number" and isinstance(typed, str):
        number = parse_id(typed)
        typed = number.normalised if number.ok and number.normalised else typed
    if isinstance(typed, bool):
        return exp.Boolean(this=typed)
    if isinstance(typed, float) and not math.isfinite(typed):
        # "inf", "nan", 1e999 …: sqlglot would write a bare word (inf, nan) that DuckDB reads as a
        # column name, and no stored value compares usefully with them.
        raise QueryRefused(f"{field}: {kind} values must be finite numbers (not inf or nan)", field)
    if isinstance(typed, int) and not BIGINT_MIN <= typed <= BIGINT_MAX:
        raise QueryRefused(f"{field}: {kind} values must lie between {BIGINT_MIN} and {BIGINT_MAX}", field)
    if isinstance(typed, int | float):
        return exp.Literal.number(typed)
    if isinstance(typed, str):
        try:
            typed.encode("utf-8")
        except UnicodeEncodeError as exc:  # a lone surrogate ("\ud800" in JSON) is no text
            raise QueryRefused(f"{field}: not valid text (UTF-8)", field) from exc
    if isinstance(typed, datetime):
        if typed.tzinfo is None:  # DESIGN.md: a time without an offset is Asia/Shanghai
            typed = typed.replace(tzinfo=SHANGHAI)
        try:
            typed = typed.astimezone(UTC).replace(tzinfo=None)  # stored as UTC TIMESTAMP
        except OverflowError as exc:  # 0001-01-01T00:00+08:00 is before year 1 in UTC
            raise QueryRefused(f"{field}: {kind} value out of range", field) from exc
        return exp.cast(exp.Literal.string(typed.isoformat(sep=" ")), exp.DataType.Type.TIMESTAMP)
    if isinstance(typed, date):
        return exp.cast(exp.Literal.string(typed.isoformat()), exp.DataType.Type.DATE)
    return exp.Literal.string(str(typed))


def _condition(resource: Resource, index: int, flt: Filter) -> exp.Expression:
    from sqlglot import exp

    field = f"filters[{index}]"
    kinds = _columns(resource)
    kind = kinds[flt.column]
    item = resource.item(flt.column)
    col = exp.column(flt.column, quoted=True)
    if flt.op is Op.IS_NULL:
        return exp.Is(this=col, expression=exp.Null())
    if flt.op is Op.NOT_NULL:
        return exp.Not(this=exp.Is(this=col, expression=exp.Null()))
    if flt.op is Op.IN:
        if not isinstance(flt.value, list) or not 1 <= len(flt.value) <= 100:
            raise QueryRefused(f"{field}.value: 'in' takes a list of 1 to 100 values", f"{field}.value")
        return col.isin(*[_literal(item, kind, v, f"{field}.value") for v in flt.value])
    if flt.op is Op.BETWEEN:
        if not isinstance(flt.value, list) or len(flt.value) != 2:
            raise QueryRefused(f"{field}.value: 'between' takes [low, high]", f"{field}.value")
        low, high = (_literal(item, kind, v, f"{field}.value") for v in flt.value)
        return exp.Between(this=col, low=low, high=high)
    if isinstance(flt.value, list | dict):
        raise QueryRefused(f"{field}.value: '{flt.op}' takes one value", f"{field}.value")
    value = _literal(item, kind, flt.value, f"{field}.value")
    builders: dict[Op, type[exp.Expression]] = {
        Op.EQ: exp.EQ,
        Op.NE: exp.NEQ,
        Op.GT: exp.GT,
        Op.GTE: exp.GTE,
        Op.LT: exp.LT,
        Op.LTE: exp.LTE,
    }
    return builders[flt.op](this=col, expression=value)


def check_spec(resource: Resource, spec: QuerySpec, unmasked: Iterable[str]) -> None:
    """Every column known; nothing masked used to select rows, group, order or aggregate."""
    kinds = _columns(resource)
    masked = _masked(resource, unmasked)

    def known(column: str, field: str) -> None:
        if column not in kinds:
            raise QueryRefused(f"{field}: {column!r} is not an item of {resource.code}", field)

    def not_masked(column: str, field: str, what: str) -> None:
        if column in masked:
            raise QueryRefused(
                f"{field}: {column!r} is personal data masked for you; it cannot be {what}", field, 403
            )

    for i, column in enumerate(spec.select or []):
        known(column, f"select[{i}]")
    for i, flt in enumerate(spec.filters):
        known(flt.column, f"filters[{i}].column")
        not_masked(flt.column, f"filters[{i}].column", "filtered on")
    for i, column in enumerate(spec.group_by):
        known(column, f"group_by[{i}]")
        not_masked(column, f"group_by[{i}]", "grouped by")
    for i, agg in enumerate(spec.aggregates):
        field = f"aggregates[{i}].column"
        if agg.column is None:
            if agg.fn is not AggregateFn.COUNT:
                raise QueryRefused(f"{field}: {agg.fn} needs a column", field)
            continue
        known(agg.column, field)
        if agg.fn in (AggregateFn.SUM, AggregateFn.AVG) and kinds[agg.column] not in (
            ItemType.INTEGER,
            ItemType.DECIMAL,
        ):
            raise QueryRefused(f"{field}: {agg.fn} needs a numeric column", field)
        if agg.fn is not AggregateFn.COUNT:
            not_masked(agg.column, field, "aggregated")
    names = [a.name for a in spec.aggregates]
    if len(set(names)) != len(names) or set(names) & set(spec.group_by):
        raise QueryRefused("aggregates: result names must be unique (set alias)", "aggregates")
    allowed_order = set(spec.group_by) | set(names) if spec.aggregates else set(kinds)
    for i, order in enumerate(spec.order_by):
        field = f"order_by[{i}].column"
        if order.column not in allowed_order:
            raise QueryRefused(f"{field}: cannot order by {order.column!r} in this query", field)
        not_masked(order.column, field, "ordered by")


def build_query(resource: Resource, spec: QuerySpec, unmasked: Iterable[str], offset: int = 0) -> BuiltQuery:
    """The spec as one DuckDB SQL text (after :func:`check_spec`)."""
    from sqlglot import exp  # lazy: sqlglot costs ~0.1 s of every API cold start otherwise

    check_spec(resource, spec, unmasked)
    table = exp.to_table(table_name(resource.code))
    where = [_condition(resource, i, f) for i, f in enumerate(spec.filters)]
    order: list[exp.Ordered] = [
        exp.Ordered(this=exp.column(o.column, quoted=True), desc=o.desc, nulls_first=False)
        for o in spec.order_by
    ]
    if spec.aggregates:
        columns = [*spec.group_by, *(a.name for a in spec.aggregates)]
        projections: list[exp.Expression] = [exp.column(c, quoted=True) for c in spec.group_by]
        for agg in spec.aggregates:
            arg: exp.Expression = exp.Star() if agg.column is None else exp.column(agg.column, quoted=True)
            aggregate = exp.alias_(exp.func(agg.fn.value, arg), agg.name, quoted=True)
            assert isinstance(aggregate, exp.Expression)
            projections.append(aggregate)
        query = exp.select(*projections).from_(table)
        if spec.group_by:
            query = query.group_by(*[exp.column(c, quoted=True) for c in spec.group_by])
        seen = {o.column for o in spec.order_by}
        order += [
            exp.Ordered(this=exp.column(c, quoted=True), desc=False, nulls_first=False)
            for c in spec.group_by
            if c not in seen
        ]
    else:
        columns = list(spec.select or [i.column for i in resource.items])
        query = exp.select(*[exp.column(c, quoted=True) for c in columns]).from_(table)
        seen = {o.column for o in spec.order_by}
        order += [
            exp.Ordered(this=exp.column(c, quoted=True), desc=False, nulls_first=False)
            for c in ORDER_TIEBREAK
            if c not in seen
        ]
    if where:
        query = query.where(exp.and_(*where))
    if order:
        query = query.order_by(*order)
    if spec.export:
        masked = _masked(resource, unmasked) & set(columns) if not spec.aggregates else set()
        if masked:
            raise QueryRefused(
                f"export: {', '.join(sorted(masked))} would be masked for you; exports carry no masked "
                "columns (select others, or page through the query)",
                "export",
                403,
            )
        query = query.limit(MAX_EXPORT_ROWS)
    else:
        query = query.limit(spec.limit + 1)
        if offset:
            query = query.offset(offset)
    return BuiltQuery(
        sql=query.sql(dialect="duckdb"),
        columns=columns,
        offset=offset,
        page=spec.limit,
        aggregates=tuple(spec.aggregates),
    )


def to_athena(sql: str) -> str:
    """The DuckDB text in Athena's (Trino) dialect, translated by sqlglot."""
    import sqlglot

    return sqlglot.transpile(sql, read="duckdb", write="athena")[0]


# -- results ----------------------------------------------------------------------------------------------
def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat() + ("Z" if value.tzinfo is None else "")
    if isinstance(value, date):
        return value.isoformat()
    return value


class QueryPage(BaseModel):
    columns: list[str]
    rows: list[dict[str, Any]]
    masked: list[str] = Field(description="result columns shown masked")
    next_offset: int | None = None
    engine: Literal["duckdb", "athena"]
    sql: str | None = Field(None, description="the statement run (in the engine's dialect)")


def shape_page(
    resource: Resource,
    spec: QuerySpec,
    built: BuiltQuery,
    rows: Sequence[Sequence[Any]],
    unmasked: Iterable[str],
    engine: Literal["duckdb", "athena"],
    sql: str,
) -> QueryPage:
    """Rows as JSON objects, masked per item rule unless unmasked, with the next page's offset."""
    keep = set(unmasked)
    more = len(rows) > built.page
    out = []
    for raw in rows[: built.page]:
        row = {c: _json_value(v) for c, v in zip(built.columns, raw, strict=True)}
        out.append(mask_row(resource, row, keep) if not spec.aggregates else row)
    masked = sorted(_masked(resource, keep) & set(built.columns)) if not spec.aggregates else []
    return QueryPage(
        columns=built.columns,
        rows=out,
        masked=masked,
        next_offset=built.offset + built.page if more else None,
        engine=engine,
        sql=sql,
    )


# -- the embedded engine -----------------------------------------------------------------------------------
def duckdb_view_sql(resource: Resource, files: Sequence[Path]) -> str:
    """``CREATE VIEW r_<slug>`` over the resource's Parquet files (``dt`` from the Hive path).

    Files written before an item was added lack its column (``union_by_name``); an empty resource
    is an empty view with the items' types."""
    name = table_name(resource.code)
    typed = ", ".join(f'CAST(NULL AS {SQL_TYPES[i.type]}) AS "{i.column}"' for i in resource.items)
    if not files:
        return (
            f'CREATE OR REPLACE VIEW "{name}" AS SELECT {typed}, CAST(NULL AS DATE) AS dt, '
            "CAST(NULL AS VARCHAR) AS _batch, CAST(NULL AS BIGINT) AS _row WHERE false"
        )
    listing = ", ".join("'" + str(f).replace("'", "''") + "'" for f in files)
    return (
        f'CREATE OR REPLACE VIEW "{name}" AS SELECT * EXCLUDE (resource) FROM read_parquet([{listing}], '
        "hive_partitioning=true, union_by_name=true, hive_types={'dt': 'DATE', 'resource': 'VARCHAR'})"
    )


def run_duckdb(
    con: duckdb.DuckDBPyConnection, resource: Resource, files: Sequence[Path], built: BuiltQuery
) -> list[tuple[Any, ...]]:
    """Run the built query on DuckDB over ``files`` (local Parquet files of the resource)."""
    con.execute(duckdb_view_sql(resource, files))
    return con.execute(built.sql).fetchall()


def _result_kind(resource: Resource, built: BuiltQuery, column: str) -> ItemType | None:
    kinds = _columns(resource)
    if column in kinds:
        return kinds[column]
    for agg in built.aggregates:
        if agg.name == column:
            if agg.fn is AggregateFn.COUNT:
                return ItemType.INTEGER
            if agg.fn is AggregateFn.AVG:
                return ItemType.DECIMAL
            return kinds.get(agg.column or "")
    return None


def from_athena_text(resource: Resource, built: BuiltQuery, column: str, text: str | None) -> Any:
    """An Athena result value (always text) as the value DuckDB would have returned."""
    if text is None:
        return None
    kind = _result_kind(resource, built, column)
    if kind is ItemType.INTEGER:
        return int(text) if text.lstrip("-").isdigit() else float(text)
    if kind is ItemType.DECIMAL:
        return float(text)
    if kind is ItemType.BOOLEAN:
        return text.lower() == "true"
    if kind is ItemType.DATE:
        return date.fromisoformat(text[:10])
    if kind is ItemType.DATETIME:
        return datetime.fromisoformat(text.replace(" ", "T"))
    return text
