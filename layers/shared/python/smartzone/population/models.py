"""The population pipeline's data contract (pure; shared by the local merge and the cloud workflow).

Flow: source file → :class:`SourceRow` (import: mapping + ID parsing + HMAC key) → partitions by the
first hex characters of ``id_key`` → ``merge_partition`` → :class:`GoldenRecord` per valid ID and
:class:`ReviewItem` for what a steward must look at → :class:`MergeReport`.

Contract for storage / API code (helper C2):

- ``id_key`` (HMAC-SHA256 hex of the normalised ID, :func:`smartzone.domain.idnumbers.id_key`) is
  the ONLY lookup key of a person. ``GoldenRecord.id_number`` and every field value are PLAIN
  personal data: encrypt them at rest and mask them on output; never log them.
- Golden field values are strings (``sex``: ``male``/``female``; ``birth_date``: ``YYYY-MM-DD``;
  ``phone``: digits; booleans: ``true``/``false``); ``fields[name].lineage`` says which source
  table, row (1-based data row) and data date the value came from and which rule chose it.
- ``ReviewItem.item_id`` is deterministic (same input → same id across runs), so a
  :class:`StewardDecision` can refer to it. Decisions are fed back into the next run as the
  top-priority source (rule ``steward_decision``): ``set_field`` fixes a golden field,
  ``link_row`` gives a queued row (no valid ID) the ID key it belongs to, ``dismiss`` closes an
  item without changing data (it is not raised again while its candidate values stay the same).
- ``MergeReport.reconciliation``: ``input_rows == merged_rows + queued_rows + rejected_rows``.
- ``classification`` on a golden record is filled by :mod:`smartzone.population.classify`.

:class:`SourceRow` is a NamedTuple and :class:`PartitionResult` holds golden records as plain dicts
(cheap: a million rows are merged per benchmark run); the rest are pydantic models.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

STEWARD_SOURCE = "steward"
"""The source name of steward decisions (priority 0: above every table)."""


class SourceRow(NamedTuple):
    """One imported row, mapped to canonical field names (hot path: plain tuple)."""

    source: str
    """Source table id, e.g. ``census_2020``."""
    row: int
    """1-based data row in the source file (header excluded)."""
    data_date: str
    """``YYYY-MM-DD``: the date of the data (the row's own date column, else the source's)."""
    priority: int
    """Source priority: smaller wins (steward decisions are 0)."""
    id_key: str | None
    """HMAC of the normalised ID; None when the ID is not valid."""
    id_number: str | None
    """The normalised ID (plain; PERSONAL DATA); None when not valid."""
    id_kind: str | None
    id_problems: tuple[str, ...]
    """Problem codes of the ID (empty when valid; contradictions are added here too)."""
    fields: dict[str, str]
    """Canonical field → cleaned value (missing fields absent). ``id_text`` holds an invalid ID's text."""


class ReviewReason(StrEnum):
    INVALID_ID = "invalid_id"
    """A row without a valid ID (problems in ``details``)."""
    FIELD_CONFLICT = "field_conflict"
    """Sources disagree on a watched field (name, sex, birth date)."""
    CONTRADICTS_ID = "contradicts_id"
    """A source's sex / birth date contradicts the ID number."""
    UNRESOLVED_TIE = "unresolved_tie"
    """The rules could not choose between values (a deterministic choice was made meanwhile)."""
    NEW_VALUES_SINCE_DECISION = "new_values_since_decision"
    """A field a steward decided has new candidate values."""


class DecisionAction(StrEnum):
    SET_FIELD = "set_field"
    LINK_ROW = "link_row"
    DISMISS = "dismiss"


class Lineage(BaseModel):
    """Where a golden value came from."""

    model_config = ConfigDict(frozen=True)

    source: str
    row: int
    source_date: str
    rule: str
    """``steward_decision``, ``id_derived``, ``source_priority``, ``most_recent``, ``most_complete``,
    ``most_frequent`` or ``deterministic_fallback`` (then an ``unresolved_tie`` review item exists)."""
    candidates: int = 1
    """How many rows offered a value for this field."""


class GoldenField(BaseModel):
    model_config = ConfigDict(frozen=True)

    value: str
    lineage: Lineage


class SourceRef(BaseModel):
    model_config = ConfigDict(frozen=True)

    source: str
    row: int
    source_date: str


class GoldenRecord(BaseModel):
    """The trusted record of one person (one per valid ID)."""

    id_key: str
    id_number: str
    """Normalised 18-character ID (or old foreign 15-character); PERSONAL DATA."""
    id_kind: str
    converted: bool = False
    """The ID was seen only in its 15-digit form and converted."""
    fields: dict[str, GoldenField]
    sources: list[SourceRef]
    """Every row merged into this record, sorted."""
    rules_version: str
    classification: dict[str, Any] = Field(default_factory=dict)


class Candidate(BaseModel):
    model_config = ConfigDict(frozen=True)

    value: str
    source: str
    row: int
    source_date: str


class ReviewItem(BaseModel):
    """Something a data steward must look at (the review queue)."""

    item_id: str
    reason: ReviewReason
    id_key: str | None = None
    field: str | None = None
    candidates: list[Candidate] = Field(default_factory=list)
    chosen: str | None = None
    """The value the rules chose meanwhile (None for invalid-ID rows)."""
    source: str | None = None
    """For invalid-ID rows: the row's source and row number."""
    row: int | None = None
    details: list[str] = Field(default_factory=list)
    """Problem codes (e.g. ID problems: ``check_char``, ``spreadsheet_trailing_zeros``)."""
    row_fields: dict[str, str] = Field(default_factory=dict)
    """For invalid-ID rows: the row's fields (PERSONAL DATA), so nothing is lost."""
    reopens: str | None = None
    """The decision this item re-opens: the item was decided, and its candidate values are no longer
    a subset of what the steward saw (``candidates_seen``); None otherwise."""


class StewardDecision(BaseModel):
    """A data steward's decision; the next run applies it as the top-priority source."""

    decision_id: str
    action: DecisionAction
    item_id: str | None = None
    id_key: str | None = None
    """``set_field``: the person; ``link_row``: the person the row belongs to."""
    id_number: str | None = None
    """``link_row``: the normalised valid ID (PERSONAL DATA) the row belongs to."""
    field: str | None = None
    value: str | None = None
    source: str | None = None
    """``link_row``: the queued row's source and row number."""
    row: int | None = None
    candidates_seen: list[str] = Field(default_factory=list)
    """Values the steward saw; a new value re-opens review (``new_values_since_decision``)."""
    steward: str
    decided_at: str
    """ISO-8601 UTC."""
    note: str = ""


class Reject(BaseModel):
    """A row that could not be imported at all (counted as rejected, with its reason)."""

    source: str
    row: int
    reason: str
    detail: str = ""


class SourceStats(BaseModel):
    source: str
    file: str
    rows: int = 0
    valid_id: int = 0
    queued: int = 0
    rejected: int = 0
    converted_15: int = 0
    id_problems: dict[str, int] = Field(default_factory=dict)


class Reconciliation(BaseModel):
    input_rows: int
    merged_rows: int
    queued_rows: int
    rejected_rows: int

    @property
    def balanced(self) -> bool:
        return self.input_rows == self.merged_rows + self.queued_rows + self.rejected_rows


class MergeReport(BaseModel):
    run_id: str
    rules_version: str
    started_at: str
    finished_at: str
    sources: list[SourceStats]
    reconciliation: Reconciliation
    balanced: bool
    golden_records: int
    review_items: dict[str, int]
    """Review items by reason."""
    id_kinds: dict[str, int]
    partitions: int
    elapsed_s: float
    rows_per_s: float
    peak_memory_mb: float | None = None
    classification: dict[str, dict[str, int]] = Field(default_factory=dict)
    accuracy: dict[str, Any] | None = None


@dataclass(slots=True)
class PartitionResult:
    """What :func:`smartzone.population.merge.merge_partition` returns for one partition.

    ``golden`` holds plain dicts in exactly :class:`GoldenRecord`'s shape (JSON-ready; building
    pydantic models for 100,000s of records would dominate the merge's time): use
    ``GoldenRecord.model_validate(d)`` where a model is wanted.
    """

    golden: list[dict[str, Any]]
    reviews: list[ReviewItem]
    merged_rows: int
