"""Form definitions: versioned JSON Schema documents with display metadata, every field bound to a fact.

A department owns a form (``department_id``) and assigns it to grids and/or communities. Each
version is immutable once stored; a new version gets ``version + 1`` and old submissions keep the
version they were made with. A retired form takes no new submissions.

The JSON Schema (draft 2020-12) of a version is generated from its fields (one source of truth):
each field's ``schema`` narrows its fact's base schema (:func:`smartzone.domain.facts.value_schema`);
labels, help texts and order go into ``title``/``description``/``x-order`` and stay available as
field metadata for the app. Submitted values are validated with ``jsonschema``; each problem names
the field and carries a Chinese and an English message (:func:`validate_values`).
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError

from smartzone.domain.facts import CATALOGUE, SubjectType, ValueType, fact, value_schema

MAX_FIELDS = 40
"""At most this many fields per form: a submission's facts are written in one transaction."""
FORM_ID_PATTERN = r"^[a-z][a-z0-9-]{2,63}$"
FIELD_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,47}$"
GRID_PATTERN = r"^G[0-9]{2,3}$"
_ALLOWED_SCHEMA_KEYWORDS = frozenset(
    {
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "minLength",
        "maxLength",
        "pattern",
        "enum",
    }
)


class FormStatus(StrEnum):
    ACTIVE = "active"
    RETIRED = "retired"


class FormField(BaseModel):
    """One field: its name in submissions, the fact it is bound to, and how it is shown."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=FIELD_NAME_PATTERN)
    fact: str = Field(description="the fact code this field reads and writes, e.g. household.size")
    label_zh: str = Field(min_length=1, max_length=64)
    label_en: str | None = Field(None, max_length=128)
    help_zh: str | None = Field(None, max_length=300)
    order: int = Field(ge=0, le=10_000)
    required: bool = False
    schema_: dict[str, Any] = Field(
        default_factory=dict,
        alias="schema",
        description="JSON Schema keywords narrowing the fact's type: minimum, maximum, minLength, "
        "maxLength, pattern, enum",
    )
    enum_labels_zh: dict[str, str] | None = Field(None, description="display labels of enum values")

    @field_validator("fact")
    @classmethod
    def _known_fact(cls, value: str) -> str:
        if value not in CATALOGUE:
            raise ValueError(f"unknown fact code {value!r}")
        return value

    @field_validator("schema_")
    @classmethod
    def _narrowing_only(cls, value: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(value) - _ALLOWED_SCHEMA_KEYWORDS)
        if unknown:
            raise ValueError(f"schema may only narrow the fact's type; not allowed: {', '.join(unknown)}")
        return value

    @property
    def subject_type(self) -> SubjectType:
        return fact(self.fact).subject_type

    def json_schema(self) -> dict[str, Any]:
        base = value_schema(fact(self.fact).value_type)
        schema: dict[str, Any] = {**base, **self.schema_, "title": self.label_zh, "x-order": self.order}
        schema["x-fact"] = self.fact
        if self.help_zh:
            schema["description"] = self.help_zh
        if self.label_en:
            schema["x-label-en"] = self.label_en
        if fact(self.fact).value_type is ValueType.CHOICE and "enum" not in schema:
            raise ValueError(f"field {self.name}: a choice needs an enum")
        return schema


class FormDraft(BaseModel):
    """What a department (or an admin) writes to create a form or a new version."""

    model_config = ConfigDict(extra="forbid")

    title_zh: str = Field(min_length=1, max_length=80)
    title_en: str | None = Field(None, max_length=160)
    description_zh: str | None = Field(None, max_length=500)
    assigned_grids: list[str] = Field(default_factory=list, max_length=200)
    assigned_communities: list[str] = Field(default_factory=list, max_length=50)
    fields: list[FormField] = Field(min_length=1, max_length=MAX_FIELDS)

    @field_validator("assigned_grids")
    @classmethod
    def _grids(cls, value: list[str]) -> list[str]:
        for grid in value:
            if not re.match(GRID_PATTERN, grid):
                raise ValueError(f"{grid!r} is not a grid id like G03")
        return sorted(set(value))

    @model_validator(mode="after")
    def _consistent(self) -> FormDraft:
        names = [f.name for f in self.fields]
        if len(set(names)) != len(names):
            raise ValueError("field names must be unique")
        facts = [f.fact for f in self.fields]
        if len(set(facts)) != len(facts):
            raise ValueError("each fact may be asked once per form")
        if not self.assigned_grids and not self.assigned_communities:
            raise ValueError("assign the form to at least one grid or community")
        return self

    @model_validator(mode="after")
    def _valid_schema(self) -> FormDraft:
        from jsonschema import Draft202012Validator  # lazy: the API imports this module at start
        from jsonschema.exceptions import SchemaError

        try:
            Draft202012Validator.check_schema(build_schema(self.title_zh, self.fields))
        except SchemaError as exc:
            raise ValueError(f"the fields do not make a valid JSON Schema: {exc.message}") from None
        return self


class FormDefinition(FormDraft):
    """One stored version of a form."""

    form_id: str = Field(pattern=FORM_ID_PATTERN)
    version: int = Field(ge=1)
    department_id: str
    status: FormStatus = FormStatus.ACTIVE
    created_at: str
    created_by: str

    @model_validator(mode="after")
    def _valid_schema(self) -> FormDefinition:
        """Stored versions were checked as drafts when they were written: not again on every read."""
        return self

    @property
    def subject_types(self) -> list[SubjectType]:
        """The subject types this form's fields belong to (a submission names one subject each)."""
        return sorted({f.subject_type for f in self.fields})

    @property
    def ordered_fields(self) -> list[FormField]:
        return sorted(self.fields, key=lambda f: (f.order, f.name))

    def field(self, name: str) -> FormField | None:
        return next((f for f in self.fields if f.name == name), None)

    def json_schema(self) -> dict[str, Any]:
        return build_schema(self.title_zh, self.fields, form_id=self.form_id, version=self.version)

    def assigned_to(self, grid_id: str, community: str | None) -> bool:
        return grid_id in self.assigned_grids or (
            community is not None and community in self.assigned_communities
        )


def build_schema(
    title: str, fields: list[FormField], *, form_id: str | None = None, version: int | None = None
) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a form version's ``values`` object."""
    schema: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": title,
        "type": "object",
        "properties": {f.name: f.json_schema() for f in sorted(fields, key=lambda f: (f.order, f.name))},
        "required": [f.name for f in sorted(fields, key=lambda f: (f.order, f.name)) if f.required],
        "additionalProperties": False,
    }
    if form_id is not None:
        schema["$id"] = f"urn:smartzone:form:{form_id}:v{version}"
    return schema


# -- validation of submitted values ------------------------------------------------------------------
class FieldProblem(BaseModel):
    """One bad field of a submission, in Chinese and English."""

    field: str
    message_zh: str
    message_en: str


def _problem(error: ValidationError, labels: dict[str, str]) -> FieldProblem:
    path = [str(p) for p in error.absolute_path]
    keyword = str(error.validator)
    value: Any = error.validator_value
    if keyword == "required":
        name = error.message.split("'")[1] if "'" in error.message else "values"
        label = labels.get(name, name)
        return FieldProblem(field=name, message_zh=f"{label}为必填项", message_en=f"{name} is required")
    if keyword == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        name = extra[0] if extra else "values"
        return FieldProblem(
            field=name, message_zh=f"表单中没有字段{name}", message_en=f"{name} is not a field of this form"
        )
    name = path[0] if path else "values"
    label = labels.get(name, name)
    zh, en = _messages(keyword, value, label)
    return FieldProblem(field=name, message_zh=zh, message_en=f"{name} {en}")


def _messages(keyword: str, value: Any, label: str) -> tuple[str, str]:
    """The Chinese and English message of one failed JSON Schema keyword."""
    if keyword == "type":
        return f"{label}的类型不正确(应为{_TYPE_ZH.get(str(value), value)})", f"must be of type {value}"
    if keyword == "minimum":
        return f"{label}不能小于{value}", f"must be at least {value}"
    if keyword == "maximum":
        return f"{label}不能大于{value}", f"must be at most {value}"
    if keyword == "exclusiveMinimum":
        return f"{label}必须大于{value}", f"must be greater than {value}"
    if keyword == "exclusiveMaximum":
        return f"{label}必须小于{value}", f"must be less than {value}"
    if keyword == "minLength":
        zh = f"{label}不能为空" if value == 1 else f"{label}至少{value}个字"
        return zh, f"must have at least {value} characters"
    if keyword == "maxLength":
        return f"{label}不能超过{value}个字", f"must have at most {value} characters"
    if keyword == "pattern":
        return f"{label}格式不正确", "has an invalid format"
    if keyword == "enum":
        options = [str(v) for v in value]
        return f"{label}须为以下之一:{'、'.join(options)}", f"must be one of {', '.join(options)}"
    return f"{label}不符合要求", "is invalid"


_TYPE_ZH = {"integer": "整数", "number": "数字", "string": "文本", "boolean": "是/否", "object": "对象"}


def validate_values(form: FormDefinition, values: dict[str, Any]) -> list[FieldProblem]:
    """Every problem of ``values`` against the form version's schema, one per field, in field order."""
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(form.json_schema())
    labels = {f.name: f.label_zh for f in form.fields}
    order = {f.name: (f.order, f.name) for f in form.fields}
    seen: dict[str, FieldProblem] = {}
    for error in validator.iter_errors(values):
        problem = _problem(error, labels)
        seen.setdefault(problem.field, problem)
    return sorted(seen.values(), key=lambda p: order.get(p.field, (10**6, p.field)))


# -- submissions ----------------------------------------------------------------------------------------
class Submission(BaseModel):
    """One stored submission of one form version (idempotent on ``submission_id``)."""

    submission_id: str
    """The client's submission id (offline retries reuse it)."""
    form_id: str
    form_version: int
    department_id: str
    grid_id: str
    community: str | None = None
    subjects: dict[str, str]
    """Subject type → subject key (``household`` → ``household:H-LJ-0001``)."""
    values: dict[str, Any]
    outcomes: dict[str, str]
    """Field name → ``prefilled_confirmed`` / ``corrected`` / ``typed_new``."""
    submitted_by: str
    received_at: str
    collected_at: str | None = None
    """When the worker filled it in on the device (may be hours earlier when offline)."""
    fingerprint: str
    """SHA-256 of the request: a retry must carry the same request."""

    def outcome_counts(self) -> dict[str, int]:
        counts = {"prefilled_confirmed": 0, "corrected": 0, "typed_new": 0}
        for outcome in self.outcomes.values():
            counts[outcome] = counts.get(outcome, 0) + 1
        return counts
