"""The JSON Schema of a catalogue resource (draft 2020-12), and validation against it.

Published as ``docs/schemas/catalogue-resource.schema.json`` (written and checked by
``python -m tools.catalogue_seed``). It states the same rules as :class:`~smartzone.domain.catalogue.Resource`,
cross-field ones included (``if``/``then``): a condition for conditional resources and only for them,
a legal basis for resources not shared and only for them, the sharing method allowed by the format,
the code starting with the classification, a masking rule for every personal item, no item column
named like a column the data lake adds (``dt``, ``resource``, ``_batch``, ``_row``). One rule JSON
Schema cannot state (two fields' values compared): the code's department part equals
``provider_code``; the model checks it.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from smartzone.domain.catalogue import (
    CLASSIFICATIONS,
    CODE_PATTERN,
    COLUMN_PATTERN,
    DEPARTMENT_ID_PATTERN,
    METHODS_FOR_FORMAT,
    PROVIDER_CODE_PATTERN,
    RESERVED_COLUMNS,
    ItemType,
    MaskingRule,
    PersonalClass,
    Problem,
    ResourceFormat,
    SharingMethod,
    SharingType,
    UpdateCycle,
)

SCHEMA_ID = "https://smartzone.example.gov.cn/schemas/catalogue-resource.schema.json"


def _values(enum: Any) -> list[str]:
    return [member.value for member in enum]


def _text(min_length: int, max_length: int, description: str) -> dict[str, Any]:
    return {"type": "string", "minLength": min_length, "maxLength": max_length, "description": description}


ITEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "column", "type"],
    "properties": {
        "name": _text(1, 64, "信息项名称"),
        "column": {
            "type": "string",
            "pattern": COLUMN_PATTERN,
            "not": {"enum": list(RESERVED_COLUMNS)},
            "description": "column name; not one the data lake adds (" + ", ".join(RESERVED_COLUMNS) + ")",
        },
        "type": {"enum": _values(ItemType)},
        "personal_class": {"enum": _values(PersonalClass), "default": "none"},
        "masking": {"enum": _values(MaskingRule), "description": "defaults from personal_class"},
        "required": {"type": "boolean", "default": False},
        "key": {"type": "boolean", "default": False},
    },
    "allOf": [
        {
            "if": {
                "required": ["personal_class"],
                "properties": {"personal_class": {"not": {"const": "none"}}},
            },
            "then": {"properties": {"masking": {"not": {"const": "none"}}}},
        },
        {
            "if": {
                "required": ["masking"],
                "properties": {"masking": {"enum": ["id_number", "phone", "name", "address"]}},
            },
            "then": {"properties": {"type": {"const": "string"}}},
        },
        {
            "if": {
                "not": {"required": ["masking"]},
                "required": ["personal_class"],
                "properties": {"personal_class": {"enum": ["id_number", "phone", "name", "address"]}},
            },
            "then": {"properties": {"type": {"const": "string"}}},
        },
    ],
}


def _format_rules() -> list[dict[str, Any]]:
    rules = []
    for fmt in ResourceFormat:
        methods = sorted(m.value for m in METHODS_FOR_FORMAT[fmt])
        rules.append(
            {
                "if": {"required": ["format"], "properties": {"format": {"const": fmt.value}}},
                "then": {"properties": {"sharing_method": {"enum": methods}}},
            }
        )
    return rules


def _classification_rules() -> list[dict[str, Any]]:
    return [
        {
            "if": {"required": ["classification"], "properties": {"classification": {"const": code}}},
            "then": {"properties": {"code": {"pattern": f"^{code}"}}},
        }
        for code in CLASSIFICATIONS
    ]


RESOURCE_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": SCHEMA_ID,
    "title": "政务信息资源目录条目 (GB/T 21063) — SmartZone catalogue resource",
    "type": "object",
    "additionalProperties": False,
    "required": [
        "code",
        "name",
        "department_id",
        "provider_code",
        "summary",
        "classification",
        "items",
        "format",
        "update_cycle",
        "sharing_type",
        "sharing_method",
        "published_on",
    ],
    "properties": {
        "code": {"type": "string", "pattern": CODE_PATTERN, "description": "信息资源代码 类项目细目/顺序码"},
        "name": _text(2, 100, "信息资源名称"),
        "department_id": {
            "type": "string",
            "pattern": DEPARTMENT_ID_PATTERN,
            "description": "信息资源提供方",
        },
        "provider_code": {
            "type": "string",
            "pattern": PROVIDER_CODE_PATTERN,
            "description": "信息资源提供方代码",
        },
        "summary": _text(4, 1000, "信息资源摘要"),
        "classification": {"enum": list(CLASSIFICATIONS), "description": "信息资源分类 (类 + 项)"},
        "items": {"type": "array", "minItems": 1, "maxItems": 200, "items": ITEM_SCHEMA},
        "format": {"enum": _values(ResourceFormat), "description": "信息资源格式"},
        "update_cycle": {"enum": _values(UpdateCycle), "description": "更新周期"},
        "sharing_type": {"enum": _values(SharingType), "description": "共享类型"},
        "condition": {
            "type": ["string", "null"],
            "minLength": 4,
            "maxLength": 500,
            "description": "共享条件",
        },
        "legal_basis": {
            "type": ["string", "null"],
            "minLength": 4,
            "maxLength": 500,
            "description": "不予共享依据",
        },
        "sharing_method": {"enum": _values(SharingMethod), "description": "共享方式"},
        "published_on": {"type": "string", "format": "date", "description": "发布日期"},
        "last_loaded_at": {"type": ["string", "null"], "format": "date-time"},
    },
    "allOf": [
        {
            "if": {"required": ["sharing_type"], "properties": {"sharing_type": {"const": "conditional"}}},
            "then": {"required": ["condition"], "properties": {"condition": {"type": "string"}}},
            "else": {"properties": {"condition": {"type": "null"}}},
        },
        {
            "if": {"required": ["sharing_type"], "properties": {"sharing_type": {"const": "not_shared"}}},
            "then": {"required": ["legal_basis"], "properties": {"legal_basis": {"type": "string"}}},
            "else": {"properties": {"legal_basis": {"type": "null"}}},
        },
        *_format_rules(),
        *_classification_rules(),
    ],
}


_REQUIRED = re.compile(r"'([^']+)' is a required property")


@cache
def _validator() -> Any:
    from jsonschema import Draft202012Validator

    Draft202012Validator.check_schema(RESOURCE_SCHEMA)
    return Draft202012Validator(RESOURCE_SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER)


def schema_problems(data: Any) -> list[Problem]:
    """Every error of ``data`` against the schema, each naming its field (``items.2.masking``)."""
    problems = []
    for error in sorted(_validator().iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path]):
        path = ".".join(str(p) for p in error.absolute_path)
        if error.validator == "required":
            match = _REQUIRED.match(error.message)
            if match:
                path = f"{path}.{match.group(1)}" if path else match.group(1)
        field = path or "body"
        problems.append(Problem(field, f"{field}: {_plain(error)}"))
    return problems


def _plain(error: Any) -> str:
    """jsonschema's message, shortened for the long ones (``not``/``const`` on if/then rules)."""
    message = str(error.message)
    return message if len(message) <= 200 else message[:197] + "..."
