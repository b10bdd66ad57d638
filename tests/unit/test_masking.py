"""The one masking policy (DESIGN.md, "Data conventions") and who sees what."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartzone.domain.identity import Caller
from smartzone.domain.masking import (
    UNMASKED_ROLES,
    Audience,
    mask_address,
    mask_for,
    mask_id_number,
    mask_name,
    mask_phone,
)


# -- ID numbers -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("340202199001011234", "340202********1234"),
        ("34020219900101123x", "340202********123X"),
        ("340202 1990 0101 123X", "340202********123X"),
        ("３４０２０２１９９００１０１１２３Ｘ", "340202********123X"),
        ("340202900101123", "340202*****1123"),
        ("1234567890", "**********"),
        ("", ""),
    ],
)
def test_given_an_id_number_when_masked_then_first_6_and_last_4_remain(raw: str, masked: str) -> None:
    assert mask_id_number(raw) == masked


@given(st.text(alphabet="0123456789X", min_size=11, max_size=30))
def test_given_any_long_id_when_masked_then_only_ten_characters_show(raw: str) -> None:
    out = mask_id_number(raw)
    assert len(out) == len(raw) and out[:6] == raw[:6] and out[-4:] == raw[-4:]
    assert set(out[6:-4]) == {"*"}


# -- phones ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("13812345678", "138****5678"),
        ("138-1234-5678", "138****5678"),
        ("+86 138 1234 5678", "138****5678"),
        ("008613812345678", "138****5678"),
        ("0553-5812345", "055****2345"),
        ("１３８１２３４５６７８", "138****5678"),
        ("12345", "****"),
        ("", "****"),
    ],
)
def test_given_a_phone_when_masked_then_3_stars_4(raw: str, masked: str) -> None:
    assert mask_phone(raw) == masked


# -- names -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("张三", "张*"),
        ("张三丰", "张*"),
        ("王小二蛋", "王*"),
        ("欧阳娜娜", "欧阳*"),
        ("欧阳锋", "欧阳*"),
        ("司马懿", "司马*"),
        ("诸葛亮", "诸葛*"),
        ("欧阳", "欧*"),
        ("李", "*"),
        ("", "*"),
        (" 赵 四 ", "赵*"),
        ("买买提·艾力", "买*"),
        ("Smith", "S*"),
    ],
)
def test_given_a_name_when_masked_then_surname_and_a_star(raw: str, masked: str) -> None:
    assert mask_name(raw) == masked


# -- addresses --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("安徽省芜湖市弋江区高新大道178号", "安徽省芜湖市弋江区高新大道"),
        ("弋江区中山南路街道翠竹社区翠竹园5栋2单元501室", "弋江区中山南路街道"),
        ("芜湖市弋江区花津南路与文津西路交叉口东50米", "芜湖市弋江区花津南路与文津西路"),
        ("弋江区白马山路三号楼", "弋江区白马山路"),
        ("芜湖市弋江区翠竹园小区5栋", "芜湖市弋江区"),
        ("某某小区", "***"),
    ],
)
def test_given_an_address_for_public_output_when_masked_then_cut_to_street_level(
    raw: str, masked: str
) -> None:
    assert mask_address(raw) == masked


@given(st.text(max_size=60))
def test_given_any_address_when_masked_then_no_digit_survives(raw: str) -> None:
    out = mask_address(raw)
    assert not any(c.isascii() and c.isdigit() for c in out)


# -- who sees what ----------------------------------------------------------------------------------------
def caller(*groups: str) -> Caller:
    return Caller.of("sub-1", "u1", groups)


def test_given_the_policy_then_the_unmasked_roles_are_named_in_one_place() -> None:
    assert {r.value for r in UNMASKED_ROLES} == {"admin", "dispatcher"}


@pytest.mark.parametrize("groups", [("dispatcher",), ("admin",), ("grid_worker", "dispatcher")])
def test_given_a_privileged_staff_caller_then_data_unmasked_and_audited(groups: tuple[str, ...]) -> None:
    m = mask_for(caller(*groups))
    assert m.unmasked and m.audit
    assert m.phone("13812345678") == "13812345678" and m.name("欧阳娜娜") == "欧阳娜娜"
    assert m.address("弋江区高新大道178号") == "弋江区高新大道178号"


@pytest.mark.parametrize("groups", [("grid_worker",), ("technician",)])
def test_given_field_staff_then_personal_data_masked_but_full_addresses(groups: tuple[str, ...]) -> None:
    m = mask_for(caller(*groups))
    assert not m.audit
    assert m.id_number("340202199001011234") == "340202********1234"
    assert m.phone("13812345678") == "138****5678"
    assert m.name("张三丰") == "张*"
    assert m.address("弋江区高新大道178号") == "弋江区高新大道178号", "they are sent to the spot"


@pytest.mark.parametrize("who", [None, caller(), caller("dispatcher"), caller("admin")])
def test_given_a_public_output_then_everything_masked_whoever_asks(who: Caller | None) -> None:
    m = mask_for(who, Audience.PUBLIC)
    assert not m.unmasked and not m.audit
    assert m.phone("13812345678") == "138****5678"
    assert m.address("弋江区高新大道178号") == "弋江区高新大道"


def test_given_an_anonymous_or_roleless_caller_then_everything_masked() -> None:
    for who in (None, caller("staff")):
        m = mask_for(who)
        assert not m.unmasked and m.address("弋江区高新大道178号") == "弋江区高新大道"


def test_given_missing_values_then_they_stay_missing() -> None:
    m = mask_for(None)
    assert (
        m.phone(None) is None
        and m.name(None) is None
        and m.id_number(None) is None
        and m.address(None) is None
    )
