"""Citizen ID numbers (GB 11643-1999) and the other numbers that take their place. Pure Python.

Contract (DESIGN.md, "Data conventions"):

- :func:`normalise` — Unicode NFKC (full-width digits become ASCII), spaces and hyphens removed,
  one leading ``'`` removed (the text marker a spreadsheet puts before a number typed as text:
  it is not part of the number, so removing it is not a repair), ``x`` upper-cased. Nothing else
  is ever changed.
- :func:`parse` — validates and tags a number; returns an :class:`IdNumber` with ``ok``, the
  ``normalised`` 18-character form (15-digit numbers converted and flagged ``converted``), its
  ``kind``, derived ``birth_date`` and ``sex``, and every :class:`IdProblem` found (stable
  ``code`` plus Chinese / English messages). A failed check is **never** corrected and spreadsheet
  damage (scientific notation, a float's ``.0``, trailing ``000`` that fails the check) is
  **never** repaired: such numbers are not ``ok``.
- :func:`check_char` — the ISO 7064 MOD 11-2 check character of the first 17 characters.
- :func:`id_key` — the keyed HMAC-SHA256 (hex) of a normalised number: the ONLY lookup key.
- :func:`contradictions` — the number's own sex / birth date against a source's fields.

Kinds (:class:`IdKind`):

| kind | form |
|---|---|
| ``resident_18`` | 6-digit area, ``YYYYMMDD``, 3-digit sequence (odd = male), check character |
| ``converted_from_15`` | first-generation 15 digits (``YYMMDD``, 19xx), converted to 18 |
| ``residence_permit_hk`` / ``_mo`` / ``_tw`` | 18 characters starting exactly ``810000`` / ``820000`` / ``830000`` |
| ``foreign_permanent`` | new 18-digit form starting ``9`` (same date and check rules), or the old 15-character form: 3-letter nationality, 2-digit place, ``YYMMDD``, 4 digits (format, place and date checked; its check digit is not publicly specified and is not verified) |

The first two digits of resident and foreign 18-digit numbers must be a province code (for the
foreign form: the two digits after the ``9``); the old foreign form's place code must be a
mainland province code (:data:`ISSUING_PROVINCES`). Examples in tests and generated data use fake
area codes (county ``9x``, e.g. ``340291``), never real people's numbers.

Digits are ASCII digits only: other Unicode digits that survive NFKC (Arabic-Indic ``٣٤٠``,
Devanagari, …) make a ``format`` problem, never an exception.

**The old foreign form's century.** ``YYMMDD`` has no century. The 15-character form was issued
from 2004 until the 18-digit form replaced it in 2017, so nobody born after 2017 can hold one:
``YY`` 18–99 is read as 19YY. For ``YY`` 00–17 both 19YY and 20YY are possible (a holder born
in 1915 or in 2015); when both are real, past dates the birth date is *ambiguous*: the number is
``ok`` with ``birth_date`` None and ``birth_date_ambiguous`` True, so no age is derived from it
(a source's own birth date still counts). When only one of the two is a real past date (e.g.
``000229``: 1900 was no leap year), that one is taken.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from operator import mul

WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))
"""ISO 7064 MOD 11-2 weights of positions 1..17 (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)."""
_ASCII_ZERO_WEIGHT = 48 * sum(WEIGHTS)
CHECK_CHARS = "10X98765432"
"""Check character by ``sum(weight * digit) % 11``."""

PROVINCES = frozenset(
    str(code)
    for code in (
        11,
        12,
        13,
        14,
        15,
        21,
        22,
        23,
        31,
        32,
        33,
        34,
        35,
        36,
        37,
        41,
        42,
        43,
        44,
        45,
        46,
        50,
        51,
        52,
        53,
        54,
        61,
        62,
        63,
        64,
        65,
        71,
    )
)
"""Province-level codes (GB/T 2260) that may start a resident number (71 = Taiwan)."""
PERMIT_PREFIXES = {"81": "residence_permit_hk", "82": "residence_permit_mo", "83": "residence_permit_tw"}
PERMIT_AREAS = frozenset({"810000", "820000", "830000"})
"""The only area codes a residence permit carries (its first six digits)."""
ISSUING_PROVINCES = PROVINCES - {"71"}
"""Place codes of the old 15-character foreign permanent-residence number (mainland issuing offices)."""
OLD_FOREIGN_LAST_YEAR = 2017
"""The last year the old 15-character foreign form was issued (birth years after it are 19YY)."""
EARLIEST_BIRTH = date(1880, 1, 1)


class IdKind(StrEnum):
    RESIDENT_18 = "resident_18"
    CONVERTED_FROM_15 = "converted_from_15"
    RESIDENCE_PERMIT_HK = "residence_permit_hk"
    RESIDENCE_PERMIT_MO = "residence_permit_mo"
    RESIDENCE_PERMIT_TW = "residence_permit_tw"
    FOREIGN_PERMANENT = "foreign_permanent"


class Sex(StrEnum):
    MALE = "male"
    FEMALE = "female"


class IdProblemCode(StrEnum):
    EMPTY = "empty"
    LENGTH = "length"
    FORMAT = "format"
    AREA = "area"
    BAD_DATE = "bad_date"
    FUTURE_DATE = "future_date"
    CHECK_CHAR = "check_char"
    SCIENTIFIC_NOTATION = "spreadsheet_scientific_notation"
    SPREADSHEET_FLOAT = "spreadsheet_float"
    TRAILING_ZEROS = "spreadsheet_trailing_zeros"
    SEX_MISMATCH = "sex_mismatch"
    BIRTH_DATE_MISMATCH = "birth_date_mismatch"


MESSAGES: dict[IdProblemCode, tuple[str, str]] = {
    IdProblemCode.EMPTY: ("身份证号为空", "ID number is empty"),
    IdProblemCode.LENGTH: (
        "身份证号长度应为18位（或旧版15位）",
        "ID number must have 18 (or old 15) characters",
    ),
    IdProblemCode.FORMAT: ("身份证号含非法字符", "ID number contains characters not allowed here"),
    IdProblemCode.AREA: ("身份证号地址码无效", "ID number's area code is not a known province"),
    IdProblemCode.BAD_DATE: ("身份证号中的出生日期不存在", "ID number's birth date is not a real date"),
    IdProblemCode.FUTURE_DATE: ("身份证号中的出生日期在未来", "ID number's birth date is in the future"),
    IdProblemCode.CHECK_CHAR: (
        "身份证号校验码错误（不自动更正）",
        "ID number's check character is wrong (never corrected)",
    ),
    IdProblemCode.SCIENTIFIC_NOTATION: (
        "身份证号被表格软件转为科学计数法，无法恢复",
        "ID number was turned into scientific notation by a spreadsheet; it cannot be recovered",
    ),
    IdProblemCode.SPREADSHEET_FLOAT: (
        "身份证号被表格软件存为数值（带小数），不予修复",
        "ID number was stored as a spreadsheet number (decimal); it is not repaired",
    ),
    IdProblemCode.TRAILING_ZEROS: (
        "身份证号末尾为000且校验失败，疑为表格软件截断精度",
        "ID number ends in 000 and fails its check: likely precision lost in a spreadsheet",
    ),
    IdProblemCode.SEX_MISMATCH: ("性别与身份证号不符", "sex contradicts the ID number"),
    IdProblemCode.BIRTH_DATE_MISMATCH: ("出生日期与身份证号不符", "birth date contradicts the ID number"),
}


@dataclass(frozen=True, slots=True)
class IdProblem:
    """One thing wrong with a number (never contains the number itself)."""

    code: IdProblemCode
    message_zh: str
    message_en: str

    @classmethod
    def of(cls, code: IdProblemCode) -> IdProblem:
        return _PROBLEMS[code]


_PROBLEMS = {code: IdProblem(code, zh, en) for code, (zh, en) in MESSAGES.items()}


@dataclass(frozen=True, slots=True)
class IdNumber:
    """The result of :func:`parse`. ``normalised`` is set only when ``ok``."""

    ok: bool
    normalised: str | None
    kind: IdKind | None = None
    birth_date: date | None = None
    sex: Sex | None = None
    converted: bool = False
    problems: tuple[IdProblem, ...] = field(default_factory=tuple)
    birth_date_ambiguous: bool = False
    """Old foreign form only: the ``YYMMDD`` date fits two centuries (``birth_date`` is then None)."""

    @property
    def problem_codes(self) -> list[str]:
        return [p.code.value for p in self.problems]


_STRIP = re.compile(r"[\s\-\u2010-\u2015\u2212]")
_SCIENTIFIC = re.compile(r"^[+-]?[0-9]+(?:\.[0-9]*)?E[+-]?[0-9]+$")
_FLOAT = re.compile(r"^[0-9]+\.[0-9]*$")
_DIGITS17 = re.compile(r"^[0-9]{17}[0-9X]$")
_DIGITS15 = re.compile(r"^[0-9]{15}$")
_OLD_FOREIGN = re.compile(r"^[A-Z]{3}[0-9]{12}$")


def normalise(raw: str) -> str:
    """NFKC, spaces and hyphens removed, one leading spreadsheet text marker ``'`` removed, ``x``
    upper-cased. ``'３４０２ 91-...x'`` → ``'340291...X'``; ``"'340291..."`` → ``'340291...'``."""
    text = raw if raw.isascii() else unicodedata.normalize("NFKC", raw)
    return _STRIP.sub("", text).removeprefix("'").upper()


def check_char(first17: str) -> str:
    """ISO 7064 MOD 11-2 check character of 17 digits."""
    if len(first17) != 17 or not first17.isdigit() or not first17.isascii():
        raise ValueError("check_char needs exactly 17 ASCII digits")
    total = sum(map(mul, WEIGHTS, first17.encode())) - _ASCII_ZERO_WEIGHT
    return CHECK_CHARS[total % 11]


def id_key(normalised: str, secret: bytes) -> str:
    """Keyed HMAC-SHA256 (hex) of a normalised number: the only key to look a person up by."""
    return hmac.new(secret, normalised.encode("ascii"), hashlib.sha256).hexdigest()


def convert_15(number15: str) -> str:
    """A first-generation 15-digit number as 18 digits (century 19 inserted, check appended)."""
    first17 = number15[:6] + "19" + number15[6:]
    return first17 + check_char(first17)


def _real_date(y: int, m: int, d: int) -> date | None:
    try:
        return date(y, m, d)
    except ValueError:
        return None


def _fail(*codes: IdProblemCode) -> IdNumber:
    return IdNumber(ok=False, normalised=None, problems=tuple(_PROBLEMS[c] for c in codes))


def _date_problems(born: date | None, today: date) -> list[IdProblemCode]:
    if born is None or born < EARLIEST_BIRTH:
        return [IdProblemCode.BAD_DATE]
    if born > today:
        return [IdProblemCode.FUTURE_DATE]
    return []


def parse(raw: str | None, *, today: date | None = None) -> IdNumber:
    """Normalise and validate one number; never corrects or repairs it (see the module doc)."""
    if raw is None:
        return _fail(IdProblemCode.EMPTY)
    text = normalise(str(raw))
    if not text:
        return _fail(IdProblemCode.EMPTY)
    today = today or date.today()
    if not text.isascii():  # letters or digits of other scripts (e.g. Arabic-Indic digits)
        return _fail(IdProblemCode.FORMAT)
    if _SCIENTIFIC.match(text):
        return _fail(IdProblemCode.SCIENTIFIC_NOTATION)
    if _FLOAT.match(text):
        return _fail(IdProblemCode.SPREADSHEET_FLOAT)
    if len(text) == 18:
        return _parse_18(text, today)
    if len(text) == 15:
        if _DIGITS15.match(text):
            return _parse_15(text, today)
        if _OLD_FOREIGN.match(text):
            return _parse_old_foreign(text, today)
        return _fail(IdProblemCode.FORMAT)
    return _fail(IdProblemCode.LENGTH)


def _parse_18(text: str, today: date) -> IdNumber:
    if not _DIGITS17.match(text):
        return _fail(IdProblemCode.FORMAT)
    problems: list[IdProblemCode] = []
    head = text[:2]
    kind: IdKind
    if head in PERMIT_PREFIXES:
        kind = IdKind(PERMIT_PREFIXES[head])
        if text[:6] not in PERMIT_AREAS:
            problems.append(IdProblemCode.AREA)
    elif text[0] == "9":
        kind = IdKind.FOREIGN_PERMANENT
        if text[1:3] not in PROVINCES:
            problems.append(IdProblemCode.AREA)
    else:
        kind = IdKind.RESIDENT_18
        if head not in PROVINCES:
            problems.append(IdProblemCode.AREA)
    born = _real_date(int(text[6:10]), int(text[10:12]), int(text[12:14]))
    problems += _date_problems(born, today)
    if check_char(text[:17]) != text[17]:
        problems.append(IdProblemCode.TRAILING_ZEROS if text.endswith("000") else IdProblemCode.CHECK_CHAR)
    if problems:
        return _fail(*problems)
    sex = Sex.MALE if (ord(text[16]) - 48) % 2 else Sex.FEMALE
    return IdNumber(ok=True, normalised=text, kind=kind, birth_date=born, sex=sex)


def _parse_15(text: str, today: date) -> IdNumber:
    problems: list[IdProblemCode] = []
    if text[:2] not in PROVINCES:
        problems.append(IdProblemCode.AREA)
    born = _real_date(1900 + int(text[6:8]), int(text[8:10]), int(text[10:12]))
    problems += _date_problems(born, today)
    if problems:
        return _fail(*problems)
    sex = Sex.MALE if (ord(text[14]) - 48) % 2 else Sex.FEMALE
    return IdNumber(
        ok=True,
        normalised=convert_15(text),
        kind=IdKind.CONVERTED_FROM_15,
        birth_date=born,
        sex=sex,
        converted=True,
    )


def _parse_old_foreign(text: str, today: date) -> IdNumber:
    """3 letters, 2-digit place, ``YYMMDD``, 4 digits; the century rule is in the module doc."""
    problems: list[IdProblemCode] = []
    if text[3:5] not in ISSUING_PROVINCES:
        problems.append(IdProblemCode.AREA)
    yy, mm, dd = int(text[5:7]), int(text[7:9]), int(text[9:11])
    centuries = (1900,) if 2000 + yy > OLD_FOREIGN_LAST_YEAR else (1900, 2000)
    dates = [_real_date(c + yy, mm, dd) for c in centuries]
    possible = [d for d in dates if d is not None and not _date_problems(d, today)]
    if not possible:
        real = [d for d in dates if d is not None]
        problems += _date_problems(real[-1] if real else None, today)
    if problems:
        return _fail(*problems)
    born = possible[0] if len(possible) == 1 else None
    return IdNumber(
        ok=True,
        normalised=text,
        kind=IdKind.FOREIGN_PERMANENT,
        birth_date=born,
        sex=None,
        birth_date_ambiguous=born is None,
    )


# -- a source's own sex / birth date fields ---------------------------------------------------------
_SEX_WORDS = {
    "男": Sex.MALE, "M": Sex.MALE, "MALE": Sex.MALE, "1": Sex.MALE, "男性": Sex.MALE,
    "女": Sex.FEMALE, "F": Sex.FEMALE, "FEMALE": Sex.FEMALE, "2": Sex.FEMALE, "女性": Sex.FEMALE,
}  # fmt: skip
_DATE_PARTS = re.compile(r"^(\d{4})\D?(\d{1,2})\D?(\d{1,2})\D?$", re.ASCII)


def parse_sex(value: object) -> Sex | None:
    """``男`` / ``女`` / ``M`` / ``F`` / ``1`` / ``2`` (GB/T 2261.1) → :class:`Sex`; else None."""
    if value is None:
        return None
    return _SEX_WORDS.get(unicodedata.normalize("NFKC", str(value)).strip().upper())


def parse_birth_date(value: object) -> date | None:
    """``1990-01-02``, ``1990/1/2``, ``19900102``, ``1990年1月2日``, ``1990.01.02`` or a date → date."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = unicodedata.normalize("NFKC", str(value)).strip()
    match = _DATE_PARTS.match(text.split(" ")[0].split("T")[0])
    if match is None:
        return None
    return _real_date(int(match[1]), int(match[2]), int(match[3]))


def contradictions(number: IdNumber, *, sex: object = None, birth_date: object = None) -> list[IdProblem]:
    """A source's own sex / birth date fields that contradict a valid number (missing ones don't)."""
    found: list[IdProblem] = []
    if not number.ok:
        return found
    own_sex = parse_sex(sex)
    if own_sex is not None and number.sex is not None and own_sex != number.sex:
        found.append(_PROBLEMS[IdProblemCode.SEX_MISMATCH])
    own_birth = parse_birth_date(birth_date)
    if own_birth is not None and number.birth_date is not None and own_birth != number.birth_date:
        found.append(_PROBLEMS[IdProblemCode.BIRTH_DATE_MISMATCH])
    return found


def make_fake(area: str, born: date, sequence: int) -> str:
    """A syntactically valid 18-digit number for tests and generated data (``area`` must be fake)."""
    first17 = f"{area}{born:%Y%m%d}{sequence:03d}"
    return first17 + check_char(first17)
