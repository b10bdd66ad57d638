"""Queries written once (DuckDB SQL), run on DuckDB over the Parquet files, translated for Athena."""

from __future__ import annotations

import shutil
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smartzone.datalake.ingest import ingest_file
from smartzone.datalake.layout import FileFormat, parquet_key
from smartzone.datalake.query import (
    QueryRefused,
    QuerySpec,
    build_query,
    from_athena_text,
    run_duckdb,
    shape_page,
    to_athena,
)
from tests.support.datalake import csv_text, good_row, person_id, resource

RES = resource()
ROWS = 120
DAYS = (date(2025, 3, 1), date(2025, 3, 2))


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Rows 0..119 loaded in two batches on two days (60 each)."""
    root = tmp_path_factory.mktemp("lake")
    files = []
    for index, day in enumerate(DAYS):
        rows = [good_row(n) for n in range(index * 60, (index + 1) * 60)]
        source = root / f"in{index}.csv"
        source.write_text(csv_text(rows), encoding="utf-8")
        now = datetime(day.year, day.month, day.day, 4, tzinfo=UTC)
        out = ingest_file(
            source, FileFormat.CSV, RES, batch_id=f"b{index}", dt=day, work_dir=root / f"w{index}", now=now
        )
        target = root / parquet_key(RES.code, day, f"b{index}")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(out.parquet), target)
        files.append(target)
    return files


def _run(lake: list[Path], spec: QuerySpec, unmasked: frozenset[str] = frozenset(), offset: int = 0) -> Any:
    built = build_query(RES, spec, unmasked, offset)
    rows = run_duckdb(duckdb.connect(), RES, lake, built)
    return shape_page(RES, spec, built, rows, unmasked, "duckdb", built.sql)


def test_given_filters_and_a_projection_when_run_on_duckdb_then_exactly_the_matching_rows_come_back(
    lake: list[Path],
) -> None:
    spec = QuerySpec(
        select=["grid_id", "age", "income"],
        filters=[
            {"column": "grid_id", "op": "in", "value": ["G03", "G04", "G11"]},
            {"column": "age", "op": "between", "value": [25, 60]},
            {"column": "registered_on", "op": "gte", "value": "2024-03-01"},
        ],
        limit=1000,
    )
    page = _run(lake, spec)
    expected = [
        good_row(n)
        for n in range(ROWS)
        if good_row(n)[3] in ("G03", "G04", "G11")
        and 25 <= int(good_row(n)[4]) <= 60
        and good_row(n)[6] >= "2024-03-01"
    ]
    assert page.columns == ["grid_id", "age", "income"]
    assert [(r["grid_id"], r["age"], r["income"]) for r in page.rows] == [
        (e[3], int(e[4]), float(e[5])) for e in expected
    ]
    assert page.next_offset is None and expected


def test_given_a_date_range_on_the_load_date_when_run_then_only_that_partition_is_read(
    lake: list[Path],
) -> None:
    spec = QuerySpec(
        select=["dt", "age"], filters=[{"column": "dt", "op": "eq", "value": "2025-03-02"}], limit=1000
    )
    page = _run(lake, spec)
    assert len(page.rows) == 60 and {r["dt"] for r in page.rows} == {"2025-03-02"}


def test_given_pages_when_followed_then_every_row_comes_once_in_a_stable_order(lake: list[Path]) -> None:
    spec = QuerySpec(select=["phone", "age"], order_by=[{"column": "age", "desc": True}], limit=50)
    seen: list[tuple[Any, ...]] = []
    offset: int | None = 0
    while offset is not None:
        page = _run(lake, spec, frozenset({"phone"}), offset)
        seen += [(r["phone"], r["age"]) for r in page.rows]
        offset = page.next_offset
    assert len(seen) == ROWS and len(set(seen)) == ROWS
    assert [age for _, age in seen] == sorted((int(good_row(n)[4]) for n in range(ROWS)), reverse=True)


def test_given_aggregates_when_run_then_counts_sums_and_averages_match_the_data(lake: list[Path]) -> None:
    spec = QuerySpec(
        group_by=["grid_id"],
        aggregates=[
            {"fn": "count"},
            {"fn": "sum", "column": "age"},
            {"fn": "avg", "column": "income", "alias": "avg_income"},
        ],
    )
    page = _run(lake, spec)
    groups: dict[str, list[list[str]]] = defaultdict(list)
    for n in range(ROWS):
        groups[good_row(n)[3]].append(good_row(n))
    assert [r["grid_id"] for r in page.rows] == sorted(groups)
    for row in page.rows:
        members = groups[row["grid_id"]]
        assert row["count"] == len(members)
        assert row["sum_age"] == sum(int(m[4]) for m in members)
        assert row["avg_income"] == pytest.approx(sum(float(m[5]) for m in members) / len(members))


def test_given_no_grant_when_rows_are_read_then_personal_items_are_masked_by_their_rules(
    lake: list[Path],
) -> None:
    page = _run(lake, QuerySpec(select=["id_number", "name", "phone", "age"], limit=1))
    (row,) = page.rows
    assert row["id_number"] == person_id(0)[:6] + "********" + person_id(0)[-4:]
    assert row["name"] == "张*" and row["phone"] == "138****0000"
    assert page.masked == ["id_number", "name", "phone"]

    granted = _run(lake, QuerySpec(select=["id_number", "name"], limit=1), frozenset({"id_number"}))
    assert granted.rows[0]["id_number"] == person_id(0) and granted.rows[0]["name"] == "张*"


def test_given_masked_items_when_used_to_select_rows_then_the_query_is_refused() -> None:
    for spec, field in [
        (QuerySpec(filters=[{"column": "id_number", "value": person_id(1)}]), "filters[0].column"),
        (QuerySpec(group_by=["name"], aggregates=[{"fn": "count"}]), "group_by[0]"),
        (QuerySpec(order_by=[{"column": "phone"}]), "order_by[0].column"),
    ]:
        with pytest.raises(QueryRefused) as refused:
            build_query(RES, spec, frozenset())
        assert (refused.value.field, refused.value.status) == (field, 403)
    built = build_query(
        RES, QuerySpec(filters=[{"column": "id_number", "value": " " + person_id(1).lower()}]), {"id_number"}
    )
    assert f"'{person_id(1).upper()}'" in built.sql  # a granted ID filter is normalised


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"select": ["nope"]}, "select[0]"),
        ({"filters": [{"column": "age", "value": "old"}]}, "filters[0].value"),
        ({"filters": [{"column": "age", "op": "in", "value": 3}]}, "filters[0].value"),
        ({"aggregates": [{"fn": "sum", "column": "grid_id"}]}, "aggregates[0].column"),
        ({"aggregates": [{"fn": "avg"}]}, "aggregates[0].column"),
    ],
)
def test_given_a_bad_spec_when_built_then_it_is_refused_naming_the_field(
    spec: dict[str, Any], field: str
) -> None:
    with pytest.raises(QueryRefused) as refused:
        build_query(RES, QuerySpec.model_validate(spec), frozenset())
    assert refused.value.field == field and refused.value.status == 422


def test_given_a_query_when_translated_then_athena_gets_the_same_statement_in_trino_syntax() -> None:
    """Golden SQL: the one DuckDB text and its sqlglot translation for Athena."""
    spec = QuerySpec(
        select=["grid_id", "age"],
        filters=[
            {
                "column": "updated_at",
                "op": "between",
                "value": ["2024-05-01T00:00:00+08:00", "2024-05-02T00:00:00+08:00"],
            },
            {"column": "lives_alone", "value": True},
            {"column": "grid_id", "op": "in", "value": ["G01", "G0'2"]},
        ],
        order_by=[{"column": "age", "desc": True}],
        limit=10,
    )
    built = build_query(RES, spec, frozenset(), offset=20)
    assert built.sql == (
        'SELECT "grid_id", "age" FROM r_101001000_000001 WHERE "updated_at" BETWEEN '
        "CAST('2024-04-30 16:00:00' AS TIMESTAMP) AND CAST('2024-05-01 16:00:00' AS TIMESTAMP) "
        "AND \"lives_alone\" = TRUE AND \"grid_id\" IN ('G01', 'G0''2') "
        'ORDER BY "age" DESC, "dt" ASC, "_batch" ASC, "_row" ASC LIMIT 11 OFFSET 20'
    )
    assert to_athena(built.sql) == (
        'SELECT "grid_id", "age" FROM r_101001000_000001 WHERE "updated_at" BETWEEN '
        "CAST('2024-04-30 16:00:00' AS TIMESTAMP) AND CAST('2024-05-01 16:00:00' AS TIMESTAMP) "
        "AND \"lives_alone\" = TRUE AND \"grid_id\" IN ('G01', 'G0''2') "
        'ORDER BY "age" DESC, "dt" ASC, "_batch" ASC, "_row" ASC OFFSET 20 LIMIT 11'
    )
    aggregate = build_query(
        RES, QuerySpec(group_by=["dt"], aggregates=[{"fn": "avg", "column": "income"}]), frozenset()
    )
    assert to_athena(aggregate.sql) == (
        'SELECT "dt", AVG("income") AS "avg_income" FROM r_101001000_000001 GROUP BY "dt" ORDER BY "dt" ASC LIMIT 101'
    )


def test_given_athena_text_values_when_converted_then_they_match_the_embedded_engine_types() -> None:
    built = build_query(
        RES,
        QuerySpec(group_by=["dt"], aggregates=[{"fn": "count"}, {"fn": "max", "column": "updated_at"}]),
        frozenset(),
    )
    assert from_athena_text(RES, built, "dt", "2025-03-01") == date(2025, 3, 1)
    assert from_athena_text(RES, built, "count", "42") == 42
    assert from_athena_text(RES, built, "max_updated_at", "2024-05-01 02:00:00.000") == datetime(
        2024, 5, 1, 2
    )
    plain = build_query(RES, QuerySpec(select=["lives_alone", "income"]), frozenset())
    assert from_athena_text(RES, plain, "lives_alone", "true") is True
    assert (
        from_athena_text(RES, plain, "income", "12.5") == 12.5
        and from_athena_text(RES, plain, "income", None) is None
    )


# -- filter values that are not plain finite numbers, dates or text ---------------------------------------
@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "NaN", "Infinity", "1e999", 1e999, -1e999])
@pytest.mark.parametrize("op", ["eq", "gt", "in", "between"])
def test_given_a_non_finite_decimal_filter_value_when_built_then_it_is_refused_naming_the_filter(
    value: Any, op: str
) -> None:
    """Given "inf"/"nan" for a decimal item, when the query is built, then it is refused with 422
    naming the filter's value: sqlglot would write the bare words ``inf``/``nan`` into the SQL, which
    DuckDB reads as column names (a BinderException, or a comparison with a column called nan)."""
    values = [value] if op == "in" else [0, value] if op == "between" else value
    with pytest.raises(QueryRefused) as refused:
        build_query(RES, QuerySpec(filters=[{"column": "income", "op": op, "value": values}]), frozenset())
    assert (refused.value.field, refused.value.status) == ("filters[0].value", 422)
    assert "finite" in str(refused.value)


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, 10**30, "99999999999999999999", 1e20])
def test_given_an_integer_filter_value_outside_bigint_when_built_then_it_is_refused(value: Any) -> None:
    """Given a whole number outside BIGINT (how integer items are stored), when built, then 422."""
    with pytest.raises(QueryRefused) as refused:
        build_query(RES, QuerySpec(filters=[{"column": "age", "op": "lt", "value": value}]), frozenset())
    assert (refused.value.field, refused.value.status) == ("filters[0].value", 422)


def test_given_the_bigint_bounds_as_filter_values_when_run_then_duckdb_compares_them(
    lake: list[Path],
) -> None:
    spec = QuerySpec(
        select=["age"],
        filters=[{"column": "age", "op": "between", "value": [-(2**63), 2**63 - 1]}],
        limit=1000,
    )
    assert len(_run(lake, spec).rows) == ROWS


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("updated_at", "0001-01-01T00:00:00"),
        ("updated_at", "0001-01-01T00:00:00+08:00"),
        ("grid_id", "\ud800"),
    ],
)
def test_given_values_python_cannot_turn_into_sql_when_built_then_they_are_refused(
    column: str, value: Any
) -> None:
    """A Beijing time before year 1 in UTC, or a lone surrogate (``"\\ud800"`` in JSON): 422, not a crash."""
    with pytest.raises(QueryRefused) as refused:
        build_query(RES, QuerySpec(filters=[{"column": column, "value": value}]), frozenset())
    assert refused.value.field == "filters[0].value"


_JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(
        [
            "inf",
            "-inf",
            "nan",
            "1e999",
            "2025-03-01",
            "2025-03-01T08:00:00",
            "0001-01-01T00:00:00+14:00",
            "9999-12-31T23:59:59-12:00",
            "true",
            "是",
            "'; DROP TABLE x; --",
            '"',
            "\\",
            "\x00",
            "1_000",
        ]
    ),
)
_FILTER_VALUES = st.one_of(
    _JSON_SCALARS,
    st.lists(_JSON_SCALARS, max_size=4),
    st.dictionaries(st.text(max_size=3), _JSON_SCALARS, max_size=2),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    column=st.sampled_from([*(i.column for i in RES.items), "dt"]),
    op=st.sampled_from(["eq", "ne", "in", "gt", "gte", "lt", "lte", "between", "is_null", "not_null"]),
    value=_FILTER_VALUES,
)
def test_given_arbitrary_filter_values_when_built_and_run_then_they_are_refused_or_run_never_crash(
    lake: list[Path], column: str, op: str, value: Any
) -> None:
    """Given any JSON value for any column and operator (the caller unmasked for every item), when
    the query is built and run on DuckDB, then it is either refused (QueryRefused, 4xx naming a
    field) or runs: never another exception (which the API would answer with a bare 500)."""
    spec = QuerySpec(select=["grid_id"], filters=[{"column": column, "op": op, "value": value}])
    unmasked = frozenset(i.column for i in RES.items)
    try:
        built = build_query(RES, spec, unmasked)
    except QueryRefused as refused:
        assert refused.field.startswith("filters[0]") and refused.status in (403, 422)
        return
    run_duckdb(duckdb.connect(), RES, lake, built)


def test_given_a_grant_when_an_export_link_is_made_then_it_never_outlives_the_grant() -> None:
    """Given the time left on the caller's grant, when the export link's lifetime is chosen, then it
    is the shorter of 15 minutes and that time; with no time left the export is refused (403)."""
    from smartzone.datalake.service import EXPORT_LINK_S, export_link_seconds

    now = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)
    assert export_link_seconds(None, now) == EXPORT_LINK_S == 900  # no grant involved
    assert export_link_seconds(now + timedelta(days=30), now) == 900
    assert export_link_seconds(now + timedelta(minutes=5), now) == 300
    with pytest.raises(QueryRefused) as refused:
        export_link_seconds(now + timedelta(milliseconds=500), now)
    assert (refused.value.field, refused.value.status) == ("export", 403)
