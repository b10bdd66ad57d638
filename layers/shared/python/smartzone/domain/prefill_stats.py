"""The saving of prefilled forms, measured: per form and community, how many submitted fields were
prefilled and confirmed unchanged, corrected, or typed new (``GET /v1/stats`` → ``prefill``).

Counters live in the day's ``STATS#<day>`` / ``PREFILL`` item, one attribute per
``<form_id>|<community>|<grid_id>|<kind>`` (kinds: ``submissions`` and the three outcomes), added
in the submission's own transaction. ``prefill_ratio`` = prefilled fields (confirmed + corrected)
/ all submitted fields; ``confirmed_ratio`` = confirmed / all: the share of fields nobody typed.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any

from pydantic import BaseModel, Field

PREFILL_PART = "PREFILL"
SEP = "|"
KINDS = ("submissions", "prefilled_confirmed", "corrected", "typed_new")
NO_COMMUNITY = "-"


def counter_name(form_id: str, community: str | None, grid_id: str, kind: str) -> str:
    return SEP.join((form_id, (community or NO_COMMUNITY).replace(SEP, "/"), grid_id, kind))


class PrefillCounts(BaseModel):
    submissions: int = 0
    fields: int = 0
    prefilled_confirmed: int = 0
    corrected: int = 0
    typed_new: int = 0
    prefill_ratio: float | None = None
    """(confirmed + corrected) / fields: how many fields came prefilled."""
    confirmed_ratio: float | None = None
    """confirmed / fields: how many fields needed no typing at all."""

    def add(self, kind: str, value: int) -> None:
        setattr(self, kind, getattr(self, kind) + value)
        if kind != "submissions":
            self.fields += value

    def finish(self) -> PrefillCounts:
        if self.fields:
            self.prefill_ratio = round((self.prefilled_confirmed + self.corrected) / self.fields, 4)
            self.confirmed_ratio = round(self.prefilled_confirmed / self.fields, 4)
        return self


class PrefillDay(BaseModel):
    day: str
    counts: PrefillCounts


class PrefillStats(BaseModel):
    """``prefill`` of ``GET /v1/stats``: totals, by form, by form and community, and by day."""

    total: PrefillCounts
    by_form: dict[str, PrefillCounts] = Field(default_factory=dict)
    by_form_community: dict[str, dict[str, PrefillCounts]] = Field(default_factory=dict)
    """Form id → community → counts."""
    by_day: list[PrefillDay] = Field(default_factory=list)
    """Days with submissions, oldest first (the ratio over time)."""


def summarize_prefill(
    days: Iterable[tuple[str, Mapping[str, Any]]],
    grids: Collection[str] | None,
    forms: Collection[str] | None = None,
) -> PrefillStats:
    """Add up the days' ``PREFILL`` items (day, plain attributes), keeping only ``grids`` and
    ``forms`` (None: all; a department sees the forms it owns)."""
    total = PrefillCounts()
    by_form: dict[str, PrefillCounts] = {}
    by_pair: dict[str, dict[str, PrefillCounts]] = {}
    by_day: list[PrefillDay] = []
    for day, item in sorted(days, key=lambda d: d[0]):
        today = PrefillCounts()
        for name, raw in item.items():
            parts = name.split(SEP)
            if len(parts) != 4 or parts[3] not in KINDS:
                continue
            form_id, community, grid, kind = parts
            if (grids is not None and grid not in grids) or (forms is not None and form_id not in forms):
                continue
            try:
                value = int(raw)
            except (TypeError, ValueError):
                continue
            for counts in (
                total,
                today,
                by_form.setdefault(form_id, PrefillCounts()),
                by_pair.setdefault(form_id, {}).setdefault(community, PrefillCounts()),
            ):
                counts.add(kind, value)
        if today.submissions or today.fields:
            by_day.append(PrefillDay(day=day, counts=today.finish()))
    return PrefillStats(
        total=total.finish(),
        by_form={k: v.finish() for k, v in sorted(by_form.items())},
        by_form_community={
            form: {c: v.finish() for c, v in sorted(pairs.items())} for form, pairs in sorted(by_pair.items())
        },
        by_day=by_day,
    )
