"""Data-lake benchmark: 11 million generated rows across four resources, loaded and queried.

What it does (all on this machine, no AWS):
1. generates the rows deterministically (hash of the row number, no random state) with DuckDB,
   streaming one CSV file of at most ``FILE_ROWS`` rows at a time (written, ingested, deleted),
   including ~0.1 % bad rows (a broken number, a wrong ID check character) that must be rejected;
2. ingests every file with the production path (:func:`smartzone.datalake.ingest.ingest_file`:
   validation, rejects, Parquet) under a DuckDB memory limit, into the lake layout
   ``datalake/resource=<slug>/dt=<date>/part-<batch>.parquet`` (several load dates);
3. runs typical queries with the production query builder on the embedded engine (by key, by
   date range, aggregates, a deep page), printing each one's time and its Athena translation.

Prints and writes ``bench/results/datalake.json``: rows generated / loaded / rejected, load rows
per second (ingest only, generation excluded), Parquet size, per-query seconds, peak RSS of the
process (DuckDB runs in-process, so its memory is included).

Run: ``make bench`` (or ``python -m bench.datalake``; ``DATALAKE_BENCH_ROWS=1000000`` for a
smaller run, which does not write the results file; ``DATALAKE_BENCH_DIR`` to keep the lake
somewhere else than a temporary folder).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import RESULTS, ROOT, peak_rss_mb, write_results

sys.path.insert(0, str(ROOT / "layers" / "shared" / "python"))

import duckdb

from smartzone.datalake.ingest import ingest_file
from smartzone.datalake.layout import FileFormat, parquet_key, slug
from smartzone.datalake.query import QuerySpec, build_query, run_duckdb, to_athena
from smartzone.domain.catalogue import Resource
from smartzone.domain.idnumbers import CHECK_CHARS, WEIGHTS

FULL_ROWS = 11_000_000
TOTAL_ROWS = int(os.environ.get("DATALAKE_BENCH_ROWS", str(FULL_ROWS)))
"""A smaller run (``DATALAKE_BENCH_ROWS``) prints its figures but does not overwrite the results file."""
FILE_ROWS = 1_000_000
MEMORY_LIMIT = "512MB"
LOAD_DAYS = [date(2025, 3, 1) + timedelta(days=d) for d in range(4)]


def _resource(
    code: str, name: str, department: str, items: list[dict[str, Any]], cycle: str = "daily"
) -> Resource:
    return Resource.model_validate(
        {
            "code": code,
            "name": name,
            "department_id": department,
            "provider_code": code[3:6],
            "summary": f"{name}（基准测试生成数据）",
            "classification": code[:3],
            "format": "csv",
            "update_cycle": cycle,
            "sharing_type": "unconditional",
            "sharing_method": "file",
            "published_on": "2024-01-01",
            "items": items,
        }
    )


def _item(name: str, column: str, kind: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "column": column, "type": kind, **extra}


@dataclass(frozen=True)
class Dataset:
    resource: Resource
    share: float
    """Part of the total rows."""
    select: str
    """DuckDB SELECT list generating one row from ``i`` (the row number) and ``h`` (its hash)."""


POPULATION = _resource(
    "101001000/000101",
    "实有人口信息",
    "public-security",
    [
        _item("公民身份号码", "id_number", "string", personal_class="id_number", required=True, key=True),
        _item("姓名", "name", "string", personal_class="name", required=True),
        _item("联系电话", "phone", "string", personal_class="phone"),
        _item("所属网格", "grid_id", "string", required=True),
        _item("出生日期", "birth_date", "date"),
        _item("是否独居", "lives_alone", "boolean"),
    ],
)
READINGS = _resource(
    "211005000/000102",
    "水质自动监测数据",
    "environment",
    [
        _item("监测站编号", "station_id", "string", required=True, key=True),
        _item("监测时间", "measured_at", "datetime", required=True, key=True),
        _item("化学需氧量", "cod_mg_l", "decimal"),
        _item("氨氮", "nh3_mg_l", "decimal"),
        _item("所属网格", "grid_id", "string"),
    ],
    cycle="hourly",
)
CASES = _resource(
    "210010000/000103",
    "城市管理案件",
    "urban-management",
    [
        _item("案件编号", "case_id", "string", required=True, key=True),
        _item("案件类别", "category", "string", required=True),
        _item("所属网格", "grid_id", "string", required=True),
        _item("立案时间", "opened_at", "datetime", required=True),
        _item("处置时长（分钟）", "minutes", "integer"),
    ],
)
COMPANIES = _resource(
    "102006000/000104",
    "市场主体登记信息",
    "market-supervision",
    [
        _item("统一社会信用代码", "credit_code", "string", required=True, key=True),
        _item("企业名称", "company", "string", required=True),
        _item("注册资本（万元）", "capital", "decimal"),
        _item("成立日期", "founded_on", "date"),
        _item("从业人数", "employees", "integer"),
    ],
    cycle="monthly",
)

_first17 = "'340291' || strftime(DATE '1940-01-01' + CAST(h % 29000 AS INTEGER), '%Y%m%d') || lpad(CAST(i % 1000 AS VARCHAR), 3, '0')"
_check = " + ".join(f"(ascii(substr(f17, {n + 1}, 1)) - 48) * {w}" for n, w in enumerate(WEIGHTS))
_surnames = "['张','王','李','赵','刘','陈','杨','黄','周','吴','欧阳','司马']"
DATASETS = [
    Dataset(
        POPULATION,
        3 / 11,
        # every 997th row gets a wrong check character (rejected), every 1999th no name (rejected)
        f"f17 || CASE WHEN i % 997 = 0 THEN (CASE WHEN substr('{CHECK_CHARS}', (({_check}) % 11) + 1, 1) = '0' "
        f"THEN '1' ELSE '0' END) ELSE substr('{CHECK_CHARS}', (({_check}) % 11) + 1, 1) END AS id_number, "
        f"CASE WHEN i % 1999 = 0 THEN '' ELSE {_surnames}[1 + CAST(h % 12 AS INTEGER)] || '某' END AS name, "
        "'13' || lpad(CAST(h % 1000000000 AS VARCHAR), 9, '0') AS phone, "
        "'G' || lpad(CAST(1 + h % 12 AS VARCHAR), 2, '0') AS grid_id, "
        "strftime(DATE '1940-01-01' + CAST(h % 29000 AS INTEGER), '%Y-%m-%d') AS birth_date, "
        "CASE WHEN h % 7 = 0 THEN '是' ELSE '否' END AS lives_alone",
    ),
    Dataset(
        READINGS,
        5 / 11,
        "'WQ-' || lpad(CAST(i % 20 AS VARCHAR), 2, '0') AS station_id, "
        "strftime(TIMESTAMP '2024-01-01 00:00:00' + to_minutes(CAST(5 * (i // 20) AS BIGINT)), '%Y-%m-%dT%H:%M:%S+08:00') AS measured_at, "
        "CASE WHEN i % 1009 = 0 THEN 'n/a' ELSE CAST(round(5 + (h % 3000) / 100.0, 2) AS VARCHAR) END AS cod_mg_l, "
        "CAST(round((h % 500) / 100.0, 2) AS VARCHAR) AS nh3_mg_l, "
        "'G' || lpad(CAST(1 + i % 12 AS VARCHAR), 2, '0') AS grid_id",
    ),
    Dataset(
        CASES,
        2 / 11,
        "'CG' || lpad(CAST(i AS VARCHAR), 10, '0') AS case_id, "
        "['占道经营','乱堆物料','违法建设','井盖破损','暴露垃圾','违规广告'][1 + CAST((h // 12) % 6 AS INTEGER)] AS category, "
        "'G' || lpad(CAST(1 + h % 12 AS VARCHAR), 2, '0') AS grid_id, "
        "strftime(TIMESTAMP '2023-01-01 00:00:00' + to_seconds(CAST(h % 63072000 AS BIGINT)), '%Y-%m-%d %H:%M:%S') AS opened_at, "
        "CAST(h % 4320 AS VARCHAR) AS minutes",
    ),
    Dataset(
        COMPANIES,
        1 / 11,
        "'91340200' || lpad(CAST(i AS VARCHAR), 10, '0') AS credit_code, "
        "'芜湖某某' || CAST(i AS VARCHAR) || '有限公司' AS company, "
        "CAST(round((h % 100000) / 10.0, 1) AS VARCHAR) AS capital, "
        "strftime(DATE '1990-01-01' + CAST(h % 12000 AS INTEGER), '%Y-%m-%d') AS founded_on, "
        "CASE WHEN i % 1013 = 0 THEN 'many' ELSE CAST(h % 2000 AS VARCHAR) END AS employees",
    ),
]


def generate(dataset: Dataset, start: int, rows: int, target: Path) -> None:
    """Rows ``start .. start + rows - 1`` of the dataset as a CSV file (DuckDB streams it out)."""
    con = duckdb.connect(config={"memory_limit": "256MB", "threads": 2})
    select = dataset.select
    source = f"SELECT i, hash(i * 2654435761 + {len(dataset.resource.code)}) AS h FROM range({start}, {start + rows}) t(i)"
    if "f17" in select:
        source = f"SELECT i, h, {_first17} AS f17 FROM ({source})"
    con.execute(f"COPY (SELECT {select} FROM ({source})) TO '{target}' (HEADER, DELIMITER ',')")
    con.close()


def load(lake: Path, work: Path) -> dict[str, Any]:
    totals = {"generated": 0, "loaded": 0, "rejected": 0, "files": 0}
    ingest_s = generate_s = 0.0
    per_resource: dict[str, dict[str, Any]] = {}
    for dataset in DATASETS:
        rows_total = round(TOTAL_ROWS * dataset.share)
        code = dataset.resource.code
        stats = per_resource.setdefault(
            code, {"name": dataset.resource.name, "rows": 0, "loaded": 0, "rejected": 0}
        )
        start = 0
        part = 0
        while start < rows_total:
            rows = min(FILE_ROWS, rows_total - start)
            source = work / f"{slug(code)}-{part}.csv"
            t0 = time.perf_counter()
            generate(dataset, start, rows, source)
            t1 = time.perf_counter()
            day = LOAD_DAYS[part % len(LOAD_DAYS)]
            batch = f"bench{part:03d}"
            out = ingest_file(
                source,
                FileFormat.CSV,
                dataset.resource,
                batch_id=batch,
                dt=day,
                work_dir=work / "ingest",
                now=datetime(day.year, day.month, day.day, 2, tzinfo=UTC),
                memory_limit=MEMORY_LIMIT,
            )
            t2 = time.perf_counter()
            if out.parquet is not None:
                target = lake / parquet_key(code, day, batch)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(str(out.parquet), target)
            source.unlink()
            shutil.rmtree(work / "ingest", ignore_errors=True)
            generate_s += t1 - t0
            ingest_s += t2 - t1
            report = out.report
            for key, value in (
                ("rows", report.rows_total),
                ("loaded", report.rows_loaded),
                ("rejected", report.rows_rejected),
            ):
                stats[key] += value
            totals["generated"] += rows
            totals["loaded"] += report.rows_loaded
            totals["rejected"] += report.rows_rejected
            totals["files"] += 1
            print(
                f"  {code} part {part}: {rows:>9,} rows, {report.rows_rejected:>5} rejected, "
                f"ingest {t2 - t1:5.2f} s ({rows / (t2 - t1):,.0f} rows/s), peak RSS {peak_rss_mb():,.0f} MB",
                flush=True,
            )
            start += rows
            part += 1
    parquet_bytes = sum(f.stat().st_size for f in lake.rglob("*.parquet"))
    return {
        **{f"rows_{k}": v for k, v in totals.items() if k != "files"},
        "files": totals["files"],
        "generate_s": round(generate_s, 2),
        "ingest_s": round(ingest_s, 2),
        "load_rows_per_s": round(totals["generated"] / ingest_s) if ingest_s else None,
        "parquet_mb": round(parquet_bytes / 1024**2, 1),
        "resources": per_resource,
    }


QUERIES: list[tuple[str, Resource, QuerySpec, frozenset[str]]] = [
    (
        "by_key_id_number",
        POPULATION,
        QuerySpec(filters=[{"column": "id_number", "value": "{key}"}], limit=10),
        frozenset({"id_number"}),  # only a grant (or the provider) may look a person up
    ),
    (
        "by_key_case_id",
        CASES,
        QuerySpec(filters=[{"column": "case_id", "value": "{key}"}], limit=10),
        frozenset(),
    ),
    (
        "date_range_station_week",
        READINGS,
        QuerySpec(
            select=["station_id", "measured_at", "cod_mg_l"],
            filters=[
                {"column": "station_id", "value": "WQ-07"},
                {
                    "column": "measured_at",
                    "op": "between",
                    "value": ["2024-01-08T00:00:00+08:00", "2024-01-14T23:59:59+08:00"],
                },
            ],
            limit=1000,
        ),
        frozenset(),
    ),
    (
        "date_range_load_day_count",
        CASES,
        QuerySpec(
            filters=[{"column": "dt", "op": "eq", "value": "2025-03-02"}], aggregates=[{"fn": "count"}]
        ),
        frozenset(),
    ),
    (
        "aggregate_grid_avg",
        READINGS,
        QuerySpec(
            group_by=["grid_id"],
            aggregates=[
                {"fn": "count"},
                {"fn": "avg", "column": "cod_mg_l"},
                {"fn": "max", "column": "nh3_mg_l"},
            ],
        ),
        frozenset(),
    ),
    (
        "aggregate_category_by_grid",
        CASES,
        QuerySpec(
            group_by=["grid_id", "category"],
            aggregates=[{"fn": "count"}, {"fn": "avg", "column": "minutes"}],
            limit=1000,
        ),
        frozenset(),
    ),
    (
        "aggregate_population_by_grid",
        POPULATION,
        QuerySpec(group_by=["grid_id", "lives_alone"], aggregates=[{"fn": "count"}], limit=100),
        frozenset(),
    ),
    (
        "deep_page",
        COMPANIES,
        QuerySpec(
            select=["credit_code", "company", "capital"],
            order_by=[{"column": "capital", "desc": True}],
            limit=100,
        ),
        frozenset(),
    ),
]


def run_queries(lake: Path, work: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, res, spec, unmasked in QUERIES:
        files = sorted((lake / "datalake" / f"resource={slug(res.code)}").rglob("*.parquet"))
        offset = 10_000 if name == "deep_page" else 0
        if spec.filters and spec.filters[0].value == "{key}":  # a key that exists: the middle row's
            column = spec.filters[0].column
            (key,) = duckdb.execute(
                f"SELECT {column} FROM read_parquet({[str(f) for f in files]}) WHERE _row = 500000 "
                f"OR _row = (SELECT max(_row) // 2 FROM read_parquet('{files[0]}')) LIMIT 1"
            ).fetchone() or ("?",)
            spec = spec.model_copy(update={"filters": [spec.filters[0].model_copy(update={"value": key})]})
        built = build_query(res, spec, unmasked, offset)
        con = duckdb.connect(
            config={"memory_limit": MEMORY_LIMIT, "threads": 2, "temp_directory": str(work / "spill")}
        )
        t0 = time.perf_counter()
        rows = run_duckdb(con, res, files, built)
        elapsed = time.perf_counter() - t0
        con.close()
        out[name] = {
            "seconds": round(elapsed, 3),
            "rows": len(rows),
            "duckdb_sql": built.sql,
            "athena_sql": to_athena(built.sql),
        }
        print(f"  {name:<30} {elapsed:6.3f} s  {len(rows):>5} rows", flush=True)
    return out


def main() -> dict[str, Any]:
    keep = os.environ.get("DATALAKE_BENCH_DIR")
    base = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="datalake-bench-"))
    lake, work = base / "lake", base / "work"
    shutil.rmtree(lake, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    try:
        print(
            f"data lake benchmark: {TOTAL_ROWS:,} rows in {len(DATASETS)} resources (files of {FILE_ROWS:,})"
        )
        t0 = time.perf_counter()
        loaded = load(lake, work)
        print(
            f"loaded {loaded['rows_loaded']:,} rows ({loaded['rows_rejected']:,} rejected) in {loaded['ingest_s']} s "
            f"of ingest: {loaded['load_rows_per_s']:,} rows/s; Parquet {loaded['parquet_mb']} MB"
        )
        print("queries (DuckDB over the Parquet files):")
        queries = run_queries(lake, work)
        results = {
            "rows_target": TOTAL_ROWS,
            **loaded,
            "queries": queries,
            "memory_limit": MEMORY_LIMIT,
            "peak_rss_mb": round(peak_rss_mb()),
            "total_s": round(time.perf_counter() - t0, 1),
            "cpus": os.cpu_count(),
            "duckdb": duckdb.__version__,
        }
        print(f"peak RSS {results['peak_rss_mb']} MB; total {results['total_s']} s")
        if TOTAL_ROWS == FULL_ROWS:
            write_results("datalake", results)
        else:
            print(f"(a smaller run: {RESULTS / 'datalake.json'} not written)")
        return results
    finally:
        if not keep:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
