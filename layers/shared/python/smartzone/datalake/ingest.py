"""Ingest one department file into the data lake: validate every row, keep the good ones as Parquet.

The work is done by an embedded engine (DuckDB), not by per-row Python: the file is read as text
(CSV and JSON by DuckDB itself, XLSX streamed by openpyxl into a CSV first), every row is checked
against the resource's information items in one SQL pass (types with ``TRY_CAST``, required items,
citizen ID numbers with :func:`smartzone.domain.idnumbers.parse` as a scalar function), and the
engine writes the good rows as one Parquet file and the rejected ones as JSON lines.

- **Nothing good is lost**: a bad row never stops the batch; it is written to the rejects file
  with its reasons and raw values, and the report lists its row number and reasons (never its
  values: they may be personal data).
- **Rows** are numbered from 1 in the order of the file, header excluded (a spreadsheet's row
  ``n`` is row ``n - 1`` here). CSV lines the reader cannot split (too many or too few fields,
  broken quotes) are rejects too, with the reader's reason.
- **Memory-bounded**: the engine runs with a memory limit and spills to ``work_dir``; XLSX rows
  are streamed; nothing holds the whole file in Python.
- Stored values: trimmed text; integers ``BIGINT``, decimals ``DOUBLE``, dates ``DATE``,
  date-times ``TIMESTAMP`` in UTC (a value without an offset is read as +08:00, DESIGN.md), ID
  numbers in their normalised 18-character form. Two columns are added: ``_batch`` (the batch
  id) and ``_row`` (the row number in the batch), which together identify a row.
"""

from __future__ import annotations

import codecs
import csv
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from smartzone.datalake.layout import FileFormat
from smartzone.domain.catalogue import InformationItem, ItemType, PersonalClass, Resource
from smartzone.domain.idnumbers import (
    CHECK_CHARS,
    EARLIEST_BIRTH,
    MESSAGES,
    PROVINCES,
    WEIGHTS,
    IdProblemCode,
    parse,
)

if TYPE_CHECKING:
    import duckdb

MAX_REPORTED_REJECTS = 1000
"""The report lists at most this many rejected rows (the rejects file has all of them)."""
DEFAULT_MEMORY_LIMIT = "256MB"
SYSTEM_COLUMNS = ("_batch", "_row")

SQL_TYPES: dict[ItemType, str] = {
    ItemType.STRING: "VARCHAR",
    ItemType.INTEGER: "BIGINT",
    ItemType.DECIMAL: "DOUBLE",
    ItemType.DATE: "DATE",
    ItemType.DATETIME: "TIMESTAMP",
    ItemType.BOOLEAN: "BOOLEAN",
}
"""The stored (Parquet / DuckDB) type of each item type."""

_TYPE_MESSAGES: dict[ItemType, str] = {
    ItemType.INTEGER: "不是整数 (not an integer)",
    ItemType.DECIMAL: "不是数值 (not a number)",
    ItemType.DATE: "不是日期，应为 YYYY-MM-DD (not a date)",
    ItemType.DATETIME: "不是时间，应为 ISO-8601 (not a date-time)",
    ItemType.BOOLEAN: "不是是/否值 (not a boolean)",
}
_TRUE = ("true", "1", "yes", "y", "t", "是")
_FALSE = ("false", "0", "no", "n", "f", "否")
_CSV_ERROR_MESSAGES = {
    "TOO MANY COLUMNS": "该行字段过多 (too many fields)",
    "MISSING COLUMNS": "该行字段不足 (too few fields)",
    "UNQUOTED VALUE": "引号不匹配 (broken quotes)",
    "LINE SIZE OVER MAXIMUM": "该行过长 (line too long)",
    "INVALID UNICODE": "编码无效 (invalid characters)",
}


class IngestError(ValueError):
    """The whole file cannot be ingested (unreadable, or required columns missing)."""


class RowReject(BaseModel):
    row: int = Field(description="row number in the batch, from 1, header excluded")
    reasons: list[str]


class IngestReport(BaseModel):
    """What happened to one batch (returned by the API, written to ``reports/`` in S3)."""

    resource_code: str
    batch_id: str
    dt: date
    format: FileFormat
    rows_total: int = 0
    """Data rows read (empty rows excluded)."""
    rows_loaded: int = 0
    rows_rejected: int = 0
    rows_empty: int = 0
    """Rows with no value at all (skipped, not rejected)."""
    rejects: list[RowReject] = Field(default_factory=list)
    """The first :data:`MAX_REPORTED_REJECTS` rejected rows (all of them in the rejects file)."""
    rejects_truncated: bool = False
    ignored_columns: list[str] = Field(default_factory=list)
    """Columns of the file that are no information item of the resource (not stored)."""
    error: str | None = None
    """Set when the file as a whole was refused (then nothing was loaded)."""
    parquet_key: str | None = None
    rejects_key: str | None = None
    loaded_at: datetime | None = None


@dataclass(frozen=True)
class IngestOutput:
    report: IngestReport
    parquet: Path | None
    """The Parquet file of the good rows (None when there are none)."""
    rejects: Path | None
    """JSON lines ``{"row", "reasons", "values"}`` of the rejected rows (None when there are none)."""


# -- reading the source as text -----------------------------------------------------------------------
def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ensure_utf8(source: Path, work_dir: Path) -> Path:
    """``source`` when it is UTF-8 (with or without BOM); else a UTF-8 copy read as GB18030 (the
    usual encoding of Chinese spreadsheets saved as CSV). Streams in 1 MiB chunks."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        with source.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        return source
    except UnicodeDecodeError:
        pass
    target = work_dir / (source.stem + ".utf8.csv")
    with (
        source.open("r", encoding="gb18030", errors="replace", newline="") as src,
        target.open("w", encoding="utf-8", newline="") as dst,
    ):
        shutil.copyfileobj(src, dst, 1 << 20)
    return target


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        if value.time() == time(0) and value.tzinfo is None:
            return value.date().isoformat()
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)


def xlsx_rows(source: Path) -> Iterator[list[str]]:
    """The first worksheet's rows as text, streamed (openpyxl read-only mode)."""
    from openpyxl import load_workbook

    workbook = load_workbook(source, read_only=True, data_only=True)
    try:
        sheet = workbook.worksheets[0]
        for row in sheet.iter_rows(values_only=True):
            yield [_cell_text(v) for v in row]
    finally:
        workbook.close()


def _xlsx_to_csv(source: Path, work_dir: Path) -> Path:
    target = work_dir / (source.stem + ".xlsx.csv")
    width = 0
    with target.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        for index, row in enumerate(xlsx_rows(source)):
            if index == 0:
                while row and not row[-1].strip():
                    row.pop()
                width = len(row)
            cells = row[:width] + [""] * (width - len(row))
            if index > 0 and any(c.strip() for c in row[width:]):
                cells.append("")  # a value right of the header: reported as too many fields
                cells.extend(row[width:])
            writer.writerow(cells)
    return target


def _header_map(items: Sequence[InformationItem], headers: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """Item column → file header (by column name or Chinese item name, case and spaces ignored);
    and the headers that match no item."""
    by_key = {h.strip().lower(): h for h in headers}
    found: dict[str, str] = {}
    for item in items:
        for candidate in (item.column, item.name):
            header = by_key.get(candidate.strip().lower())
            if header is not None:
                found[item.column] = header
                break
    used = set(found.values())
    return found, [h for h in headers if h not in used]


# -- validation SQL -----------------------------------------------------------------------------------
def _value(column: str) -> str:
    return f"NULLIF(trim({_quote(column)}), '')"


def _v(item: InformationItem) -> str:
    """The staged column holding ``item``'s trimmed raw text (NULL when empty)."""
    return _quote("_v_" + item.column)


def _idr(item: InformationItem) -> str:
    """The staged column holding an ID item's normalised number or ``!<problem code>``."""
    return _quote("_idr_" + item.column)


def typed_expression(item: InformationItem, v: str | None = None) -> str:
    """SQL turning the raw text ``v`` of ``item`` into its stored value (NULL when empty or invalid)."""
    v = v or _v(item)
    if is_id_item(item):
        return f"CASE WHEN starts_with({_idr(item)}, '!') THEN NULL ELSE {_idr(item)} END"
    if item.type is ItemType.STRING:
        return v
    if item.type is ItemType.INTEGER:
        # Whole numbers only ("1.5" is refused, not rounded); "44.0" (a spreadsheet's number) is 44.
        return (
            f"CASE WHEN regexp_full_match({v}, '[+-]?[0-9]+(\\.0*)?') "
            f"THEN TRY_CAST(split_part({v}, '.', 1) AS BIGINT) END"
        )
    if item.type is ItemType.DECIMAL:
        return f"TRY_CAST({v} AS DOUBLE)"
    if item.type is ItemType.BOOLEAN:
        trues = ", ".join(_literal(t) for t in _TRUE)
        falses = ", ".join(_literal(f) for f in _FALSE)
        return f"CASE WHEN lower({v}) IN ({trues}) THEN true WHEN lower({v}) IN ({falses}) THEN false END"
    if item.type is ItemType.DATE:
        return (
            f"COALESCE(TRY_CAST({v} AS DATE), TRY_CAST(TRY_STRPTIME({v}, '%Y/%m/%d') AS DATE), "
            f"CASE WHEN regexp_full_match({v}, '[0-9]{{8}}') "
            f"THEN TRY_CAST(TRY_STRPTIME({v}, '%Y%m%d') AS DATE) END)"
        )
    # DATETIME: ISO-8601 with offset (or Z); without one it is Asia/Shanghai (+08:00); or epoch ms.
    return (
        f"CASE WHEN regexp_full_match({v}, '[0-9]{{12,13}}') THEN make_timestamp(TRY_CAST({v} AS BIGINT) * 1000) "
        f"WHEN regexp_matches({v}, '(Z|z|[+-][0-9]{{2}}:?[0-9]{{2}})$') "
        f"THEN CAST(TRY_CAST(replace({v}, ' ', 'T') AS TIMESTAMPTZ) AS TIMESTAMP) "
        f"ELSE CAST(TRY_CAST(replace({v}, ' ', 'T') || '+08:00' AS TIMESTAMPTZ) AS TIMESTAMP) END"
    )


def reason_expressions(item: InformationItem) -> list[str]:
    """SQL giving this item's reasons for rejecting a row (NULL when fine), over the staged
    columns: ``_v_<column>`` (raw text), ``<column>`` (typed value), ``_idr_<column>`` (ID result)."""
    v = _v(item)
    col = item.column
    reasons: list[str] = []
    if item.required:
        reasons.append(f"CASE WHEN {v} IS NULL THEN {_literal(f'{col}: 必填项为空 (required)')} END")
    if is_id_item(item):
        checked = _idr(item)
        whens = " ".join(
            f"WHEN {_literal('!' + code.value)} THEN {_literal(f'{col}: {zh} ({code.value})')}"
            for code, (zh, _en) in MESSAGES.items()
        )
        reasons.append(f"CASE WHEN starts_with({checked}, '!') THEN (CASE {checked} {whens} END) END")
    elif item.type is not ItemType.STRING:
        message = _literal(f"{col}: {_TYPE_MESSAGES[item.type]}")
        reasons.append(f"CASE WHEN {v} IS NOT NULL AND {_quote(col)} IS NULL THEN {message} END")
    return reasons


def is_id_item(item: InformationItem) -> bool:
    """Items holding citizen ID numbers are validated (and stored normalised) as such."""
    return item.personal_class is PersonalClass.ID_NUMBER and item.type is ItemType.STRING


def id_fast_check(v: str, today: date, n: str | None = None) -> str:
    """SQL: true when ``v`` is a canonical, valid resident number (18 ASCII characters, a province
    code, a real birth date from 1880 to ``today``, the right MOD 11-2 check character).

    ``n`` is SQL for its first 17 digits as a BIGINT (the check sum is integer arithmetic on it,
    far cheaper than 17 substrings); computed here when not given. A conservative fast path:
    everything it accepts, :func:`smartzone.domain.idnumbers.parse` accepts unchanged (a test
    checks this); everything else is decided by ``parse`` itself.
    """
    n = n or f"TRY_CAST(substr({v}, 1, 17) AS BIGINT)"
    provinces = ", ".join(_literal(p) for p in sorted(PROVINCES))
    total = " + ".join(f"(({n} // {10 ** (16 - i)}) % 10) * {w}" for i, w in enumerate(WEIGHTS))
    checks = ", ".join(_literal(c) for c in CHECK_CHARS)
    earliest = EARLIEST_BIRTH.strftime("%Y%m%d")
    return (
        f"(regexp_full_match({v}, '[0-9]{{17}}[0-9X]') AND substr({v}, 1, 2) IN ({provinces}) "
        f"AND substr({v}, 7, 8) BETWEEN '{earliest}' AND '{today:%Y%m%d}' "
        f"AND TRY_STRPTIME(substr({v}, 7, 8), '%Y%m%d') IS NOT NULL "
        f"AND [{checks}][CAST(({total}) % 11 + 1 AS INTEGER)] = substr({v}, 18, 1))"
    )


def _id_table(item: InformationItem) -> str:
    return _quote(f"_id_{item.column}")


def _with_fast_ids(select_sql: str, items: Sequence[InformationItem], today: date) -> str:
    """``select_sql`` plus, per ID item, ``_idv_<column>``: the value when the fast path accepts it."""
    ids = [i for i in items if is_id_item(i)]
    if not ids:
        return select_sql
    numbers = ", ".join(
        f"TRY_CAST(substr({_value(i.column)}, 1, 17) AS BIGINT) AS {_quote('_n_' + i.column)}" for i in ids
    )
    fast = ", ".join(
        f"CASE WHEN {id_fast_check(_value(i.column), today, _quote('_n_' + i.column))} "
        f"THEN {_value(i.column)} END AS {_quote('_idv_' + i.column)}"
        for i in ids
    )
    drop = ", ".join(_quote("_n_" + i.column) for i in ids)
    return f"SELECT * EXCLUDE ({drop}), {fast} FROM (SELECT *, {numbers} FROM ({select_sql}))"


def _check_id_numbers(
    con: duckdb.DuckDBPyConnection, item: InformationItem, work_dir: Path, today: date
) -> None:
    """Decide every ID number the fast path does not accept with ``parse`` (distinct values only),
    into table ``_id_<column>`` (``_in``, ``_out``): normalised number or ``!<problem code>``."""
    v = _value(item.column)
    fast = _quote("_idv_" + item.column)
    results = work_dir / f"id-{item.column}.csv"
    cursor = con.execute(f"SELECT DISTINCT {v} FROM raw WHERE {fast} IS NULL AND {v} IS NOT NULL")
    with results.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["_in", "_out"])
        while batch := cursor.fetchmany(10_000):
            for (raw,) in batch:
                number = parse(raw, today=today)
                if number.ok and number.normalised:
                    writer.writerow([raw, number.normalised])
                else:
                    writer.writerow([raw, "!" + (number.problem_codes or [IdProblemCode.FORMAT.value])[0]])
    con.execute(
        f"CREATE TABLE {_id_table(item)} AS SELECT * FROM read_csv({_literal(str(results))}, header=true, "
        "columns={'_in': 'VARCHAR', '_out': 'VARCHAR'}, quote='\"', escape='\"')"
    )


# -- the run ----------------------------------------------------------------------------------------------
def connect(
    work_dir: Path, memory_limit: str = DEFAULT_MEMORY_LIMIT, threads: int = 2
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB that spills to ``work_dir`` beyond ``memory_limit``; UTC session time zone."""
    import duckdb

    con = duckdb.connect(
        ":memory:",
        config={
            "memory_limit": memory_limit,
            "temp_directory": str(work_dir / "spill"),
            "threads": threads,
            "preserve_insertion_order": True,
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
        },
    )
    con.execute("SET TimeZone = 'UTC'")
    return con


def ingest_file(
    source: Path,
    fmt: FileFormat,
    resource: Resource,
    *,
    batch_id: str,
    dt: date,
    work_dir: Path,
    now: datetime | None = None,
    memory_limit: str = DEFAULT_MEMORY_LIMIT,
    threads: int = 2,
) -> IngestOutput:
    """Validate ``source`` against ``resource`` and write the good rows (Parquet) and the rejects
    (JSON lines) into ``work_dir``. Raises :class:`IngestError` when the file as a whole is refused."""
    import duckdb

    work_dir.mkdir(parents=True, exist_ok=True)
    now = now or datetime.now(UTC)
    report = IngestReport(resource_code=resource.code, batch_id=batch_id, dt=dt, format=fmt, loaded_at=now)
    con = connect(work_dir, memory_limit, threads)
    try:
        try:
            bad_lines = _load_raw(con, source, fmt, resource, work_dir, report, now.date())
            for item in resource.items:
                if is_id_item(item):
                    _check_id_numbers(con, item, work_dir, now.date())
        except duckdb.Error as exc:
            raise IngestError(_engine_message(exc)) from exc
        return _check_and_write(con, resource, batch_id, dt, work_dir, report, bad_lines)
    finally:
        con.close()


def _engine_message(exc: Exception) -> str:
    text = str(exc).split("\n", 1)[0]
    return f"文件无法读取 (file cannot be read): {text[:300]}"


def _load_raw(
    con: duckdb.DuckDBPyConnection,
    source: Path,
    fmt: FileFormat,
    resource: Resource,
    work_dir: Path,
    report: IngestReport,
    today: date,
) -> bool:
    """Create table ``raw`` (``_row`` + one VARCHAR per item column); True when the reader rejected
    lines (table ``bad_lines``: ``row``, ``reason``, ``line_text``)."""
    items = resource.items
    if fmt is FileFormat.JSON:
        columns: dict[str, str] = {}
        for item in items:
            columns[item.column] = "VARCHAR"
            columns[item.name] = "VARCHAR"
        spec = "{" + ", ".join(f"{_literal(k)}: 'VARCHAR'" for k in columns) + "}"
        select = ", ".join(
            f"COALESCE({_quote(i.column)}, {_quote(i.name)}) AS {_quote(i.column)}"
            if i.name != i.column
            else _quote(i.column)
            for i in items
        )
        reader = f"read_json({_literal(str(source))}, format='auto', records=true, columns={spec})"
        inner = f"SELECT row_number() OVER () AS _row, {select} FROM {reader}"
        con.execute(f"CREATE TABLE raw AS {_with_fast_ids(inner, items, today)}")
        return False

    path = _xlsx_to_csv(source, work_dir) if fmt is FileFormat.XLSX else _ensure_utf8(source, work_dir)
    options = (
        "header=true, all_varchar=true, store_rejects=true, rejects_table='bad_csv', "
        "rejects_scan='bad_csv_scan', null_padding=false"
    )
    reader = f"read_csv({_literal(str(path))}, {options})"
    headers = [row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {reader}").fetchall()]
    mapping, ignored = _header_map(items, headers)
    report.ignored_columns = ignored
    missing = [i.column for i in items if i.required and i.column not in mapping]
    if missing:
        raise IngestError(f"缺少必填列 (required columns missing): {', '.join(missing)}")
    if not mapping:
        raise IngestError("文件中没有任何信息项列 (no column of the resource in the file)")
    select = ", ".join(
        f"{_quote(mapping[i.column])} AS {_quote(i.column)}"
        if i.column in mapping
        else f"NULL::VARCHAR AS {_quote(i.column)}"
        for i in items
    )
    inner = f"SELECT row_number() OVER () AS _k, {select} FROM {reader}"
    con.execute(f"CREATE TABLE raw0 AS {_with_fast_ids(inner, items, today)}")
    con.execute(
        "CREATE TABLE bad_lines AS SELECT CAST(line - 1 AS BIGINT) AS row, "
        "string_agg(DISTINCT error_type, '; ') AS reason, any_value(csv_line) AS line_text "
        "FROM bad_csv GROUP BY line"
    )
    (bad,) = con.execute("SELECT count(*) FROM bad_lines").fetchone() or (0,)
    if not bad:
        con.execute("ALTER TABLE raw0 RENAME COLUMN _k TO _row")
        con.execute("ALTER TABLE raw0 RENAME TO raw")
        return False
    # The reader numbers good rows 1..n without the rejected lines; put the gaps back:
    # valid row k comes after every rejected row i (1-based, in order) with R_i - i < k.
    con.execute(
        "CREATE TABLE gaps AS SELECT max(row - i) AS v, max(i) AS n FROM "
        "(SELECT row, row_number() OVER (ORDER BY row) AS i FROM bad_lines) GROUP BY row - i"
    )
    con.execute(
        "CREATE TABLE raw AS SELECT r.* REPLACE (r._k + COALESCE(g.n, 0) AS _k) FROM raw0 r "
        "ASOF LEFT JOIN gaps g ON r._k > g.v ORDER BY r._k"
    )
    con.execute("ALTER TABLE raw RENAME COLUMN _k TO _row")
    con.execute("DROP TABLE raw0")
    return True


def _check_and_write(
    con: duckdb.DuckDBPyConnection,
    resource: Resource,
    batch_id: str,
    dt: date,
    work_dir: Path,
    report: IngestReport,
    bad_lines: bool,
) -> IngestOutput:
    items = resource.items
    not_empty = " OR ".join(f"{_v(i)} IS NOT NULL" for i in items)
    ids = [i for i in items if is_id_item(i)]
    joins = "".join(f" LEFT JOIN {_id_table(i)} ON {_id_table(i)}._in = {_value(i.column)}" for i in ids)
    # Stage 1: trimmed raw text (and ID results); stage 2: typed values; stage 3: reasons.
    staged = ", ".join(f"{_value(i.column)} AS {_v(i)}" for i in items)
    staged += "".join(
        f", COALESCE(raw.{_quote('_idv_' + i.column)}, {_id_table(i)}._out) AS {_idr(i)}" for i in ids
    )
    stage1 = f"SELECT raw._row, {staged} FROM raw{joins}"
    typed = ", ".join(
        f"CAST({typed_expression(i)} AS {SQL_TYPES[i.type]}) AS {_quote(i.column)}" for i in items
    )
    stage2 = f"SELECT *, {typed} FROM ({stage1}) WHERE {not_empty}"
    reasons = [r for i in items for r in reason_expressions(i)]
    # NULL when the row is fine; else its reasons joined by the record separator (concat_ws skips NULLs).
    reason_list = f"NULLIF(concat_ws(chr(30), {', '.join(reasons)}), '')" if reasons else "NULL::VARCHAR"
    columns = ", ".join(_quote(i.column) for i in items)
    con.execute(f"CREATE TABLE checked AS SELECT _row, {columns}, {reason_list} AS _reasons FROM ({stage2})")
    (total_raw,) = con.execute("SELECT count(*) FROM raw").fetchone() or (0,)
    (checked,) = con.execute("SELECT count(*) FROM checked").fetchone() or (0,)
    (rejected,) = con.execute("SELECT count(*) FROM checked WHERE _reasons IS NOT NULL").fetchone() or (0,)
    line_rejects = 0
    if bad_lines:
        (line_rejects,) = con.execute("SELECT count(*) FROM bad_lines").fetchone() or (0,)
    report.rows_empty = int(total_raw) - int(checked)
    report.rows_loaded = int(checked) - int(rejected)
    report.rows_rejected = int(rejected) + int(line_rejects)
    report.rows_total = report.rows_loaded + report.rows_rejected

    parquet: Path | None = None
    if report.rows_loaded:
        parquet = work_dir / f"part-{batch_id}.parquet"
        columns = ", ".join(_quote(i.column) for i in items)
        con.execute(
            f"COPY (SELECT {columns}, {_literal(batch_id)} AS _batch, _row FROM checked "
            f"WHERE _reasons IS NULL) TO {_literal(str(parquet))} "
            "(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 100000)"
        )

    rejects_path: Path | None = None
    if report.rows_rejected:
        rejects_path = work_dir / f"{batch_id}.rejects.jsonl"
        values = "{" + ", ".join(f"{_literal(i.column)}: r.{_quote(i.column)}" for i in items) + "}"
        parts = [
            f"SELECT c._row AS row, string_split(c._reasons, chr(30)) AS reasons, {values} AS values, NULL::VARCHAR AS line "
            "FROM (SELECT _row, _reasons FROM checked WHERE _reasons IS NOT NULL) c JOIN raw r USING (_row)"
        ]
        if bad_lines:
            parts.append(
                "SELECT row, ['line: ' || reason] AS reasons, NULL AS values, line_text AS line FROM bad_lines"
            )
        union = " UNION ALL ".join(parts)
        con.execute(f"CREATE TABLE rejected AS {union}")
        con.execute(
            f"COPY (SELECT * FROM rejected ORDER BY row) TO {_literal(str(rejects_path))} (FORMAT json)"
        )
        first = con.execute(
            f"SELECT row, reasons FROM rejected ORDER BY row LIMIT {MAX_REPORTED_REJECTS + 1}"
        ).fetchall()
        report.rejects = [
            RowReject(row=int(row), reasons=[_line_reason(r) for r in reasons])
            for row, reasons in first[:MAX_REPORTED_REJECTS]
        ]
        report.rejects_truncated = len(first) > MAX_REPORTED_REJECTS
    return IngestOutput(report=report, parquet=parquet, rejects=rejects_path)


def _line_reason(reason: str) -> str:
    if not reason.startswith("line: "):
        return reason
    kinds = [k.strip() for k in reason.removeprefix("line: ").split(";")]
    return "line: " + "; ".join(_CSV_ERROR_MESSAGES.get(k, k.lower()) for k in kinds)


def rows_to_ndjson(rows: Sequence[dict[str, Any]], target: Path) -> Path:
    """A pushed batch (a list of JSON objects) as newline-delimited JSON for :func:`ingest_file`."""
    import json

    with target.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False, default=str))
            handle.write("\n")
    return target
