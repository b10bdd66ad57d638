"""Streaming readers of source tables: CSV (utf-8 / utf-8-sig / gb18030 detected) and XLSX.

Memory does not depend on file size: CSV is read line by line, XLSX with openpyxl's read-only
mode (rows streamed from the zipped XML). Every cell comes back as a string, as a spreadsheet
would display it: numbers keep at most 15 significant digits (Excel's precision), so an ID number
that a spreadsheet stored as a number shows up as scientific notation and is flagged, never repaired.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any

SAMPLE_BYTES = 1 << 16
TABLE_SUFFIXES = (".csv", ".xlsx")


class SourceFileError(ValueError):
    """A source file that cannot be read at all (wrong type, no header)."""


def detect_encoding(sample: bytes) -> str:
    """``utf-8-sig`` (BOM), ``utf-8`` (decodes cleanly) or ``gb18030`` (the Chinese superset of GBK)."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        decoder.decode(sample, final=False)  # a character cut at the sample's end is fine
    except UnicodeDecodeError:
        return "gb18030"
    return "utf-8"


def cell_text(value: Any) -> str:
    """A cell as text, the way a spreadsheet shows it (15 significant digits for numbers)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, int):
        return str(value) if abs(value) < 10**15 else f"{value:.15g}".upper()
    if isinstance(value, float):
        return f"{value:.15g}".upper()
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value).strip()


def read_rows(path: Path) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    """The header and an iterator of ``(data row number from 1, cells)`` of a CSV or XLSX file."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _read_csv(path)
    if suffix == ".xlsx":
        return _read_xlsx(path)
    raise SourceFileError(f"unsupported file type {suffix!r} (CSV or XLSX)")


def _read_csv(path: Path) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    with path.open("rb") as raw:
        encoding = detect_encoding(raw.read(SAMPLE_BYTES))
    handle: IO[str] = open(path, encoding=encoding, errors="replace", newline="")  # noqa: SIM115
    reader = csv.reader(handle)
    header = next(reader, None)
    if header is None:
        handle.close()
        raise SourceFileError("empty file: no header row")
    header = [h.strip().lstrip("\ufeff") for h in header]

    def rows() -> Iterator[tuple[int, list[str]]]:
        try:
            yield from enumerate(reader, start=1)
        finally:
            handle.close()

    return header, rows()


def _read_xlsx(path: Path) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    from openpyxl import load_workbook  # lazy: only XLSX imports need it

    workbook = load_workbook(path, read_only=True, data_only=True)
    sheet = workbook.worksheets[0]
    values = sheet.iter_rows(values_only=True)
    first = next(values, None)
    if first is None:
        workbook.close()
        raise SourceFileError("empty sheet: no header row")
    header = [cell_text(v) for v in first]
    while header and not header[-1]:
        header.pop()

    def rows() -> Iterator[tuple[int, list[str]]]:
        try:
            for number, cells in enumerate(values, start=1):
                yield number, [cell_text(v) for v in cells]
        finally:
            workbook.close()

    return header, rows()


def write_csv_text(header: list[str], rows: list[list[str]]) -> str:
    """A small CSV document (for tests and examples)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()
