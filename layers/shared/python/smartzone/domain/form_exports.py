"""Exports of a form's submissions for a department: the job, the table, CSV and XLSX.

- CSV: UTF-8 **with BOM** (``utf-8-sig``), so that Excel opens Chinese text correctly; RFC 4180
  quoting; cells that a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@`` first) get a
  leading ``'`` (CSV injection).
- XLSX: openpyxl in write-only mode (rows streamed, constant memory), one sheet, header row bold.
- Columns: submission id, form version, received (Beijing time), grid, community, submitter, the
  non-resident subjects, then one column per field (Chinese label) of every version in the
  period (the current version's order first, fields only older versions had after).
- Personal data (facts marked ``personal``) is masked with the masking policy's decision for the
  caller (:func:`smartzone.domain.masking.mask_for`) unless their role may see it unmasked.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from smartzone.domain.facts import SUBJECT_LABEL_ZH, PersonalData, SubjectType, fact
from smartzone.domain.forms import FormDefinition, Submission
from smartzone.domain.masking import MaskDecision
from smartzone.domain.timeutil import SHANGHAI, from_iso

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class ExportFormat(StrEnum):
    CSV = "csv"
    XLSX = "xlsx"


class ExportStatus(StrEnum):
    QUEUED = "queued"
    DONE = "done"
    FAILED = "failed"


CONTENT_TYPES = {
    ExportFormat.CSV: "text/csv; charset=utf-8",
    ExportFormat.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


class ExportJob(BaseModel):
    export_id: str
    form_id: str
    from_day: str
    to_day: str
    format: ExportFormat
    requested_by: str
    unmasked: bool
    """Decided when requested, from the caller's role (masking policy)."""
    status: ExportStatus = ExportStatus.QUEUED
    created_at: str
    finished_at: str | None = None
    object_key: str | None = None
    rows: int | None = None
    error: str | None = None
    columns: list[str] = Field(default_factory=list)


def _local(iso: str) -> str:
    return (
        datetime.fromtimestamp(from_iso(iso) / 1000, tz=UTC).astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")
    )


def _cell(value: Any) -> str | int | float:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, int | float):
        return value
    if isinstance(value, list | tuple | set):
        # Several values (a multiple choice, several attachments): joined the Chinese way, not repr.
        items = sorted(value, key=str) if isinstance(value, set) else value
        return "、".join(str(_cell(v)) for v in items if v is not None)
    if isinstance(value, dict):
        return "、".join(f"{k}: {_cell(v)}" for k, v in value.items())
    return str(value)


def _mask(value: Any, personal: PersonalData | None, decision: MaskDecision) -> Any:
    if personal is not None and isinstance(value, list | tuple):
        return [_mask(v, personal, decision) for v in value]
    if personal is None or value is None or not isinstance(value, str):
        return value
    if personal is PersonalData.PHONE:
        return decision.phone(value)
    if personal is PersonalData.NAME:
        return decision.name(value)
    if personal is PersonalData.ID_NUMBER:
        return decision.id_number(value)
    return decision.address(value)


def export_table(
    current: FormDefinition,
    versions: dict[int, FormDefinition],
    submissions: Iterable[Submission],
    decision: MaskDecision,
) -> tuple[list[str], list[list[Any]]]:
    """The header and rows of an export (values masked per ``decision``)."""
    fields = list(current.ordered_fields)
    names = {f.name for f in fields}
    for version in sorted(versions, reverse=True):
        for f in versions[version].ordered_fields:
            if f.name not in names:
                fields.append(f)
                names.add(f.name)
    subject_types = [t for t in SubjectType if t is not SubjectType.RESIDENT]
    header = ["提交编号", "表单版本", "提交时间", "网格", "社区", "填报人"]
    header += [f"{SUBJECT_LABEL_ZH[t]}编号" for t in subject_types]
    header += [f.label_zh for f in fields]
    rows: list[list[Any]] = []
    for s in submissions:
        row: list[Any] = [
            s.submission_id,
            s.form_version,
            _local(s.received_at),
            s.grid_id,
            s.community,
            s.submitted_by,
        ]
        for t in subject_types:
            key = s.subjects.get(t.value)
            row.append(key.split(":", 1)[1] if key and ":" in key else key)
        for f in fields:
            row.append(_mask(s.values.get(f.name), fact(f.fact).personal, decision))
        rows.append([_cell(v) for v in row])
    return header, rows


def _safe(value: str | int | float) -> str | int | float:
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def render_csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    """UTF-8 with BOM, CRLF line ends, formula-looking cells defused."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([_safe(v) for v in row])
    return buffer.getvalue().encode("utf-8-sig")


def render_xlsx(title: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    """One worksheet in openpyxl's write-only mode."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    book = Workbook(write_only=True)
    sheet = book.create_sheet(title=_sheet_title(title))
    bold = Font(bold=True)
    cells = []
    for name in header:
        cell = WriteOnlyCell(sheet, value=name)
        cell.font = bold
        cells.append(cell)
    sheet.append(cells)
    for row in rows:
        sheet.append([_safe(v) for v in row])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _sheet_title(title: str) -> str:
    cleaned = "".join(c for c in title if c not in "[]:*?/\\")
    return (cleaned or "submissions")[:31]


def export_object_key(job: ExportJob) -> str:
    """``exports/<form_id>/<export_id>.<ext>`` (no personal data in keys)."""
    return f"exports/{job.form_id}/{job.export_id}.{job.format.value}"
