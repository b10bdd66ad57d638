"""Declarative source mappings and the import of one source table into :class:`SourceRow` s.

One JSON file per source table in ``events/population/sources/`` (see docs/population.md)::

    {"source": "census_2020", "title": "第七次全国人口普查", "file": "census_2020",
     "priority": 3, "data_date": "2020-11-01", "date_column": null,
     "columns": {"公民身份号码": "id_number", "姓名": "name", "性别": "sex", ...},
     "constants": {"residence_hint": "registered"}}

``file`` is the file's stem (``.csv`` or ``.xlsx`` is found in the source directory); ``priority``:
smaller wins (1 = most trusted; steward decisions are 0); ``date_column``: a column holding the
row's own date of data (else ``data_date``). Unknown canonical fields are refused when the mapping
is loaded. Values are cleaned per field type (:data:`FIELD_TYPES`); a value that cannot be read is
left out of the row (and counted), never guessed.

Import never drops a row: each becomes a :class:`SourceRow` (valid ID: ``id_key`` set; invalid:
``id_key`` None and ``id_problems`` say why, the merge queues it for review) or a :class:`Reject`
(the row itself cannot be read: wrong number of cells, entirely empty).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from smartzone.domain import idnumbers
from smartzone.population.models import Reject, SourceRow, SourceStats
from smartzone.population.readers import TABLE_SUFFIXES, read_rows

FIELD_TYPES: dict[str, str] = {
    "id_number": "id",
    "name": "name",
    "sex": "sex",
    "birth_date": "date",
    "phone": "phone",
    "address": "text",
    "hukou_address": "text",
    "ethnicity": "text",
    "living_alone": "bool",
    "disability_level": "text",
    "low_income": "bool",
    "lon": "float",
    "lat": "float",
    "residence_hint": "text",
}
"""Canonical fields a source may map columns to, with their type."""


class SourceSpec(BaseModel):
    """The declarative mapping of one source table."""

    model_config = ConfigDict(frozen=True)

    source: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    title: str
    file: str
    priority: int = Field(ge=1)
    data_date: date
    date_column: str | None = None
    columns: dict[str, str]
    constants: dict[str, str] = Field(default_factory=dict)

    @field_validator("columns")
    @classmethod
    def _known_fields(cls, columns: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(columns.values()) - set(FIELD_TYPES))
        if unknown:
            raise ValueError(f"unknown canonical fields: {unknown}")
        if "id_number" not in columns.values():
            raise ValueError("a source must map one column to id_number")
        return columns


def load_specs(directory: Path) -> list[SourceSpec]:
    """Every ``*.json`` mapping in a directory, sorted by source name."""
    specs = [
        SourceSpec.model_validate(json.loads(p.read_text(encoding="utf-8"))) for p in directory.glob("*.json")
    ]
    names = [s.source for s in specs]
    if len(names) != len(set(names)):
        raise ValueError("duplicate source names in mappings")
    return sorted(specs, key=lambda s: s.source)


def find_file(spec: SourceSpec, directory: Path) -> Path | None:
    for suffix in TABLE_SUFFIXES:
        candidate = directory / f"{spec.file}{suffix}"
        if candidate.exists():
            return candidate
    return None


# -- value cleaning -----------------------------------------------------------------------------------
_SPACES = re.compile(r"\s+")
_NOT_DIGIT = re.compile(r"\D")
_TRUE = frozenset({"是", "有", "Y", "YES", "TRUE", "1", "√"})
_FALSE = frozenset({"否", "无", "N", "NO", "FALSE", "0", "×"})


def _nfkc(text: str) -> str:
    if text.isascii() or unicodedata.is_normalized("NFKC", text):
        return text
    return unicodedata.normalize("NFKC", text)


def clean_name(text: str) -> str | None:
    value = "".join(_nfkc(text).split())
    return value or None


def clean_text(text: str) -> str | None:
    value = " ".join(_nfkc(text).split())
    return value or None


def clean_sex(text: str) -> str | None:
    sex = idnumbers.parse_sex(text)
    return sex.value if sex else None


def clean_date(text: str) -> str | None:
    if len(text) == 10 and text[4] == "-" and text[7] == "-":  # the common ISO form, fast
        try:
            return date.fromisoformat(text).isoformat()
        except ValueError:
            return None
    born = idnumbers.parse_birth_date(text)
    return born.isoformat() if born else None


def clean_phone(text: str) -> str | None:
    digits = _NOT_DIGIT.sub("", _nfkc(text))
    if digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    return digits if 7 <= len(digits) <= 12 else None


def clean_bool(text: str) -> str | None:
    value = _nfkc(text).strip().upper()
    if value in _TRUE:
        return "true"
    if value in _FALSE:
        return "false"
    return None


def clean_float(text: str) -> str | None:
    try:
        return repr(float(_nfkc(text)))
    except ValueError:
        return None


CLEANERS: dict[str, Callable[[str], str | None]] = {
    "name": clean_name,
    "text": clean_text,
    "sex": clean_sex,
    "date": clean_date,
    "phone": clean_phone,
    "bool": clean_bool,
    "float": clean_float,
}


GOLDEN_FIELDS = frozenset(FIELD_TYPES) - {"id_number"}
"""Fields a golden record holds values of (what a steward's ``set_field`` may set)."""
_CHOICES: dict[str, tuple[str, ...]] = {
    "sex": ("male", "female"),
    "bool": ("true", "false"),
    "residence_hint": ("registered", "floating"),
}


def steward_value(field: str, value: str, *, today: date | None = None) -> str:
    """A steward's ``set_field`` value as the golden value of ``field``, type-checked.

    Coded fields must be given in their golden form (``sex``: ``male``/``female``; booleans
    ``true``/``false``; ``residence_hint``: ``registered``/``floating``; ``birth_date``: a real,
    past ``YYYY-MM-DD``); free text, phones and coordinates are cleaned as a source's would be.
    ``ValueError`` says what is expected (never echoing the value)."""
    if field not in GOLDEN_FIELDS:
        raise ValueError(f"field: {field!r} is not a golden field ({', '.join(sorted(GOLDEN_FIELDS))})")
    kind = FIELD_TYPES[field]
    choices = _CHOICES.get(field) or _CHOICES.get(kind)
    if choices is not None:
        if value not in choices:
            raise ValueError(f"value: {field} must be one of {', '.join(choices)}")
        return value
    if kind == "date":
        born = None
        if len(value) == 10 and value[4] == "-" and value[7] == "-" and value.isascii():
            try:
                born = date.fromisoformat(value)
            except ValueError:
                born = None
        if born is None or born < idnumbers.EARLIEST_BIRTH or born > (today or date.today()):
            raise ValueError(f"value: {field} must be a real, past date written YYYY-MM-DD")
        return value
    cleaned = CLEANERS[kind](value)
    if cleaned is None:
        raise ValueError(f"value: not a valid {field} ({kind})")
    return cleaned


MEMO_TYPES = frozenset({"sex", "bool", "text"})
"""Field types whose cleaned values are memoised per column (few distinct values, or repeated)."""
MEMO_LIMIT = 1 << 16
_MISS = object()


# -- the ID cache (the hot path parses each distinct ID text once) -----------------------------------
IdEntry = tuple[str | None, str | None, str | None, tuple[str, ...], str]


class IdCache:
    """raw ID text → ``(id_key, normalised, kind, problems, normalised text)``; bounded."""

    def __init__(self, secret: bytes, today: date, limit: int = 1 << 18) -> None:
        self.secret = secret
        self.today = today
        self.limit = limit
        self._cache: dict[str, IdEntry] = {}

    def lookup(self, raw: str) -> IdEntry:
        hit = self._cache.get(raw)
        if hit is not None:
            return hit
        parsed = idnumbers.parse(raw, today=self.today)
        entry: IdEntry
        if parsed.ok and parsed.normalised is not None:
            kind = parsed.kind.value if parsed.kind else None
            entry = (
                idnumbers.id_key(parsed.normalised, self.secret),
                parsed.normalised,
                kind,
                (),
                parsed.normalised,
            )
        else:
            entry = (None, None, None, tuple(p.code.value for p in parsed.problems), idnumbers.normalise(raw))
        if len(self._cache) >= self.limit:
            self._cache.clear()
        self._cache[raw] = entry
        return entry


# -- import --------------------------------------------------------------------------------------------
def import_source(
    spec: SourceSpec, path: Path, cache: IdCache, stats: SourceStats
) -> Iterator[SourceRow | Reject]:
    """Stream one source file as SourceRows (and Rejects), updating ``stats`` as it goes."""
    header, rows = read_rows(path)
    positions = {name: i for i, name in enumerate(header)}
    missing = [column for column in spec.columns if column not in positions]
    id_column = next(c for c, f in spec.columns.items() if f == "id_number")
    if id_column in missing:
        raise ValueError(f"{spec.source}: ID column {id_column!r} not in the file's header")
    plan: list[tuple[int, str, Callable[[str], str | None], dict[str, str | None] | None]] = [
        (
            positions[column],
            field,
            CLEANERS[FIELD_TYPES[field]],
            {} if FIELD_TYPES[field] in MEMO_TYPES else None,
        )
        for column, field in spec.columns.items()
        if field != "id_number" and column in positions
    ]
    id_index = positions[id_column]
    date_index = positions.get(spec.date_column) if spec.date_column else None
    width = len(header)
    default_date = spec.data_date.isoformat()
    constants = dict(spec.constants)
    date_memo: dict[str, str] = {}
    source, priority = spec.source, spec.priority
    problems_count = stats.id_problems
    n_rows = n_rejected = n_queued = n_valid = n_converted = 0  # pydantic attribute writes are slow
    try:
        for number, cells in rows:
            n_rows += 1
            if len(cells) != width and (len(cells) < width or any(cells[width:])):
                if not any(c.strip() for c in cells):
                    reason, detail = "empty_row", ""
                else:
                    reason, detail = "column_count", f"{len(cells)} cells, header has {width}"
                n_rejected += 1
                yield Reject(source=source, row=number, reason=reason, detail=detail)
                continue
            if not any(cells):
                n_rejected += 1
                yield Reject(source=source, row=number, reason="empty_row")
                continue
            fields = dict(constants)
            for index, field, clean, memo in plan:
                text = cells[index]
                if text:
                    if memo is None:
                        value = clean(text)
                    else:
                        value = memo.get(text, _MISS)  # type: ignore[arg-type]
                        if value is _MISS:
                            value = clean(text)
                            if len(memo) >= MEMO_LIMIT:
                                memo.clear()
                            memo[text] = value
                    if value is not None:
                        fields[field] = value  # type: ignore[assignment]
            row_date = default_date
            if date_index is not None:
                text = cells[date_index]
                row_date = date_memo.get(text) or ""
                if not row_date:
                    row_date = date_memo[text] = clean_date(text) or default_date
                    if len(date_memo) >= MEMO_LIMIT:
                        date_memo.clear()
            key, normalised, kind, problems, id_text = cache.lookup(cells[id_index])
            if key is None:
                n_queued += 1
                for code in problems:
                    problems_count[code] = problems_count.get(code, 0) + 1
                if id_text:
                    fields["id_text"] = id_text
            else:
                n_valid += 1
                if kind == "converted_from_15":
                    n_converted += 1
            yield SourceRow(source, number, row_date, priority, key, normalised, kind, problems, fields)
    finally:
        stats.rows += n_rows
        stats.rejected += n_rejected
        stats.queued += n_queued
        stats.valid_id += n_valid
        stats.converted_15 += n_converted
