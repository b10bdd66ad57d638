"""Merge rows of one ID-key partition into golden records (pure; the unit of the cloud fan-out).

``merge_partition(rows, rules, decisions)`` groups rows by ``id_key``, chooses every field's golden
value with :mod:`smartzone.population.rules`, keeps its lineage, and raises review items for
disagreements (name), contradictions with the ID (sex, birth date), unresolved ties and steward
decisions that new values have re-opened. Steward ``set_field`` decisions are the top-priority
source; ``dismiss`` closes an item while its candidate values stay the same. The same rule holds
for every decided item: while its candidate values are a subset of the decision's
``candidates_seen`` it stays closed (not emitted); once they are not, it is emitted with
``reopens`` = the decision's id, and the store opens it again. Output is sorted
(records by ``id_key``, items by ``item_id``), so it never depends on input order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from smartzone.domain import idnumbers
from smartzone.population.models import (
    STEWARD_SOURCE,
    Candidate,
    DecisionAction,
    PartitionResult,
    ReviewItem,
    ReviewReason,
    SourceRow,
    StewardDecision,
)
from smartzone.population.rules import STEWARD, Rules, choose
from smartzone.population.rules import Candidate as RuleCandidate

SKIPPED_FIELDS = frozenset({"id_text"})
ID_DERIVED_FIELDS = ("sex", "birth_date")


def partition_of(id_key: str, prefix: int) -> str:
    """The partition of a key: its first ``prefix`` hex characters (16**prefix partitions)."""
    return id_key[:prefix]


def item_id(*parts: object) -> str:
    """Deterministic review-item id from what identifies the item."""
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()[:20]


def _date_int(text: str) -> int:
    return int(text[0:4]) * 10000 + int(text[5:7]) * 100 + int(text[8:10])


class Decisions:
    """Steward decisions indexed for the merge."""

    def __init__(self, decisions: Iterable[StewardDecision] = ()) -> None:
        self.set_field: dict[tuple[str, str], StewardDecision] = {}
        self.dismissed: dict[str, StewardDecision] = {}
        self.links: dict[tuple[str, int], StewardDecision] = {}
        self.by_item: dict[str, StewardDecision] = {}
        for decision in sorted(decisions, key=lambda d: (d.decided_at, d.decision_id)):  # later wins
            if decision.item_id:
                self.by_item[decision.item_id] = decision
            if decision.action is DecisionAction.SET_FIELD and decision.id_key and decision.field:
                self.set_field[(decision.id_key, decision.field)] = decision
            elif decision.action is DecisionAction.DISMISS and decision.item_id:
                self.dismissed[decision.item_id] = decision
            elif decision.action is DecisionAction.LINK_ROW and decision.source and decision.row is not None:
                self.links[(decision.source, decision.row)] = decision


def _candidates(items: list[RuleCandidate]) -> list[Candidate]:
    return [Candidate(value=c[4], source=c[2], row=c[3], source_date=c[5]) for c in sorted(items)]


def merge_partition(
    rows: Iterable[SourceRow], rules: Rules, decisions: Decisions | Iterable[StewardDecision] = ()
) -> PartitionResult:
    """Golden records (as plain dicts in :class:`GoldenRecord`'s shape) and review items of one partition."""
    if not isinstance(decisions, Decisions):
        decisions = Decisions(decisions)
    people: dict[str, list[SourceRow]] = {}
    merged = 0
    for row in rows:
        if row.id_key is None:
            raise ValueError("merge_partition takes rows with a valid ID only")
        people.setdefault(row.id_key, []).append(row)
        merged += 1
    golden: list[dict[str, Any]] = []
    reviews: list[ReviewItem] = []
    for key in sorted(people):
        record, items = _merge_person(key, people[key], rules, decisions)
        golden.append(record)
        reviews.extend(items)
    reviews.sort(key=lambda r: r.item_id)
    return PartitionResult(golden=golden, reviews=reviews, merged_rows=merged)


def _merge_person(
    key: str, rows: list[SourceRow], rules: Rules, decisions: Decisions
) -> tuple[dict[str, Any], list[ReviewItem]]:
    by_field: dict[str, list[RuleCandidate]] = {}
    refs: list[tuple[str, int, str]] = []
    days = _NEG_DAYS
    for source, number, data_date, priority, _key, _id, _kind, _problems, row_fields in rows:
        neg_day = days.get(data_date)
        if neg_day is None:
            neg_day = days[data_date] = -_date_int(data_date)
        refs.append((source, number, data_date))
        for field, value in row_fields.items():
            candidate = (priority, neg_day, source, number, value, data_date)
            found = by_field.get(field)
            if found is None:
                by_field[field] = [candidate]
            else:
                found.append(candidate)
    by_field.pop("id_text", None)
    # The ID: prefer an 18-character form over a converted 15-digit one (same normalised value).
    id_row = min(rows, key=lambda r: (r.id_kind == "converted_from_15", r.priority, r.source, r.row))
    id_number = id_row.id_number or ""
    derived, kind = _derived(id_number, id_row.id_kind)
    fields: dict[str, dict[str, object]] = {}
    items: list[ReviewItem] = []
    for field in sorted(set(by_field) | {f for f in ID_DERIVED_FIELDS if derived[f]}):
        candidates = by_field.get(field, [])
        rule = rules.for_field(field)
        decision = decisions.set_field.get((key, field)) if decisions.set_field else None
        if decision is not None and decision.value is not None:
            lineage = {
                "source": STEWARD_SOURCE,
                "row": 0,
                "source_date": decision.decided_at[:10],
                "rule": STEWARD,
            }
            fields[field] = {"value": decision.value, "lineage": {**lineage, "candidates": len(candidates)}}
            new = {c[4] for c in candidates} - set(decision.candidates_seen) - {decision.value}
            if new:
                items.append(
                    _item(ReviewReason.NEW_VALUES_SINCE_DECISION, key, field, candidates, decision.value)
                )
            continue
        own = derived.get(field) if rule.rule == "id_derived" else None
        if not candidates:
            # Only the ID knows it (e.g. no source has a sex column): lineage is the ID's row.
            lineage = {"source": id_row.source, "row": id_row.row, "source_date": id_row.data_date}
            fields[field] = {
                "value": own or "",
                "lineage": {**lineage, "rule": "id_derived", "candidates": 0},
            }
            continue
        values = {c[4] for c in candidates}
        used: str
        if len(values) == 1 and (own is None or own in values):  # the common case: everyone agrees
            best, tie = min(candidates), False
            if own is not None:
                used = "id_derived"
            elif rule.rule == "id_derived":
                used = rule.then[0] if rule.then else "source_priority"
            else:
                used = rule.rule
        else:
            best, used, tie = choose(candidates, rule, own)
        fields[field] = {
            "value": best[4],
            "lineage": {
                "source": best[2],
                "row": best[3],
                "source_date": best[5],
                "rule": used,
                "candidates": len(candidates),
            },
        }
        if own is not None:
            if len(values) > 1 or own not in values:
                items.append(_item(ReviewReason.CONTRADICTS_ID, key, field, candidates, best[4]))
        elif len(values) == 1:
            continue
        elif rule.review_on_disagreement:
            items.append(_item(ReviewReason.FIELD_CONFLICT, key, field, candidates, best[4]))
        elif tie:
            items.append(_item(ReviewReason.UNRESOLVED_TIE, key, field, candidates, best[4]))
    if items and decisions.by_item:
        items = [i for i in (_still_decided(i, decisions) for i in items) if i is not None]
    converted = all(r.id_kind == "converted_from_15" for r in rows)
    record = {
        "id_key": key,
        "id_number": id_number,
        "id_kind": "converted_from_15" if converted and kind == "resident_18" else kind,
        "converted": converted,
        "fields": fields,
        "sources": [{"source": s, "row": r, "source_date": d} for s, r, d in sorted(refs)],
        "rules_version": rules.version,
        "classification": {},
    }
    return record, items


_NEG_DAYS: dict[str, int] = {}
"""``YYYY-MM-DD`` → minus its ``YYYYMMDD`` integer (few distinct dates: cached)."""


def _derived(id_number: str, row_kind: str | None) -> tuple[dict[str, str | None], str]:
    """Sex and birth date the ID encodes, and its kind (18-character numbers read directly)."""
    if len(id_number) == 18 and id_number[:17].isdigit():
        sex = "male" if (ord(id_number[16]) - 48) % 2 else "female"
        born = f"{id_number[6:10]}-{id_number[10:12]}-{id_number[12:14]}"
        kind = "resident_18" if row_kind in (None, "converted_from_15") else row_kind
        return {"sex": sex, "birth_date": born}, kind
    parsed = idnumbers.parse(id_number, today=date.max)
    derived = {
        "sex": parsed.sex.value if parsed.sex else None,
        "birth_date": parsed.birth_date.isoformat() if parsed.birth_date else None,
    }
    return derived, parsed.kind.value if parsed.kind else (row_kind or "")


def _item(
    reason: ReviewReason, key: str, field: str, candidates: list[RuleCandidate], chosen: str
) -> ReviewItem:
    return ReviewItem(
        item_id=item_id(reason.value, key, field),
        reason=reason,
        id_key=key,
        field=field,
        candidates=_candidates(candidates),
        chosen=chosen,
    )


def _still_decided(item: ReviewItem, decisions: Decisions) -> ReviewItem | None:
    """None while a decided item's candidate values stay within what the steward saw (closed);
    the item marked ``reopens`` once they do not; the item itself when it was never decided."""
    decision = decisions.by_item.get(item.item_id)
    if decision is None:
        return item
    if {c.value for c in item.candidates} <= set(decision.candidates_seen):
        return None
    return item.model_copy(update={"reopens": decision.decision_id})


def queue_item(row: SourceRow) -> ReviewItem:
    """The review item of a row without a valid ID (never dropped)."""
    return ReviewItem(
        item_id=item_id(ReviewReason.INVALID_ID.value, row.source, row.row),
        reason=ReviewReason.INVALID_ID,
        source=row.source,
        row=row.row,
        details=list(row.id_problems),
        row_fields=dict(row.fields),
    )


def apply_link(row: SourceRow, links: Mapping[tuple[str, int], StewardDecision], secret: bytes) -> SourceRow:
    """A queued row that a steward linked to a person gets that person's ID (else unchanged)."""
    decision = links.get((row.source, row.row))
    if decision is None or not decision.id_number:
        return row
    parsed = idnumbers.parse(decision.id_number)
    if not parsed.ok or parsed.normalised is None:
        return row
    fields = {k: v for k, v in row.fields.items() if k != "id_text"}
    kind = parsed.kind.value if parsed.kind else None
    return row._replace(
        id_key=idnumbers.id_key(parsed.normalised, secret),
        id_number=parsed.normalised,
        id_kind=kind,
        id_problems=(),
        fields=fields,
    )
