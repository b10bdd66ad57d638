"""Synthetic residents for the resident-store and API tests (fake ID numbers, made-up people).

ID numbers come from :func:`smartzone.domain.idnumbers.make_fake` with county code 99 (no such
county): valid in form and check character, belonging to nobody.
"""

from __future__ import annotations

import base64
from datetime import date

from smartzone.domain import idnumbers
from smartzone.population.models import (
    Candidate,
    GoldenField,
    GoldenRecord,
    Lineage,
    ReviewItem,
    ReviewReason,
    SourceRef,
)

HMAC_SECRET = "test-id-hmac-secret"
LOCAL_KEY = base64.b64encode(bytes(range(32))).decode()
AREA = "340299"


def fake_id(born: date, sequence: int) -> str:
    return idnumbers.make_fake(AREA, born, sequence)


def key_of(number: str) -> str:
    return idnumbers.id_key(number, HMAC_SECRET.encode())


def golden(
    number: str,
    *,
    name: str,
    phone: str | None,
    address: str,
    grid_id: str,
    community: str,
    categories: tuple[str, ...] = (),
    sex: str = "female",
) -> GoldenRecord:
    parsed = idnumbers.parse(number)
    assert parsed.ok and parsed.birth_date is not None
    values = {"name": name, "address": address, "sex": sex, "birth_date": parsed.birth_date.isoformat()}
    if phone:
        values["phone"] = phone
    fields = {
        k: GoldenField(
            value=v,
            lineage=Lineage(source="census_2020", row=7, source_date="2020-11-01", rule="source_priority"),
        )
        for k, v in values.items()
    }
    return GoldenRecord(
        id_key=key_of(number),
        id_number=number,
        id_kind="resident_18",
        fields=fields,
        sources=[SourceRef(source="census_2020", row=7, source_date="2020-11-01")],
        rules_version="test-1",
        classification={
            "residence": "registered",
            "age_band": "60+",
            "community": community,
            "grid_id": grid_id,
            "categories": list(categories),
        },
    )


PEOPLE_IDS = {
    "zhang": fake_id(date(1948, 5, 6), 21),
    "li": fake_id(date(1985, 2, 3), 32),
    "wang": fake_id(date(1950, 9, 30), 44),
}
PHONES = {"zhang": "13812340001", "li": "13912340002", "wang": "13712340003"}


def district_records() -> list[GoldenRecord]:
    return [
        golden(
            PEOPLE_IDS["zhang"],
            name="张秀英",
            phone=PHONES["zhang"],
            address="弋江区高新大道178号3栋501室",
            grid_id="G03",
            community="高新社区",
            categories=("elderly_alone",),
        ),
        golden(
            PEOPLE_IDS["li"],
            name="李建国",
            phone=PHONES["li"],
            address="弋江区文津路12号",
            grid_id="G04",
            community="文津社区",
            sex="male",
        ),
        golden(
            PEOPLE_IDS["wang"],
            name="王桂兰",
            phone=PHONES["wang"],
            address="弋江区高新大道180号1栋",
            grid_id="G03",
            community="高新社区",
            categories=("elderly_alone", "low_income"),
        ),
    ]


def review_items() -> list[ReviewItem]:
    zhang = key_of(PEOPLE_IDS["zhang"])
    return [
        ReviewItem(
            item_id="conflict-zhang-name",
            reason=ReviewReason.FIELD_CONFLICT,
            id_key=zhang,
            field="name",
            candidates=[
                Candidate(value="张秀英", source="census_2020", row=7, source_date="2020-11-01"),
                Candidate(value="张秀瑛", source="visit_2023", row=3, source_date="2023-05-01"),
            ],
            chosen="张秀英",
        ),
        ReviewItem(
            item_id="invalid-row-1",
            reason=ReviewReason.INVALID_ID,
            source="visit_2021",
            row=12,
            details=["check_char"],
            row_fields={"name": "赵小红", "phone": "13600001234", "id_text": PEOPLE_IDS["li"][:-1] + "0"},
        ),
    ]
