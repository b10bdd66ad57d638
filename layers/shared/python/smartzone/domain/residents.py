"""Residents as the platform stores and shows them (pure: no boto3).

A stored resident is a merged golden record (``smartzone.population.models.GoldenRecord``)
split in two:

- ``personal``: the ID number and EVERY golden field value (name, phone, address, birth date, sex,
  …), sealed at rest by :mod:`smartzone.repositories.personal_data`;
- in clear, what is needed to find and count people: the ``id_key`` (keyed HMAC of the ID), the
  classification (registered / floating, age band, community, grid, care categories), the ID's
  kind and the lineage *metadata* of every golden field (source table, row, data date, rule:
  no values).

Outputs go through THE masking policy (:mod:`smartzone.domain.masking`): :func:`resident_view`
masks the ID number, name, phone, address and birth date per the caller's decision and shows
other golden fields only when unmasked (``sex`` always).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from smartzone.domain.masking import MaskDecision

PERSONAL_FIELDS = ("id_number", "name", "phone", "address", "birth_date")
"""Fields masked on output by the masking policy (all golden values are sealed at rest)."""
SHOWN_WHEN_MASKED = frozenset({"sex"})
"""Golden fields shown to staff who may see the resident even when masked."""
ID_KEY_PATTERN = r"^[0-9a-f]{64}$"


class FieldSource(BaseModel):
    """Where one golden field's value came from (lineage metadata, kept in clear)."""

    model_config = ConfigDict(frozen=True)

    source_table: str
    source_row: int | None = None
    source_date: str | None = None
    rule: str | None = None
    candidates: int = 1


class Classification(BaseModel):
    model_config = ConfigDict(frozen=True)

    registration: str | None = None
    """``registered`` (户籍) or ``floating`` (流动) population."""
    age_band: str | None = None
    community: str | None = None
    grid_id: str | None = None
    categories: tuple[str, ...] = ()
    """Care categories (独居老人, 残疾人, 低保户, …) by the classification rules."""


class Resident(BaseModel):
    """One golden record as stored (``RESIDENT#<id_key>``); ``personal`` is plain only in memory."""

    id_key: str = Field(pattern=ID_KEY_PATTERN)
    personal: dict[str, str] = Field(default_factory=dict)
    """``id_number`` and every golden field's value (sealed at rest; plain only in memory)."""
    attributes: dict[str, Any] = Field(default_factory=dict)
    """Non-personal facts in clear: ``id_kind``, ``converted``, ``rules_version``, ``sources``."""
    lineage: dict[str, FieldSource] = Field(default_factory=dict)
    classification: Classification = Field(default_factory=Classification)
    run_id: str | None = None
    updated_at: str | None = None
    erased_at: str | None = None
    """Set when the person's data was erased on request: no personal data is kept after that."""

    @property
    def subject_key(self) -> str:
        return f"RESIDENT#{self.id_key}"


class ResidentOut(BaseModel):
    """A resident as the API shows them (masked per role)."""

    resident_key: str
    """The pseudonymous key (``id_key``): use it to refer to the person in later calls."""
    id_number: str | None = None
    name: str | None = None
    phone: str | None = None
    address: str | None = None
    birth_date: str | None = None
    sex: str | None = None
    registration: str | None = None
    age_band: str | None = None
    community: str | None = None
    grid_id: str | None = None
    categories: list[str] = Field(default_factory=list)
    other_fields: dict[str, str] = Field(default_factory=dict)
    """Further golden fields (shown only when unmasked)."""
    lineage: dict[str, FieldSource] = Field(default_factory=dict)
    masked: bool = True
    erased: bool = False


def mask_birth_date(value: str | None) -> str | None:
    """Birth dates show the year only when masked (``1990-**-**``)."""
    if value is None:
        return None
    return f"{str(value)[:4]}-**-**"


def resident_view(resident: Resident, decision: MaskDecision) -> ResidentOut:
    p = resident.personal
    c = resident.classification
    birth = p.get("birth_date")
    return ResidentOut(
        resident_key=resident.id_key,
        id_number=decision.id_number(p.get("id_number")),
        name=decision.name(p.get("name")),
        phone=decision.phone(p.get("phone")),
        address=decision.address(p.get("address")),
        birth_date=birth if decision.unmasked or birth is None else mask_birth_date(str(birth)),
        sex=p.get("sex"),
        registration=c.registration,
        age_band=c.age_band,
        community=c.community,
        grid_id=c.grid_id,
        categories=list(c.categories),
        other_fields={
            k: v
            for k, v in p.items()
            if decision.unmasked and k not in PERSONAL_FIELDS and k not in SHOWN_WHEN_MASKED
        },
        lineage=resident.lineage,
        masked=not decision.unmasked,
        erased=resident.erased_at is not None,
    )


def shown_fields(resident: Resident) -> tuple[str, ...]:
    """The personal fields an unmasked view of ``resident`` shows (for the audit entry)."""
    return tuple(name for name in PERSONAL_FIELDS if resident.personal.get(name) is not None)


def _classification(raw: dict[str, Any]) -> Classification:
    categories = raw.get("categories") or raw.get("care_categories") or ()
    return Classification(
        registration=raw.get("registration") or raw.get("residence"),
        age_band=raw.get("age_band"),
        community=raw.get("community"),
        grid_id=raw.get("grid_id") or raw.get("grid"),
        categories=tuple(sorted(str(c) for c in categories)),
    )


def resident_from_golden(record: Any, *, run_id: str | None = None, at: str | None = None) -> Resident:
    """A :class:`Resident` from a ``GoldenRecord`` of the merge (duck-typed: no import needed)."""
    personal = {"id_number": record.id_number, **{name: f.value for name, f in record.fields.items()}}
    lineage = {
        name: FieldSource(
            source_table=f.lineage.source,
            source_row=f.lineage.row,
            source_date=f.lineage.source_date,
            rule=f.lineage.rule,
            candidates=f.lineage.candidates,
        )
        for name, f in record.fields.items()
    }
    return Resident(
        id_key=record.id_key,
        personal=personal,
        attributes={
            "id_kind": record.id_kind,
            "converted": record.converted,
            "rules_version": record.rules_version,
            "sources": [s.model_dump() for s in record.sources],
        },
        lineage=lineage,
        classification=_classification(dict(record.classification or {})),
        run_id=run_id,
        updated_at=at,
    )


HIDDEN = "***"


def mask_value(field: str | None, value: str | None, decision: MaskDecision) -> str | None:
    """One personal value (a review candidate, a queued row's field) as ``decision`` shows it."""
    if value is None or decision.unmasked:
        return value
    if field in ("id_number", "id_text"):
        return decision.id_number(value)
    if field == "name":
        return decision.name(value)
    if field == "phone":
        return decision.phone(value)
    if field == "address":
        return decision.address(value)
    if field == "birth_date":
        return mask_birth_date(value)
    if field in SHOWN_WHEN_MASKED:
        return value
    return HIDDEN
