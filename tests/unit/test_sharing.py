"""Sharing decisions and the approval workflow's rules (issue 8), pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from smartzone.domain.catalogue import Resource
from smartzone.domain.sharing import (
    AccessGrant,
    AccessRequest,
    DecisionReason,
    RequestStatus,
    SharingRefused,
    approve,
    check_request,
    decide_access,
    refuse,
)
from tests.unit.test_catalogue import valid_record

NOW = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)
CONDITIONAL = Resource.model_validate(valid_record())
UNCONDITIONAL = Resource.model_validate(valid_record(sharing_type="unconditional", condition=None))
NOT_SHARED = Resource.model_validate(
    valid_record(sharing_type="not_shared", condition=None, legal_basis="《中华人民共和国统计法》第三十九条")
)


def grant(**changes: object) -> AccessGrant:
    values: dict[str, object] = {
        "resource_code": CONDITIONAL.code,
        "department_id": "water",
        "request_id": "SR-1",
        "unmasked_items": frozenset({"phone"}),
        "granted_at": NOW - timedelta(days=1),
        "expires_at": NOW + timedelta(days=30),
    }
    values.update(changes)
    return AccessGrant.model_validate(values)


def request(**changes: object) -> AccessRequest:
    values: dict[str, object] = {
        "request_id": "SR-1",
        "resource_code": CONDITIONAL.code,
        "provider_id": "emergency",
        "requester_id": "water",
        "requested_by": "dept-water",
        "purpose": "防汛转移人员核对",
        "items": ["phone", "person_name"],
        "created_at": NOW,
    }
    values.update(changes)
    return AccessRequest.model_validate(values)


def test_given_the_provider_then_it_always_reads_its_own_resources_unmasked() -> None:
    for resource in (CONDITIONAL, UNCONDITIONAL, NOT_SHARED):
        decision = decide_access("emergency", resource, [], NOW)
        assert decision.allowed and decision.reason is DecisionReason.PROVIDER
        assert decision.unmasked_items == frozenset(resource.columns)


def test_given_an_unconditional_resource_then_every_department_reads_it_masked() -> None:
    decision = decide_access("water", UNCONDITIONAL, [], NOW)
    assert decision.allowed and decision.reason is DecisionReason.UNCONDITIONAL
    assert decision.unmasked_items == frozenset()


def test_given_no_department_then_nothing_is_readable() -> None:
    assert decide_access(None, UNCONDITIONAL, [], NOW).reason is DecisionReason.NOT_A_DEPARTMENT


def test_given_a_conditional_resource_when_no_grant_then_refused_and_with_an_active_grant_allowed() -> None:
    assert decide_access("water", CONDITIONAL, [], NOW).reason is DecisionReason.NO_GRANT
    decision = decide_access("water", CONDITIONAL, [grant()], NOW)
    assert decision.allowed and decision.unmasked_items == frozenset({"phone"})


def test_given_an_expired_grant_then_a_conditional_resource_is_refused_as_expired() -> None:
    old = grant(expires_at=NOW - timedelta(seconds=1))
    decision = decide_access("water", CONDITIONAL, [old], NOW)
    assert not decision.allowed and decision.reason is DecisionReason.GRANT_EXPIRED
    at_expiry = decide_access("water", CONDITIONAL, [grant(expires_at=NOW)], NOW)
    assert not at_expiry.allowed


def test_given_another_departments_grant_then_it_does_not_help() -> None:
    assert not decide_access("health", CONDITIONAL, [grant()], NOW).allowed
    other_resource = grant(resource_code="210007000/000099")
    assert not decide_access("water", CONDITIONAL, [other_resource], NOW).allowed


def test_given_a_not_shared_resource_then_nobody_but_the_provider_reads_it_even_with_a_grant() -> None:
    decision = decide_access("water", NOT_SHARED, [grant()], NOW)
    assert not decision.allowed and decision.reason is DecisionReason.NOT_SHARED


def test_given_a_request_then_only_personal_items_of_another_departments_shared_resource_are_asked() -> None:
    assert check_request(CONDITIONAL, "water", ["phone", "phone"]) == ["phone"]
    with pytest.raises(SharingRefused, match="not a personal item") as refused:
        check_request(CONDITIONAL, "water", ["grid_id"])
    assert refused.value.field == "items"
    with pytest.raises(SharingRefused, match="own resource"):
        check_request(CONDITIONAL, "emergency", [])
    with pytest.raises(SharingRefused, match="not shared"):
        check_request(NOT_SHARED, "water", [])
    with pytest.raises(SharingRefused, match="open already"):
        check_request(UNCONDITIONAL, "water", [])


def test_given_a_pending_request_when_approved_then_a_grant_with_the_chosen_items_until_expiry() -> None:
    decided, made = approve(
        request(), by="dept-emergency", expires_at=NOW + timedelta(days=90), unmasked_items=["phone"], now=NOW
    )
    assert decided.status is RequestStatus.APPROVED and decided.unmasked_items == ["phone"]
    assert made.unmasked_items == frozenset({"phone"}) and made.expires_at == NOW + timedelta(days=90)
    assert decide_access("water", CONDITIONAL, [made], NOW + timedelta(days=89)).allowed
    assert not decide_access("water", CONDITIONAL, [made], NOW + timedelta(days=90)).allowed


@pytest.mark.parametrize(
    ("expires", "items", "field"),
    [
        (NOW - timedelta(minutes=1), [], "expires_at"),
        (NOW + timedelta(days=400), [], "expires_at"),
        (NOW + timedelta(days=10), ["id_number"], "unmasked_items"),
    ],
)
def test_given_a_bad_approval_then_it_is_refused_naming_the_field(
    expires: datetime, items: list[str], field: str
) -> None:
    with pytest.raises(SharingRefused) as refused:
        approve(request(), by="p", expires_at=expires, unmasked_items=items, now=NOW)
    assert refused.value.field == field


def test_given_a_refusal_then_it_needs_a_reason_and_a_decided_request_is_final() -> None:
    with pytest.raises(SharingRefused, match="needs its reason"):
        refuse(request(), by="p", reason=" ", now=NOW)
    refused = refuse(request(), by="p", reason="用途与资源无关", now=NOW)
    assert refused.status is RequestStatus.REFUSED and refused.reason == "用途与资源无关"
    with pytest.raises(SharingRefused) as again:
        approve(refused, by="p", expires_at=NOW + timedelta(days=1), unmasked_items=[], now=NOW)
    assert again.value.status == 409
