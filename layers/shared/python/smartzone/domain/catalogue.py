"""The data catalogue: government information resources (政务信息资源目录, GB/T 21063).

A :class:`Resource` carries the core metadata of GB/T 21063.3 as the national compilation guideline
(《政务信息资源目录编制指南（试行）》, 2017) lists it: classification, name, code, provider and
provider code, summary, format, information items (name, data type), sharing type, condition and
method, update cycle and publication date. We add what sharing needs: each item's column name, its
personal-data class and masking rule, and the last-load time (for the stale flag).

Resource code (信息资源代码; see ``docs/catalogue.md``): a front part and a sequence number joined
by ``/``. The front part is the classification (类, 1 digit: 1 基础 / 2 主题 / 3 部门; 项, 2 digits),
then the providing department's 3-digit district number (目) and a 3-digit sub-item (细目,
``000`` when none); the sequence number (顺序码) has 6 digits::

    2 11 007 000 / 000012      →  "211007000/000012"
    类 项 目   细目   顺序码       (theme "社区治理", department 007, sequence 12)

Validation happens twice, on purpose: the JSON Schema (:mod:`smartzone.domain.catalogue_schema`,
published as ``docs/schemas/catalogue-resource.schema.json`` for other systems) and this pydantic
model with the same rules, whose messages name the field. Rules that span a whole catalogue (code uniqueness, one number per department)
are in :func:`check_catalogue`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from smartzone.domain.masking import MASK, mask_address, mask_id_number, mask_name, mask_phone

CODE_PATTERN = r"^[123][0-9]{2}[0-9]{3}[0-9]{3}/[0-9]{6}$"
_CODE = re.compile(
    r"^(?P<category>[123])(?P<item>[0-9]{2})(?P<dept>[0-9]{3})(?P<sub>[0-9]{3})/(?P<seq>[0-9]{6})$"
)
COLUMN_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
RESERVED_COLUMNS = ("dt", "resource", "_batch", "_row")
"""Column names the data lake adds to every resource (Hive partitions ``resource`` and ``dt``, the
row identity ``_batch`` and ``_row``): an item of that name would be overwritten or dropped by
queries, so no item may use one (``_batch`` and ``_row`` already fail :data:`COLUMN_PATTERN`)."""
DEPARTMENT_ID_PATTERN = r"^[a-z][a-z0-9-]{1,39}$"
PROVIDER_CODE_PATTERN = r"^[0-9]{3}$"


# -- classification (类 + 项) ---------------------------------------------------------------------------
CLASSIFICATIONS: dict[str, str] = {
    # 1 基础信息资源
    "101": "人口基础信息",
    "102": "法人单位基础信息",
    "103": "自然资源和空间地理基础信息",
    "104": "社会信用基础信息",
    "105": "电子证照基础信息",
    # 2 主题信息资源
    "201": "公共服务",
    "202": "健康保障",
    "203": "社会保障",
    "204": "食品药品安全",
    "205": "安全生产",
    "206": "价格监管",
    "207": "能源安全",
    "208": "信用体系",
    "209": "城乡建设",
    "210": "社区治理",
    "211": "生态环保",
    "212": "应急维稳",
    # 3 部门信息资源 (项: the level of the providing body)
    "307": "区（县）级政务部门",
}
"""The classification codes (类 1 digit + 项 2 digits) and their names."""

CATEGORY_NAMES = {"1": "基础信息资源", "2": "主题信息资源", "3": "部门信息资源"}


class ItemType(StrEnum):
    STRING = "string"
    INTEGER = "integer"
    DECIMAL = "decimal"
    DATE = "date"
    DATETIME = "datetime"
    BOOLEAN = "boolean"


class PersonalClass(StrEnum):
    """What kind of personal data an item holds (decides its default masking rule)."""

    NONE = "none"
    ID_NUMBER = "id_number"
    NAME = "name"
    PHONE = "phone"
    ADDRESS = "address"
    OTHER_PERSONAL = "other_personal"


class MaskingRule(StrEnum):
    """How a value is shown to a department without a grant to see it (see ``domain.masking``)."""

    NONE = "none"
    ID_NUMBER = "id_number"
    """First 6 and last 4 characters."""
    PHONE = "phone"
    """3 + ``****`` + 4."""
    NAME = "name"
    """Surname + ``*``."""
    ADDRESS = "address"
    """Down to street level."""
    REDACT = "redact"
    """Withheld entirely (``***``; null stays null)."""


DEFAULT_MASKING: dict[PersonalClass, MaskingRule] = {
    PersonalClass.NONE: MaskingRule.NONE,
    PersonalClass.ID_NUMBER: MaskingRule.ID_NUMBER,
    PersonalClass.NAME: MaskingRule.NAME,
    PersonalClass.PHONE: MaskingRule.PHONE,
    PersonalClass.ADDRESS: MaskingRule.ADDRESS,
    PersonalClass.OTHER_PERSONAL: MaskingRule.REDACT,
}


class ResourceFormat(StrEnum):
    """信息资源格式: how the data is held by the provider."""

    CSV = "csv"
    XLSX = "xlsx"
    JSON = "json"
    XML = "xml"
    DATABASE = "database"
    API = "api"


class SharingType(StrEnum):
    UNCONDITIONAL = "unconditional"
    """无条件共享: every registered department may read it."""
    CONDITIONAL = "conditional"
    """有条件共享: only with an approved, unexpired request (the condition says what is needed)."""
    NOT_SHARED = "not_shared"
    """不予共享: nobody but the provider (a legal basis must be given)."""


class SharingMethod(StrEnum):
    """共享方式."""

    FILE = "file"
    DATABASE = "database"
    API = "api"


METHODS_FOR_FORMAT: dict[ResourceFormat, frozenset[SharingMethod]] = {
    ResourceFormat.CSV: frozenset({SharingMethod.FILE}),
    ResourceFormat.XLSX: frozenset({SharingMethod.FILE}),
    ResourceFormat.JSON: frozenset({SharingMethod.FILE, SharingMethod.API}),
    ResourceFormat.XML: frozenset({SharingMethod.FILE, SharingMethod.API}),
    ResourceFormat.DATABASE: frozenset({SharingMethod.DATABASE, SharingMethod.API}),
    ResourceFormat.API: frozenset({SharingMethod.API}),
}
"""Which sharing methods each format allows (a spreadsheet is shared as a file, not as an API)."""


class UpdateCycle(StrEnum):
    """更新周期; :attr:`duration` is how old the last load may be before the resource is stale."""

    REALTIME = "realtime"
    HOURLY = "hourly"
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"
    QUARTERLY = "quarterly"
    HALF_YEARLY = "half_yearly"
    YEARLY = "yearly"
    IRREGULAR = "irregular"

    @property
    def duration(self) -> timedelta | None:
        """None for irregular updates (never stale once loaded)."""
        return _CYCLE_DURATIONS[self]

    @property
    def label(self) -> str:
        return _CYCLE_LABELS[self]


_CYCLE_DURATIONS: dict[UpdateCycle, timedelta | None] = {
    UpdateCycle.REALTIME: timedelta(hours=1),
    UpdateCycle.HOURLY: timedelta(hours=2),
    UpdateCycle.DAILY: timedelta(days=1),
    UpdateCycle.WEEKLY: timedelta(days=7),
    UpdateCycle.MONTHLY: timedelta(days=31),
    UpdateCycle.QUARTERLY: timedelta(days=92),
    UpdateCycle.HALF_YEARLY: timedelta(days=183),
    UpdateCycle.YEARLY: timedelta(days=366),
    UpdateCycle.IRREGULAR: None,
}
_CYCLE_LABELS = {
    UpdateCycle.REALTIME: "实时",
    UpdateCycle.HOURLY: "每小时",
    UpdateCycle.DAILY: "每日",
    UpdateCycle.WEEKLY: "每周",
    UpdateCycle.MONTHLY: "每月",
    UpdateCycle.QUARTERLY: "每季度",
    UpdateCycle.HALF_YEARLY: "每半年",
    UpdateCycle.YEARLY: "每年",
    UpdateCycle.IRREGULAR: "不定期",
}


# -- the models -------------------------------------------------------------------------------------
class InformationItem(BaseModel):
    """信息项: one column of the resource."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=64, description="信息项名称 (Chinese)")
    column: str = Field(pattern=COLUMN_PATTERN, description="column name in files and queries")
    type: ItemType
    personal_class: PersonalClass = PersonalClass.NONE
    masking: MaskingRule | None = Field(
        None, description="masking rule; defaults from the personal-data class when omitted"
    )
    required: bool = False
    key: bool = False
    """Part of the resource's natural key (queries by key use it)."""

    @model_validator(mode="after")
    def _masking_rule(self) -> InformationItem:
        if self.masking is None:
            object.__setattr__(self, "masking", DEFAULT_MASKING[self.personal_class])
        rule = self.masking
        if self.personal_class is not PersonalClass.NONE and rule is MaskingRule.NONE:
            raise ValueError(f"masking: personal item {self.column!r} needs a masking rule other than none")
        if rule not in (MaskingRule.NONE, MaskingRule.REDACT) and self.type is not ItemType.STRING:
            raise ValueError(f"masking: rule {rule} applies to string items only ({self.column!r})")
        return self

    @property
    def rule(self) -> MaskingRule:
        return self.masking or DEFAULT_MASKING[self.personal_class]

    @property
    def personal(self) -> bool:
        return self.personal_class is not PersonalClass.NONE


class Resource(BaseModel):
    """One catalogue entry (政务信息资源)."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=CODE_PATTERN, description="信息资源代码, e.g. 210007000/000012")
    name: str = Field(min_length=2, max_length=100, description="信息资源名称")
    department_id: str = Field(pattern=DEPARTMENT_ID_PATTERN, description="信息资源提供方")
    provider_code: str = Field(
        pattern=PROVIDER_CODE_PATTERN, description="信息资源提供方代码 (district number)"
    )
    summary: str = Field(min_length=4, max_length=1000, description="信息资源摘要")
    classification: str = Field(description="类 + 项, a key of CLASSIFICATIONS")
    items: list[InformationItem] = Field(min_length=1, max_length=200)
    format: ResourceFormat
    update_cycle: UpdateCycle
    sharing_type: SharingType
    condition: str | None = Field(None, min_length=4, max_length=500, description="共享条件")
    legal_basis: str | None = Field(None, min_length=4, max_length=500, description="不予共享依据")
    sharing_method: SharingMethod
    published_on: date = Field(description="发布日期")
    last_loaded_at: AwareDatetime | None = None
    """When data was last loaded (set by ingest)."""

    @field_validator("classification")
    @classmethod
    def _known_classification(cls, value: str) -> str:
        if value not in CLASSIFICATIONS:
            raise ValueError(f"unknown classification {value!r} (known: {', '.join(CLASSIFICATIONS)})")
        return value

    @field_validator("last_loaded_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return value.astimezone(UTC) if value is not None else None

    @model_validator(mode="after")
    def _cross_field_rules(self) -> Resource:
        for problem in cross_field_problems(self):
            raise ValueError(problem.message)
        return self

    # -- helpers -----------------------------------------------------------------------------------
    def item(self, column: str) -> InformationItem | None:
        return next((i for i in self.items if i.column == column), None)

    @property
    def columns(self) -> list[str]:
        return [i.column for i in self.items]

    @property
    def personal_items(self) -> list[InformationItem]:
        return [i for i in self.items if i.personal]

    @property
    def key_columns(self) -> list[str]:
        return [i.column for i in self.items if i.key]


@dataclass(frozen=True)
class Problem:
    """One broken rule: the field it is about and a message naming it."""

    field: str
    message: str


def parse_code(code: str) -> dict[str, str] | None:
    """The parts of a resource code (category, item, dept, sub, seq), or None when malformed."""
    match = _CODE.match(code)
    return match.groupdict() if match else None


def path_code(code: str) -> str:
    """The code as it appears in URL paths: ``/`` becomes ``-`` (``210007000-000012``)."""
    return code.replace("/", "-")


def code_from_path(text: str) -> str | None:
    """A resource code from a URL path segment (``210007000-000012`` or ``210007000/000012``), or
    None when it is not a well-formed code."""
    code = text.strip().replace("-", "/", 1) if "-" in text else text.strip()
    return code if _CODE.match(code) else None


def cross_field_problems(resource: Resource) -> list[Problem]:
    """Rules across fields of one resource (the JSON Schema states the same ones)."""
    problems: list[Problem] = []
    parts = parse_code(resource.code)
    if parts is not None:
        if parts["category"] + parts["item"] != resource.classification:
            problems.append(
                Problem(
                    "code",
                    f"code: {resource.code} starts with {parts['category'] + parts['item']}, "
                    f"but the classification is {resource.classification}",
                )
            )
        if parts["dept"] != resource.provider_code:
            problems.append(
                Problem(
                    "code",
                    f"code: {resource.code} names department number {parts['dept']}, "
                    f"but the provider code is {resource.provider_code}",
                )
            )
        if parts["seq"] == "000000":
            problems.append(Problem("code", "code: the sequence number starts at 000001"))
    if resource.sharing_type is SharingType.CONDITIONAL and not resource.condition:
        problems.append(Problem("condition", "condition: a conditional resource needs its sharing condition"))
    if resource.sharing_type is not SharingType.CONDITIONAL and resource.condition:
        problems.append(
            Problem("condition", "condition: only a conditional resource has a sharing condition")
        )
    if resource.sharing_type is SharingType.NOT_SHARED and not resource.legal_basis:
        problems.append(
            Problem("legal_basis", "legal_basis: a resource not shared needs the legal basis for it")
        )
    if resource.sharing_type is not SharingType.NOT_SHARED and resource.legal_basis:
        problems.append(Problem("legal_basis", "legal_basis: only a resource not shared has a legal basis"))
    allowed = METHODS_FOR_FORMAT[resource.format]
    if resource.sharing_method not in allowed:
        problems.append(
            Problem(
                "sharing_method",
                f"sharing_method: {resource.sharing_method} does not fit format {resource.format} "
                f"(allowed: {', '.join(sorted(allowed))})",
            )
        )
    seen: set[str] = set()
    for index, item in enumerate(resource.items):
        if item.column in seen:
            problems.append(Problem("items", f"items: column {item.column!r} appears twice"))
        seen.add(item.column)
        if item.column in RESERVED_COLUMNS:
            field = f"items.{index}.column"
            problems.append(
                Problem(
                    field,
                    f"{field}: {item.column!r} is reserved by the data lake "
                    f"({', '.join(RESERVED_COLUMNS)}); choose another column name",
                )
            )
    return problems


def check_catalogue(resources: Iterable[Resource]) -> list[Problem]:
    """Rules over the whole catalogue: unique codes, one provider number per department and back."""
    problems: list[Problem] = []
    codes: set[str] = set()
    number_of: dict[str, str] = {}
    department_of: dict[str, str] = {}
    for resource in resources:
        if resource.code in codes:
            problems.append(Problem("code", f"code: {resource.code} is used twice"))
        codes.add(resource.code)
        known = number_of.setdefault(resource.department_id, resource.provider_code)
        if known != resource.provider_code:
            problems.append(
                Problem(
                    "provider_code",
                    f"provider_code: {resource.department_id} is numbered {known}, not {resource.provider_code}",
                )
            )
        owner = department_of.setdefault(resource.provider_code, resource.department_id)
        if owner != resource.department_id:
            problems.append(
                Problem(
                    "provider_code",
                    f"provider_code: {resource.provider_code} already belongs to {owner}",
                )
            )
    return problems


def next_code(classification: str, provider_code: str, taken: Iterable[str], sub: str = "000") -> str:
    """The next free code in (classification, department, sub-item)."""
    prefix = f"{classification}{provider_code}{sub}/"
    used = [int(c.split("/")[1]) for c in taken if c.startswith(prefix)]
    return f"{prefix}{max(used, default=0) + 1:06d}"


# -- stale flag ---------------------------------------------------------------------------------------
def is_stale(resource: Resource, now: datetime) -> bool:
    """True when the last load is older than the update cycle allows, or nothing was ever loaded.

    Irregular resources are never stale once loaded. ``now`` must be timezone-aware.
    """
    if resource.last_loaded_at is None:
        return True
    horizon = resource.update_cycle.duration
    if horizon is None:
        return False
    return now - resource.last_loaded_at > horizon


# -- masking per item -----------------------------------------------------------------------------------
def mask_value(rule: MaskingRule, value: Any) -> Any:
    """A value as a department without a grant sees it (None stays None)."""
    if value is None or rule is MaskingRule.NONE:
        return value
    if rule is MaskingRule.REDACT:
        return MASK * 3
    text = str(value)
    if rule is MaskingRule.ID_NUMBER:
        return mask_id_number(text)
    if rule is MaskingRule.PHONE:
        return mask_phone(text)
    if rule is MaskingRule.NAME:
        return mask_name(text)
    return mask_address(text)


def mask_row(resource: Resource, row: dict[str, Any], unmasked: Iterable[str] = ()) -> dict[str, Any]:
    """One row with every personal item masked by its rule, except the columns in ``unmasked``."""
    keep = set(unmasked)
    out = dict(row)
    for item in resource.items:
        if item.column in out and item.column not in keep and item.rule is not MaskingRule.NONE:
            out[item.column] = mask_value(item.rule, out[item.column])
    return out


def masked_columns(resource: Resource, unmasked: Iterable[str] = ()) -> list[str]:
    keep = set(unmasked)
    return [i.column for i in resource.items if i.rule is not MaskingRule.NONE and i.column not in keep]


def parse_resources(records: Sequence[dict[str, Any]]) -> list[Resource]:
    return [Resource.model_validate(r) for r in records]
