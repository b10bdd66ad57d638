"""Accuracy of a merge against generated truth (``tools/population_generate.py``'s ``truth.json``).

- Linking: a merged row is a true positive when the record it went into is its true person's.
  ``precision`` = true positives / merged rows; ``recall`` = true positives / rows that should merge.
- Persons: each person whose ID appears in a valid row must have exactly one record.
- Queue and rejects: rows expected queued (``q``) must be invalid-ID review items, rows expected
  rejected (``r``) must be rejects.
- Golden fields: per field, the share of persons whose golden value equals the truth; plus the
  share of persons with every field right, and residence / grid classification accuracy.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any


def evaluate(
    truth: dict[str, Any],
    golden: Iterable[dict[str, Any]],
    queued: Iterable[tuple[str, int]],
    rejected: Iterable[tuple[str, int]],
) -> dict[str, Any]:
    """Precision / recall of linking and golden-field accuracy (golden records as JSON dicts)."""
    persons = truth["persons"]
    by_id = {p["id_number"]: i for i, p in enumerate(persons)}
    row_person = {s: r["person"] for s, r in truth["rows"].items()}
    outcome = {s: r["outcome"] for s, r in truth["rows"].items()}
    expected_merge = sum(o.count("m") for o in outcome.values())
    records_per_person: Counter[int] = Counter()
    merged = true_pos = 0
    field_total: Counter[str] = Counter()
    field_right: Counter[str] = Counter()
    all_right = residence_right = grid_right = unknown_records = 0
    for record in golden:
        person = by_id.get(record["id_number"])
        if person is None:
            unknown_records += 1
        else:
            records_per_person[person] += 1
        for ref in record["sources"]:
            merged += 1
            if person is not None and row_person[ref["source"]][ref["row"] - 1] == person:
                true_pos += 1
        if person is None:
            continue
        expected = persons[person]
        ok = True
        for field, value in expected["fields"].items():
            field_total[field] += 1
            got = record["fields"].get(field, {}).get("value")
            if got == value:
                field_right[field] += 1
            else:
                ok = False
        all_right += ok
        classification = record.get("classification") or {}
        residence_right += classification.get("residence") == expected["residence"]
        grid_right += classification.get("grid_id") == expected["grid_id"]
    with_valid_row = {
        person
        for s, people in row_person.items()
        for person, o in zip(people, outcome[s], strict=True)
        if o == "m"
    }
    queued_set, rejected_set = set(queued), set(rejected)
    expected_q = {(s, i + 1) for s, o in outcome.items() for i, c in enumerate(o) if c == "q"}
    expected_r = {(s, i + 1) for s, o in outcome.items() for i, c in enumerate(o) if c == "r"}
    matched = sum(records_per_person[p] == 1 for p in with_valid_row)
    return {
        "linking": {
            "merged_rows": merged,
            "true_positive_rows": true_pos,
            "precision": _ratio(true_pos, merged),
            "recall": _ratio(true_pos, expected_merge),
        },
        "persons": {
            "with_valid_id": len(with_valid_row),
            "exactly_one_record": matched,
            "split_or_missing": len(with_valid_row) - matched,
            "records_of_unknown_ids": unknown_records,
        },
        "queue": {
            "expected": len(expected_q),
            "queued": len(queued_set),
            "expected_and_queued": len(expected_q & queued_set),
            "expected_rejects": len(expected_r),
            "rejects_found": len(expected_r & rejected_set),
        },
        "golden_fields": {f: _ratio(field_right[f], n) for f, n in sorted(field_total.items())},
        "persons_all_fields_right": _ratio(all_right, sum(records_per_person.values())),
        "classification": {
            "residence": _ratio(residence_right, sum(records_per_person.values())),
            "grid": _ratio(grid_right, sum(records_per_person.values())),
        },
    }


def _ratio(part: int, whole: int) -> float:
    return round(part / whole, 6) if whole else 1.0
