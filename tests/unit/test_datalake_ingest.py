"""Ingest of department files (CSV, XLSX, JSON) into Parquet: rejects per row, good rows kept."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from smartzone.datalake import layout
from smartzone.datalake.ingest import IngestError, id_fast_check, ingest_file, rows_to_ndjson
from smartzone.datalake.layout import FileFormat
from smartzone.domain.idnumbers import parse
from tests.support.datalake import HEADER, csv_text, good_row, person_id, resource

NOW = datetime(2025, 3, 1, 2, 0, tzinfo=UTC)
DT = date(2025, 3, 1)
RES = resource()


def _ingest(tmp_path: Path, name: str, content: str | bytes, fmt: FileFormat):  # type: ignore[no-untyped-def]
    source = tmp_path / name
    if isinstance(content, bytes):
        source.write_bytes(content)
    else:
        source.write_text(content, encoding="utf-8")
    return ingest_file(source, fmt, RES, batch_id="b1", dt=DT, work_dir=tmp_path / "work", now=NOW)


def _parquet_rows(path: Path) -> list[dict[str, object]]:
    con = duckdb.connect()
    cursor = con.execute(f"SELECT * FROM read_parquet('{path}') ORDER BY _row")
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def test_given_a_csv_with_bad_rows_when_ingested_then_good_rows_are_stored_and_bad_ones_reported(
    tmp_path: Path,
) -> None:
    bad_id = person_id(2)[:-1] + ("0" if person_id(2)[-1] != "0" else "1")
    rows = [
        good_row(1),
        [bad_id, "李四", "", "G01", "abc", "", "2024-13-01", "", "maybe"],  # row 2: four problems
        [person_id(3), "", "", "G01", "30", "", "", "", ""],  # row 3: name missing
        [
            person_id(4),
            "王五",
            "",
            "G02",
            "1",
            "2",
            "2024-01-01",
            "",
            "否",
            "extra",
        ],  # row 4: too many fields
        good_row(5),
    ]
    out = _ingest(tmp_path, "in.csv", csv_text(rows), FileFormat.CSV)

    report = out.report
    assert (report.rows_total, report.rows_loaded, report.rows_rejected) == (5, 2, 3)
    by_row = {r.row: r.reasons for r in report.rejects}
    assert sorted(by_row) == [2, 3, 4]
    assert [r.split(":")[0] for r in by_row[2]] == ["id_number", "age", "registered_on", "lives_alone"]
    assert "check_char" in by_row[2][0]
    assert by_row[3] == ["name: 必填项为空 (required)"]
    assert by_row[4] == ["line: 该行字段过多 (too many fields)"]
    assert all(bad_id not in reason for reasons in by_row.values() for reason in reasons)  # no values

    stored = _parquet_rows(out.parquet)  # type: ignore[arg-type]
    assert [r["_row"] for r in stored] == [1, 5]
    first = stored[0]
    assert first["id_number"] == person_id(1) and first["age"] == 21 and first["income"] == 1010.5
    assert first["registered_on"] == date(2024, 2, 2)
    assert first["updated_at"] == datetime(2024, 4, 30, 17, 0)  # 01:00+08:00 stored as UTC
    assert first["lives_alone"] is False and first["_batch"] == "b1"

    rejects = [json.loads(line) for line in out.rejects.read_text(encoding="utf-8").splitlines()]  # type: ignore[union-attr]
    assert [r["row"] for r in rejects] == [2, 3, 4]
    assert rejects[0]["values"]["age"] == "abc"  # the raw values are kept for the department to fix
    assert rejects[2]["line"].startswith(person_id(4))


def test_given_rows_after_a_broken_line_when_ingested_then_row_numbers_follow_the_file(
    tmp_path: Path,
) -> None:
    rows = [good_row(1), ["x", "y"], ["a", "b", "c"], good_row(4), [], good_row(6)]
    text = csv_text([r for r in rows if r]).replace(
        ",".join(good_row(4)) + "\n", ",".join(good_row(4)) + "\n\n"
    )
    out = _ingest(tmp_path, "in.csv", text, FileFormat.CSV)
    assert sorted(r.row for r in out.report.rejects) == [2, 3]
    assert [r["_row"] for r in _parquet_rows(out.parquet)] == [1, 4, 5]  # type: ignore[arg-type]


def test_given_chinese_headers_and_gb18030_when_ingested_then_columns_match_by_item_name(
    tmp_path: Path,
) -> None:
    header = "公民身份号码,姓名,年龄,备注"
    content = csv_text([[person_id(1), "张三", "41", "无"]], header=header).encode("gb18030")
    out = _ingest(tmp_path, "in.csv", content, FileFormat.CSV)
    assert out.report.rows_loaded == 1 and out.report.ignored_columns == ["备注"]
    (row,) = _parquet_rows(out.parquet)  # type: ignore[arg-type]
    assert (row["name"], row["age"], row["phone"]) == ("张三", 41, None)


def test_given_a_required_column_missing_when_ingested_then_the_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="name"):
        _ingest(tmp_path, "in.csv", "id_number,age\n" + person_id(1) + ",3\n", FileFormat.CSV)


def test_given_an_xlsx_when_ingested_then_typed_cells_and_bad_rows_are_handled(tmp_path: Path) -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(HEADER.split(","))
    sheet.append(
        [
            person_id(1),
            "张三",
            "13800000001",
            "G01",
            30,
            1234.5,
            datetime(2024, 1, 2),
            datetime(2024, 5, 1, 9, 30),
            True,
        ]
    )
    sheet.append(
        [3.40291e17, "李四", None, "G01", "thirty", None, None, None, None]
    )  # damaged by a spreadsheet
    sheet.append([None] * 9)  # an empty row: skipped, not rejected
    sheet.append([person_id(4), "王五", None, "G02", 44.0, None, "2024/03/04", None, "否"])
    source = tmp_path / "in.xlsx"
    book.save(source)

    out = ingest_file(source, FileFormat.XLSX, RES, batch_id="b1", dt=DT, work_dir=tmp_path / "w", now=NOW)
    assert (out.report.rows_loaded, out.report.rows_rejected, out.report.rows_empty) == (2, 1, 1)
    (reject,) = out.report.rejects
    assert (
        reject.row == 2
        and reject.reasons[0].startswith("id_number:")
        and reject.reasons[1].startswith("age:")
    )
    stored = _parquet_rows(out.parquet)  # type: ignore[arg-type]
    assert [r["_row"] for r in stored] == [1, 4]
    assert stored[0]["registered_on"] == date(2024, 1, 2) and stored[0]["lives_alone"] is True
    assert stored[0]["updated_at"] == datetime(2024, 5, 1, 1, 30)
    assert stored[1]["age"] == 44 and stored[1]["registered_on"] == date(2024, 3, 4)


def test_given_pushed_json_rows_when_ingested_then_values_of_any_json_type_are_checked(
    tmp_path: Path,
) -> None:
    rows: list[dict[str, Any]] = [
        {"id_number": person_id(1), "name": "张三", "age": 30, "income": 12.5, "lives_alone": True},
        {
            "公民身份号码": " " + person_id(2).lower() + " ",
            "姓名": "李四",
            "age": "31",
        },  # Chinese keys, lower x
        {"id_number": person_id(3), "name": "王五", "age": 1.5, "updated_at": 1714525200000},
        {"id_number": "123", "name": None},
    ]
    source = rows_to_ndjson(rows, tmp_path / "push.ndjson")
    out = ingest_file(source, FileFormat.JSON, RES, batch_id="b1", dt=DT, work_dir=tmp_path / "w", now=NOW)
    assert (out.report.rows_loaded, out.report.rows_rejected) == (2, 2)
    assert {r.row: [x.split(":")[0] for x in r.reasons] for r in out.report.rejects} == {
        3: ["age"],
        4: ["id_number", "name"],
    }
    stored = _parquet_rows(out.parquet)  # type: ignore[arg-type]
    assert [r["id_number"] for r in stored] == [person_id(1), person_id(2).upper()]  # normalised


def test_given_a_json_array_file_when_ingested_then_it_loads_like_ndjson(tmp_path: Path) -> None:
    content = json.dumps(
        [{"id_number": person_id(1), "name": "张三"}, {"id_number": person_id(2), "name": "李四"}]
    )
    out = _ingest(tmp_path, "in.json", content, FileFormat.JSON)
    assert out.report.rows_loaded == 2 and out.rejects is None


def test_given_malformed_json_when_ingested_then_the_file_is_refused_with_the_reason(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="cannot be read"):
        _ingest(tmp_path, "in.json", '[{"id_number": "1", ', FileFormat.JSON)


def test_given_id_numbers_when_checked_by_the_sql_fast_path_then_it_accepts_only_what_parse_accepts() -> None:
    """The fast path is conservative: everything it accepts, ``parse`` accepts unchanged."""
    samples = [person_id(n) for n in range(200)]
    samples += [s[:-1] + c for s in samples[:50] for c in "0X"]  # wrong check characters among them
    samples += [
        "110101" + "20991231" + "0011",
        "990101199001011234",
        "34029119900230123X",
        "81000019900101001X",
    ]
    today = date(2025, 3, 1)
    con = duckdb.connect()
    con.execute("CREATE TABLE t (s VARCHAR)")
    con.executemany("INSERT INTO t VALUES (?)", [[s] for s in samples])
    verdicts = con.execute(f"SELECT s, COALESCE({id_fast_check('s', today)}, false) FROM t").fetchall()
    assert len(verdicts) == len(samples)
    for sample, fast in verdicts:
        number = parse(sample, today=today)
        if fast:
            assert number.ok and number.normalised == sample, sample
        elif number.ok and number.kind == "resident_18":
            pytest.fail(f"fast path refused a canonical valid number {sample}")


def test_given_a_resource_code_when_laid_out_then_keys_follow_the_partition_scheme() -> None:
    code = "101001000/000001"
    assert (
        layout.parquet_key(code, DT, "b1")
        == "datalake/resource=101001000-000001/dt=2025-03-01/part-b1.parquet"
    )
    assert layout.rejects_key(code, DT, "b1") == "rejects/101001000-000001/dt=2025-03-01/b1.jsonl"
    assert layout.table_name(code) == "r_101001000_000001"
    dropped = layout.parse_incoming_key("incoming/101001000-000001/三月.XLSX")
    assert (dropped.code, dropped.format, dropped.processed_key) == (
        code,
        FileFormat.XLSX,
        "processed/101001000-000001/三月.XLSX",
    )
    for bad in ("incoming/x/a.csv", "incoming/101001000-000001/a.txt", "incoming/101001000-000001/d/a.csv"):
        with pytest.raises(ValueError):
            layout.parse_incoming_key(bad)
