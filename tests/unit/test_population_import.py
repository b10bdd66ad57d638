"""Import of source tables: declarative mappings, encodings, XLSX, value cleaning, per-row rejects."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from openpyxl import Workbook

from smartzone.domain.idnumbers import make_fake
from smartzone.population.models import Reject, SourceRow, SourceStats
from smartzone.population.readers import SourceFileError, cell_text, detect_encoding, read_rows
from smartzone.population.sources import IdCache, SourceSpec, import_source, load_specs

ROOT = Path(__file__).resolve().parents[2]
PERSON = make_fake("340291", date(1950, 3, 4), 21)  # fake county 91
SPEC = SourceSpec(
    source="visit_test",
    title="测试走访",
    file="visit_test",
    priority=4,
    data_date=date(2023, 10, 31),
    date_column="走访日期",
    columns={
        "身份证号": "id_number",
        "姓名": "name",
        "性别": "sex",
        "手机号码": "phone",
        "是否独居": "living_alone",
    },
    constants={"residence_hint": "registered"},
)
HEADER = ["身份证号", "姓名", "性别", "手机号码", "是否独居", "走访日期"]


def import_all(path: Path) -> tuple[list[SourceRow | Reject], SourceStats]:
    stats = SourceStats(source=SPEC.source, file=path.name)
    items = list(import_source(SPEC, path, IdCache(b"k", date(2026, 1, 1)), stats))
    return items, stats


def write_csv(path: Path, rows: list[list[str]], encoding: str) -> Path:
    text = "\n".join(",".join(r) for r in [HEADER, *rows]) + "\n"
    path.write_bytes(text.encode(encoding))
    return path


def test_given_the_16_shipped_mappings_when_loaded_then_each_maps_an_id_column_with_a_priority() -> None:
    specs = load_specs(ROOT / "events" / "population" / "sources")
    assert len(specs) == 16
    assert all("id_number" in s.columns.values() and s.priority >= 1 for s in specs)
    assert {"census_2020", "visit_2021", "visit_2023", "police_hukou", "health_records"} <= {
        s.source for s in specs
    }


def test_given_a_mapping_with_an_unknown_field_when_validated_then_it_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown canonical fields"):
        SourceSpec.model_validate(
            {**SPEC.model_dump(), "columns": {"身份证号": "id_number", "X": "shoe_size"}}
        )


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
def test_given_csv_in_each_encoding_when_imported_then_chinese_columns_and_values_are_read(
    tmp_path: Path, encoding: str
) -> None:
    path = write_csv(
        tmp_path / "visit_test.csv", [[PERSON, "张 三", "男", "138-0000-1111", "是", "2023/05/06"]], encoding
    )
    (row,), stats = import_all(path)
    assert isinstance(row, SourceRow)
    assert row.id_number == PERSON and row.id_key and row.row == 1 and row.data_date == "2023-05-06"
    assert row.fields == {
        "residence_hint": "registered",
        "name": "张三",
        "sex": "male",
        "phone": "13800001111",
        "living_alone": "true",
    }
    assert stats.rows == 1 and stats.valid_id == 1


def test_given_a_sample_when_detecting_encoding_then_bom_utf8_and_gb18030_are_told_apart() -> None:
    assert detect_encoding("姓名".encode("utf-8-sig")) == "utf-8-sig"
    assert detect_encoding("姓名".encode()) == "utf-8"
    assert detect_encoding("姓名".encode("gb18030")) == "gb18030"
    assert detect_encoding("姓名".encode()[:-1]) == "utf-8"  # a character cut at the sample's end


def test_given_bad_rows_when_imported_then_each_is_rejected_or_queued_with_a_reason_never_dropped(
    tmp_path: Path,
) -> None:
    rows = [
        [PERSON.lower(), "李四", "女", "", "否", ""],  # valid (lowercase x irrelevant here), own date missing
        ["3.40291E+17", "王五", "男", "", "", ""],  # spreadsheet damage → queued
        [PERSON[:17] + ("0" if PERSON[17] != "0" else "1"), "赵六", "", "", "", ""],  # check fails → queued
        ["", "", "", "", "", ""],  # empty row → rejected
        [PERSON, "多", "余", "列", "", "", "x"],  # extra cells → rejected
        [PERSON, "少"],  # missing cells → rejected
    ]
    items, stats = import_all(write_csv(tmp_path / "visit_test.csv", rows, "utf-8"))
    assert len(items) == len(rows)
    valid, damaged, typo, empty, extra, short = items
    assert isinstance(valid, SourceRow) and valid.id_key and valid.data_date == "2023-10-31"
    assert isinstance(damaged, SourceRow) and damaged.id_key is None
    assert (
        damaged.id_problems == ("spreadsheet_scientific_notation",)
        and damaged.fields["id_text"] == "3.40291E+17"
    )
    assert isinstance(typo, SourceRow) and typo.id_problems == ("check_char",)
    assert isinstance(empty, Reject) and empty.reason == "empty_row"
    assert isinstance(extra, Reject) and extra.reason == "column_count"
    assert isinstance(short, Reject) and short.reason == "column_count"
    assert (stats.rows, stats.valid_id, stats.queued, stats.rejected) == (6, 1, 2, 3)
    assert stats.id_problems == {"spreadsheet_scientific_notation": 1, "check_char": 1}


def test_given_an_xlsx_with_a_numeric_id_cell_when_imported_then_it_reads_as_scientific_notation(
    tmp_path: Path,
) -> None:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(HEADER)
    sheet.append([PERSON, "张三", "男", 13800001111, "是", date(2023, 6, 1)])
    sheet.append(
        [float(PERSON[:17] + "1"), "李四", "女", None, None, None]
    )  # Excel stored the ID as a number
    path = tmp_path / "visit_test.xlsx"
    workbook.save(path)
    (good, damaged), stats = import_all(path)
    assert (
        isinstance(good, SourceRow)
        and good.fields["phone"] == "13800001111"
        and good.data_date == "2023-06-01"
    )
    assert isinstance(damaged, SourceRow) and damaged.id_problems == ("spreadsheet_scientific_notation",)
    assert stats.rows == 2


def test_given_cells_when_shown_as_text_then_numbers_keep_15_significant_digits() -> None:
    assert cell_text(340291199001021234) == "3.40291199001021E+17"
    assert cell_text(340291900102123) == "340291900102123"
    assert cell_text(None) == "" and cell_text(" 张三 ") == "张三"


def test_given_an_unsupported_or_empty_file_when_read_then_a_clear_error_is_raised(tmp_path: Path) -> None:
    with pytest.raises(SourceFileError):
        read_rows(tmp_path / "table.xls")
    (tmp_path / "empty.csv").write_bytes(b"")
    with pytest.raises(SourceFileError):
        read_rows(tmp_path / "empty.csv")


def test_given_a_file_without_the_id_column_when_imported_then_the_source_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "visit_test.csv"
    path.write_text("姓名,性别\n张三,男\n", encoding="utf-8")
    with pytest.raises(ValueError, match="ID column"):
        import_all(path)
