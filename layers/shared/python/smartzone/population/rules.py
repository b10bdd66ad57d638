"""Survivorship rules: which candidate value of a field becomes the golden value, and why.

Rules are declarative and versioned (``events/population/rules.json``)::

    {"version": "2026.11-1",
     "default": {"rule": "source_priority", "then": ["most_recent", "most_frequent"]},
     "fields": {"name": {"rule": "source_priority", "then": ["most_frequent", "most_recent"],
                         "review_on_disagreement": true},
                "sex": {"rule": "id_derived", "then": ["source_priority"]}, ...}}

Rules (each narrows the set of distinct candidate values; the first that leaves one value decides
and is recorded in the lineage):

- ``source_priority``: values from the most trusted source (smallest priority number);
- ``most_recent``: values with the latest date of data;
- ``most_complete``: the longest values (most characters);
- ``most_frequent``: values offered by the most rows;
- ``id_derived`` (sex, birth date only): the value the ID number itself encodes; sources that
  contradict it raise a ``contradicts_id`` review item.

When the chain ends with several values left, the value of the best row by (priority, latest date,
source, row) is taken (``deterministic_fallback``) and an ``unresolved_tie`` review item is raised.
Every choice depends only on the candidates, never on input order.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

RuleName = Literal["source_priority", "most_recent", "most_complete", "most_frequent", "id_derived"]
FALLBACK = "deterministic_fallback"
STEWARD = "steward_decision"

Candidate = tuple[int, int, str, int, str, str]
"""``(priority, -date as YYYYMMDD int, source, row, value, date)`` — the hot-path candidate, ordered so
that the smallest tuple is the best row: most trusted source, then latest date, then source and row."""


class FieldRule(BaseModel):
    model_config = ConfigDict(frozen=True)

    rule: RuleName
    then: tuple[RuleName, ...] = ()
    review_on_disagreement: bool = False
    """Raise ``field_conflict`` whenever sources disagree (name); id_derived fields raise ``contradicts_id``."""


class Rules(BaseModel):
    model_config = ConfigDict(frozen=True)

    version: str
    default: FieldRule
    fields: dict[str, FieldRule] = Field(default_factory=dict)

    def for_field(self, field: str) -> FieldRule:
        return self.fields.get(field, self.default)


def load_rules(path: Path) -> Rules:
    return Rules.model_validate(json.loads(path.read_text(encoding="utf-8")))


def _narrow(rule: str, values: list[str], groups: dict[str, list[Candidate]]) -> list[str]:
    if rule == "source_priority":
        score = {v: -min(c[0] for c in groups[v]) for v in values}
    elif rule == "most_recent":
        score = {v: -min(c[1] for c in groups[v]) for v in values}
    elif rule == "most_complete":
        score = {v: len(v) for v in values}
    elif rule == "most_frequent":
        score = {v: len(groups[v]) for v in values}
    else:  # id_derived without an ID value: no narrowing
        return values
    top = max(score.values())
    return [v for v in values if score[v] == top]


def choose(
    candidates: list[Candidate], rule: FieldRule, derived: str | None = None
) -> tuple[Candidate, str, bool]:
    """The winning candidate row, the rule that decided, and whether it was an unresolved tie.

    ``derived`` is the ID's own value for ``id_derived`` fields; the returned row is then the best
    row among those agreeing with it (or the best row overall, its value replaced by ``derived``).
    """
    if rule.rule == "id_derived" and derived is not None:
        agreeing = [c for c in candidates if c[4] == derived]
        best = min(agreeing or candidates)
        return (*best[:4], derived, best[5]), "id_derived", False
    first = candidates[0][4]
    if all(c[4] == first for c in candidates):
        return min(candidates), rule.rule if rule.rule != "id_derived" else _first(rule), False
    groups: dict[str, list[Candidate]] = {}
    for candidate in candidates:
        groups.setdefault(candidate[4], []).append(candidate)
    values = sorted(groups)
    for step in (rule.rule, *rule.then):
        values = _narrow(step, values, groups)
        if len(values) == 1:
            return min(groups[values[0]]), step, False
    return min(c for v in values for c in groups[v]), FALLBACK, True


def _first(rule: FieldRule) -> str:
    return rule.then[0] if rule.then else "source_priority"
