"""ID numbers (GB 11643-1999): normalisation, validation, kinds, spreadsheet damage, property tests.

Every number here is generated with a fake area code (county ``9x``, e.g. ``340291``) or a permit /
foreign prefix: none is a real person's.
"""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smartzone.domain import idnumbers
from smartzone.domain.idnumbers import IdKind, IdProblemCode, Sex, check_char, make_fake, normalise, parse

TODAY = date(2026, 11, 29)
VALID = make_fake("340291", date(1990, 1, 2), 123)  # fake county 91


def codes(raw: str) -> list[str]:
    return parse(raw, today=TODAY).problem_codes


def test_given_the_standard_weights_when_computing_check_chars_then_known_examples_match() -> None:
    assert idnumbers.WEIGHTS == (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    assert check_char("34029119900102123") == VALID[-1]
    with pytest.raises(ValueError):
        check_char("123")


def test_given_messy_text_when_normalising_then_nfkc_spaces_hyphens_and_x_are_handled() -> None:
    fake = make_fake("340292", date(1985, 5, 6), 7)
    messy = (
        fake[:6].translate(str.maketrans("0123456789", "０１２３４５６７８９"))
        + " "
        + fake[6:10]
        + "-"
        + fake[10:]
    )
    assert normalise(messy) == fake
    assert normalise("34029219850506007x") == "34029219850506007X"


def test_given_a_valid_number_when_parsed_then_birth_date_sex_and_kind_are_derived() -> None:
    parsed = parse(VALID, today=TODAY)
    assert parsed.ok and parsed.normalised == VALID and parsed.kind is IdKind.RESIDENT_18
    assert parsed.birth_date == date(1990, 1, 2)
    assert parsed.sex is Sex.MALE  # sequence 123: odd
    assert parse(make_fake("340291", date(1990, 1, 2), 124), today=TODAY).sex is Sex.FEMALE
    assert not parsed.converted and parsed.problems == ()


def test_given_a_15_digit_number_when_parsed_then_it_is_converted_to_18_and_flagged() -> None:
    old = VALID[:6] + VALID[8:17]
    parsed = parse(old, today=TODAY)
    assert parsed.ok and parsed.converted and parsed.kind is IdKind.CONVERTED_FROM_15
    assert parsed.normalised == VALID
    assert parsed.birth_date == date(1990, 1, 2)


@pytest.mark.parametrize(
    ("prefix", "kind"),
    [
        ("810000", IdKind.RESIDENCE_PERMIT_HK),
        ("820000", IdKind.RESIDENCE_PERMIT_MO),
        ("830000", IdKind.RESIDENCE_PERMIT_TW),
        ("934840", IdKind.FOREIGN_PERMANENT),
    ],
)
def test_given_permit_and_foreign_prefixes_when_parsed_then_they_are_tagged_by_type(
    prefix: str, kind: IdKind
) -> None:
    parsed = parse(make_fake(prefix, date(2001, 2, 3), 45), today=TODAY)
    assert parsed.ok and parsed.kind is kind and parsed.birth_date == date(2001, 2, 3)


def test_given_the_old_foreign_permanent_format_when_parsed_then_it_is_accepted_with_its_birth_date() -> None:
    parsed = parse("usa329001021234", today=TODAY)  # fake: 3 letters, place 32, 900102, 1234
    assert parsed.ok and parsed.kind is IdKind.FOREIGN_PERMANENT and parsed.birth_date == date(1990, 1, 2)
    assert parse("USA329013021234", today=TODAY).problem_codes == ["bad_date"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", ["empty"]),
        ("   ", ["empty"]),
        ("3402911990", ["length"]),
        ("34029119900102123A", ["format"]),
        ("3.40291E+17", ["spreadsheet_scientific_notation"]),
        ("3.40291199001021E+17", ["spreadsheet_scientific_notation"]),
        (VALID + ".0", ["spreadsheet_float"]),
        ("34029119900230001" + check_char("34029119900230001"), ["bad_date"]),
        (make_fake("340291", date(2024, 1, 1), 1), ["future_date"]),
        (VALID[:17] + ("0" if VALID[17] != "0" else "1"), ["check_char"]),
        ("990291199001021234"[:17] + check_char("99029119900102123"), ["area"]),
    ],
)
def test_given_bad_numbers_when_parsed_then_problems_have_stable_codes(raw: str, expected: list[str]) -> None:
    today = date(2023, 12, 31) if expected == ["future_date"] else TODAY
    result = parse(raw, today=today)
    assert not result.ok and result.normalised is None
    assert result.problem_codes == expected
    assert all(p.message_zh and p.message_en for p in result.problems)
    assert all(
        raw.strip() == "" or raw not in p.message_en for p in result.problems
    )  # never echoes the number


def test_given_trailing_000_that_fails_the_check_when_parsed_then_it_is_spreadsheet_damage_never_repaired() -> (
    None
):
    damaged = VALID[:15] + "000"
    assert check_char(damaged[:17]) != "0"  # the fixture: precision lost, check fails
    result = parse(damaged, today=TODAY)
    assert not result.ok and result.problem_codes == ["spreadsheet_trailing_zeros"]


def test_given_a_sources_own_fields_when_they_contradict_the_number_then_contradictions_are_reported() -> (
    None
):
    parsed = parse(VALID, today=TODAY)
    found = idnumbers.contradictions(parsed, sex="女", birth_date="1990年1月3日")
    assert [p.code for p in found] == [IdProblemCode.SEX_MISMATCH, IdProblemCode.BIRTH_DATE_MISMATCH]
    assert idnumbers.contradictions(parsed, sex="1", birth_date="1990/1/2") == []
    assert idnumbers.contradictions(parsed, sex=None, birth_date="") == []


def test_given_an_hmac_secret_when_keying_then_the_key_is_stable_keyed_and_not_the_number() -> None:
    key = idnumbers.id_key(VALID, b"secret-a")
    assert key == idnumbers.id_key(VALID, b"secret-a") and len(key) == 64
    assert key != idnumbers.id_key(VALID, b"secret-b")
    assert VALID not in key


# -- property tests ---------------------------------------------------------------------------------
FAKE_AREAS = st.sampled_from(["340291", "340292", "110191", "440399", "650298", "810000", "830000", "934840"])
BIRTHS = st.dates(min_value=date(1900, 1, 1), max_value=date(2025, 12, 31))
valid_numbers = st.builds(make_fake, FAKE_AREAS, BIRTHS, st.integers(0, 999))


@settings(max_examples=60, deadline=None)
@given(valid_numbers)
def test_property_every_generated_number_is_valid(number: str) -> None:
    parsed = parse(number, today=TODAY)
    assert parsed.ok and parsed.normalised == number
    assert parse(number.lower(), today=TODAY).normalised == number


@settings(max_examples=40, deadline=None)
@given(valid_numbers)
def test_property_every_single_character_substitution_is_caught(number: str) -> None:
    """Caught means: the mutated number is not ``ok`` (it can never pass as another valid number)."""
    for position in range(18):
        alphabet = "0123456789X" if position == 17 else "0123456789"
        for char in alphabet:
            if char != number[position]:
                mutant = number[:position] + char + number[position + 1 :]
                assert not parse(mutant, today=TODAY).ok, (position, char)


@settings(max_examples=40, deadline=None)
@given(valid_numbers)
def test_property_every_adjacent_transposition_is_caught(number: str) -> None:
    """Swapping two equal neighbours changes nothing (no error to catch); every other swap is caught."""
    for position in range(17):
        a, b = number[position], number[position + 1]
        mutant = number[:position] + b + a + number[position + 2 :]
        if a == b:
            assert mutant == number
        else:
            assert not parse(mutant, today=TODAY).ok, position


# -- review findings: non-ASCII digits, permits' areas, the old foreign form, the text marker ------------
ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
DEVANAGARI = str.maketrans("0123456789", "०१२३४५६७८९")


@pytest.mark.parametrize("digits", [ARABIC_INDIC, DEVANAGARI])
@pytest.mark.parametrize("raw", [VALID, VALID[:6] + VALID[8:17], "USA329001021234"])
def test_given_digits_of_another_script_when_parsed_then_a_format_problem_never_an_exception(
    raw: str, digits: dict[int, str]
) -> None:
    # Given a number whose digits survive NFKC as non-ASCII digits (all, or just one)
    for written in (raw.translate(digits), raw[:-2] + raw[-2].translate(digits) + raw[-1]):
        # When parsed Then it is rejected as a format problem
        assert codes(written) == ["format"]


@given(st.text(max_size=40))
@settings(max_examples=500, deadline=None)
def test_property_parse_never_raises_for_any_text(text: str) -> None:
    parsed = parse(text, today=TODAY)
    assert parsed.ok is (parsed.normalised is not None)
    assert parsed.ok or parsed.problems


@given(
    st.text(
        alphabet=st.characters(categories=["Nd"]).filter(lambda c: not normalise(c).isascii()),
        min_size=1,
        max_size=18,
    ),
    st.integers(0, 17),
)
@settings(max_examples=300, deadline=None)
def test_property_any_non_ascii_digit_is_rejected(foreign: str, at: int) -> None:
    # Given a valid number with one digit, or every digit, replaced by non-ASCII digits
    for raw in (VALID[:at] + foreign[0] + VALID[at + 1 :], (foreign * 18)[:18], (foreign * 15)[:15]):
        # When parsed Then it is not ok, as a format problem
        assert parse(raw, today=TODAY).problem_codes == ["format"]


@pytest.mark.parametrize("area", ["810100", "820011", "839999", "811234"])
def test_given_a_permit_whose_area_is_not_exactly_810000_820000_830000_then_an_area_problem(
    area: str,
) -> None:
    assert codes(make_fake(area, date(2001, 2, 3), 45)) == ["area"]


def test_given_the_old_foreign_form_when_the_century_is_ambiguous_then_no_birth_date_is_derived() -> None:
    # Given YY 18-99: only 19YY (the form was not issued after 2017)
    assert parse("USA322501021234", today=TODAY).birth_date == date(1925, 1, 2)
    # Given YY 00-17 with both centuries real dates: ok, but the birth date is ambiguous
    ambiguous = parse("USA321501021234", today=TODAY)
    assert ambiguous.ok and ambiguous.birth_date is None and ambiguous.birth_date_ambiguous
    # Given 000229: only 2000-02-29 is a real date (1900 was no leap year)
    leap = parse("USA320002291234", today=TODAY)
    assert leap.birth_date == date(2000, 2, 29) and not leap.birth_date_ambiguous


@pytest.mark.parametrize("place", ["00", "99", "71", "81", "10"])
def test_given_the_old_foreign_form_with_an_implausible_place_code_then_an_area_problem(place: str) -> None:
    assert codes(f"USA{place}9001021234") == ["area"]


def test_given_a_spreadsheet_text_marker_when_normalised_then_one_leading_apostrophe_is_removed() -> None:
    assert normalise("'" + VALID) == VALID
    parsed = parse("'" + VALID.lower(), today=TODAY)
    assert parsed.ok and parsed.normalised == VALID
    assert not parse("''" + VALID, today=TODAY).ok  # only one: a second is not the marker
    assert codes(VALID[:9] + "'" + VALID[9:]) == ["length"]  # nowhere else
