"""`/v1/subjects`: the subject key of a resident, from their ID number (sent in a body, never a URL).

``POST /v1/subjects {"type": "resident", "id_number": "..."}`` normalises and validates the
number (GB 11643, :mod:`smartzone.domain.idnumbers`; never corrected) and answers
``resident:<keyed HMAC>``, the key prefill and submissions use. The number itself is not stored,
logged or returned (only masked). Other subject types need no lookup: their key is
``<type>:<id>`` (see :mod:`smartzone.domain.facts`).
"""

from __future__ import annotations

from typing import Annotated, Literal

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body
from pydantic import BaseModel, ConfigDict, Field

from smartzone.domain.facts import resident_key
from smartzone.domain.idnumbers import id_key, parse
from smartzone.domain.masking import mask_id_number
from smartzone.repositories.personal_data import id_hmac_key

from ..context import caller_of
from ..errors import ForbiddenError, Unprocessable

router = Router()


class SubjectLookup(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["resident"] = "resident"
    id_number: str = Field(min_length=1, max_length=40)


class SubjectOut(BaseModel):
    subject: str
    id_number_masked: str
    converted_from_15: bool


@router.post("/", summary="A resident's subject key from their ID number", tags=["forms"])
def post_subject(body: Annotated[SubjectLookup, Body(embed=False)]) -> SubjectOut:
    caller = caller_of(router)
    if not (caller.is_admin or caller.is_grid_worker or caller.is_department):
        raise ForbiddenError("subject keys are for those who fill in forms")
    number = parse(body.id_number)
    if not number.ok or number.normalised is None:
        reasons = "; ".join(f"{p.message_zh} ({p.message_en})" for p in number.problems) or "invalid"
        raise Unprocessable(f"id_number: {reasons}", field="id_number")
    return SubjectOut(
        subject=str(resident_key(id_key(number.normalised, id_hmac_key()))),
        id_number_masked=mask_id_number(number.normalised),
        converted_from_15=number.converted,
    )
