"""Catalogue resources and files for the data-lake tests (fake ID numbers: area 340291)."""

from __future__ import annotations

from datetime import date
from typing import Any

from smartzone.domain.catalogue import Resource
from smartzone.domain.idnumbers import make_fake

PROVIDER = "public-security"
READER = "civil-affairs"


def person_id(n: int) -> str:
    """A valid fake citizen ID number (area 340291), distinct per ``n`` < 1000 per year."""
    return make_fake("340291", date(1950 + n % 50, 1 + n % 12, 1 + n % 28), n % 1000)


def resource(
    *,
    code: str = "101001000/000001",
    sharing_type: str = "conditional",
    department_id: str = PROVIDER,
    update_cycle: str = "daily",
) -> Resource:
    extra: dict[str, Any] = {}
    if sharing_type == "conditional":
        extra["condition"] = "经提供方审批后用于社区治理"
    if sharing_type == "not_shared":
        extra["legal_basis"] = "《中华人民共和国个人信息保护法》"
    provider_code = code[3:6]
    return Resource.model_validate(
        {
            "code": code,
            "name": "常住人口登记信息",
            "department_id": department_id,
            "provider_code": provider_code,
            "summary": "辖区常住人口的登记信息",
            "classification": code[:3],
            "format": "csv",
            "update_cycle": update_cycle,
            "sharing_type": sharing_type,
            "sharing_method": "file",
            "published_on": "2024-01-01",
            "items": [
                {
                    "name": "公民身份号码",
                    "column": "id_number",
                    "type": "string",
                    "personal_class": "id_number",
                    "required": True,
                    "key": True,
                },
                {
                    "name": "姓名",
                    "column": "name",
                    "type": "string",
                    "personal_class": "name",
                    "required": True,
                },
                {"name": "联系电话", "column": "phone", "type": "string", "personal_class": "phone"},
                {"name": "所属网格", "column": "grid_id", "type": "string"},
                {"name": "年龄", "column": "age", "type": "integer"},
                {"name": "月收入", "column": "income", "type": "decimal"},
                {"name": "登记日期", "column": "registered_on", "type": "date"},
                {"name": "更新时间", "column": "updated_at", "type": "datetime"},
                {"name": "是否独居", "column": "lives_alone", "type": "boolean"},
            ],
            **extra,
        }
    )


HEADER = "id_number,name,phone,grid_id,age,income,registered_on,updated_at,lives_alone"


def good_row(n: int) -> list[str]:
    return [
        person_id(n),
        f"张{n}",
        f"138{n:08d}",
        f"G{n % 12 + 1:02d}",
        str(20 + n % 60),
        f"{1000 + n * 10.5:.2f}",
        f"2024-{1 + n % 12:02d}-{1 + n % 28:02d}",
        f"2024-05-01T{n % 24:02d}:00:00+08:00",
        "是" if n % 3 == 0 else "否",
    ]


def csv_text(rows: list[list[str]], header: str = HEADER) -> str:
    return "\n".join([header, *(",".join(r) for r in rows)]) + "\n"
