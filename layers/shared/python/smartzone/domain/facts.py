"""Facts: data items collected once and reused by every form that asks for them (一次采集,多头调用).

A *fact* is one data item of one *subject* with a stable code (``household.size``,
``resident.phone``, ``enterprise.fire_inspection_date``). Form fields bind to facts, so two
departments' forms that ask the same thing share one stored value.

Subjects are named by a *subject key* ``<type>:<id>``:

| type         | id                                                                  |
|--------------|---------------------------------------------------------------------|
| ``resident`` | the keyed HMAC-SHA256 (hex) of the normalised ID number (never the number itself) |
| ``household``| the household's number (户号), e.g. ``H-LJ-0001``                    |
| ``address``  | an address / building code, e.g. ``B-LJ-0012``                       |
| ``enterprise``| the unified social credit code (统一社会信用代码, 18 characters)       |
| ``site``     | a site's code (construction site, market, …)                        |

Each stored fact keeps its value and provenance (:class:`Provenance`: a form submission or an
imported table, who, when); every change appends a history entry.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class SubjectType(StrEnum):
    RESIDENT = "resident"
    HOUSEHOLD = "household"
    ADDRESS = "address"
    ENTERPRISE = "enterprise"
    SITE = "site"


SUBJECT_LABEL_ZH = {
    SubjectType.RESIDENT: "居民",
    SubjectType.HOUSEHOLD: "家庭户",
    SubjectType.ADDRESS: "地址/楼栋",
    SubjectType.ENTERPRISE: "企业",
    SubjectType.SITE: "场所",
}


class ValueType(StrEnum):
    """The value kinds a fact may hold, each with its JSON Schema (see :func:`value_schema`)."""

    TEXT = "text"
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    DATE = "date"
    PHONE = "phone"
    CHOICE = "choice"
    ATTACHMENT = "attachment"
    """An uploaded file's object key (``uploads/…``), from the presigned upload."""


class PersonalData(StrEnum):
    """Which rule of the masking policy applies to a fact's value in outputs."""

    NAME = "name"
    PHONE = "phone"
    ADDRESS = "address"
    ID_NUMBER = "id_number"


_PHONE_PATTERN = r"^(1[3-9][0-9]{9}|0[0-9]{2,3}-?[0-9]{7,8})$"
_DATE_PATTERN = r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"
ATTACHMENT_PATTERN = (
    r"^uploads/[0-9]{4}/[0-9]{2}/[0-9]{2}/[A-Za-z0-9._@+-]{1,128}/[0-9a-f]{32}\.(jpg|png|webp)$"
)


def value_schema(value_type: ValueType) -> dict[str, Any]:
    """The base JSON Schema of a value type (a form field may narrow it further)."""
    schemas: dict[ValueType, dict[str, Any]] = {
        ValueType.TEXT: {"type": "string", "minLength": 1, "maxLength": 500},
        ValueType.INTEGER: {"type": "integer"},
        ValueType.NUMBER: {"type": "number"},
        ValueType.BOOLEAN: {"type": "boolean"},
        ValueType.DATE: {"type": "string", "pattern": _DATE_PATTERN},
        ValueType.PHONE: {"type": "string", "pattern": _PHONE_PATTERN},
        ValueType.CHOICE: {"type": "string"},
        ValueType.ATTACHMENT: {"type": "string", "pattern": ATTACHMENT_PATTERN},
    }
    return dict(schemas[value_type])


@dataclass(frozen=True)
class FactDefinition:
    """One catalogue entry: a stable code, whose fact it is, and how it is shown."""

    code: str
    subject_type: SubjectType
    value_type: ValueType
    label_zh: str
    label_en: str
    personal: PersonalData | None = None
    """The masking rule for this fact's value (None: not personal data)."""


def _fact(
    code: str,
    value_type: ValueType,
    label_zh: str,
    label_en: str,
    personal: PersonalData | None = None,
) -> FactDefinition:
    return FactDefinition(code, SubjectType(code.split(".", 1)[0]), value_type, label_zh, label_en, personal)


CATALOGUE: dict[str, FactDefinition] = {
    f.code: f
    for f in (
        # residents (keyed by the HMAC of the ID number)
        _fact("resident.name", ValueType.TEXT, "姓名", "name", PersonalData.NAME),
        _fact("resident.phone", ValueType.PHONE, "联系电话", "phone", PersonalData.PHONE),
        _fact("resident.gender", ValueType.CHOICE, "性别", "gender"),
        _fact("resident.chronic_conditions", ValueType.TEXT, "慢性病情况", "chronic conditions"),
        _fact("resident.family_doctor_team", ValueType.CHOICE, "签约家庭医生团队", "family doctor team"),
        _fact("resident.employment_status", ValueType.CHOICE, "就业状态", "employment status"),
        # households
        _fact("household.size", ValueType.INTEGER, "家庭人口数", "household size"),
        _fact("household.address", ValueType.TEXT, "家庭住址", "home address", PersonalData.ADDRESS),
        _fact("household.housing_type", ValueType.CHOICE, "住房类型", "housing type"),
        _fact("household.low_income", ValueType.BOOLEAN, "是否低保户", "receives minimum living allowance"),
        _fact("household.register_photo", ValueType.ATTACHMENT, "户口簿照片", "household register photo"),
        # addresses / buildings
        _fact("address.building_floors", ValueType.INTEGER, "楼层数", "floors"),
        _fact(
            "address.gas_inspection_date", ValueType.DATE, "燃气安全检查日期", "gas safety inspection date"
        ),
        # enterprises
        _fact("enterprise.name", ValueType.TEXT, "企业名称", "enterprise name"),
        _fact(
            "enterprise.contact_phone", ValueType.PHONE, "企业联系电话", "contact phone", PersonalData.PHONE
        ),
        _fact("enterprise.employees", ValueType.INTEGER, "从业人员数", "employees"),
        _fact(
            "enterprise.fire_inspection_date",
            ValueType.DATE,
            "消防安全检查日期",
            "fire-safety inspection date",
        ),
        _fact("enterprise.fire_hazard_found", ValueType.BOOLEAN, "是否发现火灾隐患", "fire hazard found"),
        # sites
        _fact("site.name", ValueType.TEXT, "场所名称", "site name"),
        _fact("site.inspection_date", ValueType.DATE, "检查日期", "inspection date"),
    )
}
"""The fact catalogue: codes are stable (a form refers to them; stored facts are keyed by them)."""


def fact(code: str) -> FactDefinition:
    """The catalogue entry (``KeyError`` for an unknown code)."""
    return CATALOGUE[code]


# -- subject keys ------------------------------------------------------------------------------------
_RESIDENT_ID = re.compile(r"^[0-9a-f]{64}$")
_OTHER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class InvalidSubject(ValueError):
    """A subject key that does not name a subject."""


@dataclass(frozen=True, order=True)
class SubjectKey:
    type: SubjectType
    id: str

    def __str__(self) -> str:
        return f"{self.type.value}:{self.id}"

    @classmethod
    def parse(cls, text: str) -> SubjectKey:
        """``household:H-LJ-0001`` → SubjectKey; residents need the 64-hex keyed HMAC as id."""
        kind, sep, ident = text.strip().partition(":")
        if not sep:
            raise InvalidSubject("a subject is written <type>:<id>, e.g. household:H-LJ-0001")
        try:
            subject_type = SubjectType(kind)
        except ValueError:
            raise InvalidSubject(f"unknown subject type {kind!r}") from None
        pattern = _RESIDENT_ID if subject_type is SubjectType.RESIDENT else _OTHER_ID
        if not pattern.match(ident):
            detail = (
                "a resident is named by the key POST /v1/subjects returns for an ID number"
                if subject_type is SubjectType.RESIDENT
                else "ids are 1-64 letters, digits, '.', '_' or '-'"
            )
            raise InvalidSubject(f"invalid {subject_type.value} id: {detail}")
        return cls(subject_type, ident)


def resident_key(id_key_hex: str) -> SubjectKey:
    return SubjectKey(SubjectType.RESIDENT, id_key_hex)


# -- provenance and stored values ----------------------------------------------------------------------
class SourceKind(StrEnum):
    FORM = "form"
    """A form submission."""
    IMPORT = "import"
    """An imported source table (e.g. the population database)."""


class Provenance(BaseModel):
    """Where a fact's value came from."""

    model_config = ConfigDict(frozen=True)

    kind: SourceKind
    form_id: str | None = None
    form_version: int | None = None
    submission_id: str | None = None
    table: str | None = None
    """For imports: the source table's name (e.g. ``人口库``)."""
    by: str = Field(min_length=1)
    """The username who submitted, or the import job."""
    at: str
    """ISO-8601 UTC: when the value was received (the history entry's time)."""
    collected_at: str | None = None
    """ISO-8601 UTC: when the value was collected (the device's ``collected_at``, never later than
    ``at``); ``None``: at ``at``. The current value is only replaced by a later-collected one."""
    grid_id: str | None = None
    """The grid the value was collected in (a submission's grid; imports: when known). Grid
    workers are offered only values collected in their own grids."""
    community: str | None = None
    """That grid's community."""

    @property
    def collected(self) -> str:
        """When the value was collected (``collected_at``, else ``at``)."""
        return self.collected_at or self.at


class FactValue(BaseModel):
    """A fact's current value on one subject."""

    subject: str
    code: str
    value: Any
    source: Provenance


class FieldOutcome(StrEnum):
    """How a submitted field came about (the saving measured by ``GET /v1/stats``)."""

    PREFILLED_CONFIRMED = "prefilled_confirmed"
    """A stored value was offered and submitted unchanged."""
    CORRECTED = "corrected"
    """A stored value was offered and the worker changed it."""
    TYPED_NEW = "typed_new"
    """Nothing was stored yet: the worker typed it."""


def within_grids(value: FactValue, grids: Collection[str]) -> bool:
    """Whether a stored value was collected in one of ``grids`` (a grid worker's reach): values
    without a grid (imports without one, values stored before grids were recorded) are not."""
    return value.source.grid_id is not None and value.source.grid_id in grids


def outcome_of(current: FactValue | None, submitted: Any) -> FieldOutcome:
    if current is None:
        return FieldOutcome.TYPED_NEW
    return FieldOutcome.PREFILLED_CONFIRMED if current.value == submitted else FieldOutcome.CORRECTED
