"""THE masking policy for personal data in every output (DESIGN.md, "Data conventions").

| data                 | masked form                                 | example                          |
|----------------------|---------------------------------------------|----------------------------------|
| citizen ID number    | first 6 and last 4 characters               | ``340202********123X``           |
| phone number         | first 3 + ``****`` + last 4                 | ``138****5678``                  |
| person's name        | surname + ``*`` (compound surnames kept)    | ``张*``, ``欧阳*``                |
| address (public)     | down to the street / road, no house numbers | ``芜湖市弋江区高新大道``          |

Who may see more is decided here and only here (:data:`UNMASKED_ROLES`, :func:`mask_for`);
every unmasked read must be audited (``MaskDecision.audit``). Masked values never reveal the
length of the hidden part of a phone number; data too short to mask safely is masked entirely.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum

from smartzone.domain.identity import Caller, Role

MASK = "*"

UNMASKED_ROLES = frozenset({Role.ADMIN, Role.DISPATCHER})
"""The roles that may read personal data unmasked (each such read is audited). Grid workers and
technicians see masked values; public outputs are always masked, whoever asks."""

POPULATION_UNMASKED_ROLES = UNMASKED_ROLES | {Role.DATA_STEWARD}
"""Who may unmask residents' data of the population database (on explicit request, audited):
the roles above plus data stewards, who must compare the sources' actual values to decide a
review item (a masked ``张*`` against ``张*`` cannot be told apart). Stewards do NOT see other
personal data (grid workers' phones, …) unmasked."""


def may_unmask_population(caller: Caller | None) -> bool:
    return caller is not None and bool(caller.roles & POPULATION_UNMASKED_ROLES)


class Audience(StrEnum):
    STAFF = "staff"
    """Authenticated platform users (the mobile app, the command centre)."""
    PUBLIC = "public"
    """Anything leaving the platform's staff: shared data, public dashboards, exports."""


# -- ID numbers ------------------------------------------------------------------------------------
def mask_id_number(value: str) -> str:
    """``340202199001011234`` → ``340202********1234`` (first 6 and last 4 kept).

    The value is normalised for display (NFKC, spaces and hyphens dropped, ``x`` → ``X``).
    Anything of 10 characters or fewer is masked entirely (6 + 4 would show all of it).
    """
    text = unicodedata.normalize("NFKC", value)
    text = re.sub(r"[\s\-]", "", text).upper()
    if len(text) <= 10:
        return MASK * len(text)
    return text[:6] + MASK * (len(text) - 10) + text[-4:]


# -- phones ----------------------------------------------------------------------------------------
_COUNTRY_PREFIX = re.compile(r"^(?:\+|00)86")


def mask_phone(value: str) -> str:
    """``13812345678`` → ``138****5678``; ``+86 138-1234-5678`` → ``138****5678``.

    Separators and a +86 / 0086 prefix are dropped first. Fewer than 8 digits: ``****``.
    """
    text = unicodedata.normalize("NFKC", value).strip()
    text = _COUNTRY_PREFIX.sub("", re.sub(r"[\s\-().]", "", text))
    digits = re.sub(r"\D", "", text)
    if len(digits) < 8:
        return MASK * 4
    return digits[:3] + MASK * 4 + digits[-4:]


# -- names -----------------------------------------------------------------------------------------
_COMPOUND_SURNAMES_TEXT = (
    "欧阳 司马 上官 诸葛 东方 皇甫 尉迟 公孙 慕容 长孙 宇文 司徒 司空 夏侯 轩辕 令狐 钟离 独孤 南宫 西门 "
    "东郭 端木 百里 呼延 万俟 闻人 赫连 澹台 公羊 公冶 宗政 濮阳 淳于 太叔 申屠 仲孙 鲜于 闾丘 亓官 司寇 "
    "子车 颛孙 巫马 公西 漆雕 乐正 壤驷 公良 拓跋 夹谷 宰父 谷梁 段干 南门 归海 羊舌 微生 梁丘 左丘 东门 "
    "第五 纳兰 "
)
COMPOUND_SURNAMES = frozenset(_COMPOUND_SURNAMES_TEXT.split())
"""Two-character Chinese surnames (复姓) recognised when masking names."""

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def surname_of(name: str) -> str:
    """The surname part of a name as well as it can be told.

    Chinese names: a known compound surname when the name is longer than it, otherwise the
    first character. Ethnic-minority names written with a middle dot and names in Latin letters:
    the first character only (the family name's position is not reliable).
    """
    text = unicodedata.normalize("NFKC", name).strip()
    if not text:
        return ""
    if len(text) > 2 and text[:2] in COMPOUND_SURNAMES and all(_CJK.match(c) for c in text[:2]):
        return text[:2]
    return text[0]


def mask_name(value: str) -> str:
    """``张三丰`` → ``张*``, ``欧阳娜娜`` → ``欧阳*``, ``李`` → ``*``, ``Smith`` → ``S*``."""
    text = unicodedata.normalize("NFKC", value).strip()
    if len(text) <= 1:
        return MASK
    return surname_of(text) + MASK


# -- addresses -------------------------------------------------------------------------------------
_STREET_LEVEL = re.compile(r"^.*(?:街道|大道|大街|路|街|巷|胡同|镇|乡)")
_DISTRICT_LEVEL = re.compile(
    r"^.*(?:自治州|自治县|地区|(?<![小社园校厂景营])区|县|(?<![超街门])市|旗|盟|州|省)"
)
_DETAIL_START = re.compile(r"[0-9一二三四五六七八九十百零〇#]+(?:号|栋|幢|座|单元|室|楼|层|弄|组)|[0-9#]")


def mask_address(value: str) -> str:
    """An address cut to street level: ``弋江区高新大道178号3栋501室`` → ``弋江区高新大道``.

    Everything from the first house number, building, unit or room on is dropped, then the
    address is cut after its last street-level part (街道, road, street, lane, town); without
    one, after the district / county / city; without any of those, fully masked.
    """
    text = unicodedata.normalize("NFKC", value).strip()
    head = text
    detail = _DETAIL_START.search(text)
    if detail is not None:
        head = text[: detail.start()]
    for pattern in (_STREET_LEVEL, _DISTRICT_LEVEL):
        match = pattern.match(head)
        if match is not None:
            return match.group(0)
    return MASK * 3


# -- the decision ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MaskDecision:
    """How one caller sees personal data; apply it with its methods."""

    unmasked: bool
    """Personal data (ID numbers, phones, names) shown in full."""
    full_addresses: bool
    """Addresses shown in full (staff outputs); otherwise cut to street level."""

    @property
    def audit(self) -> bool:
        """Every read that shows personal data unmasked must be audited."""
        return self.unmasked

    def id_number(self, value: str | None) -> str | None:
        return value if value is None or self.unmasked else mask_id_number(value)

    def phone(self, value: str | None) -> str | None:
        return value if value is None or self.unmasked else mask_phone(value)

    def name(self, value: str | None) -> str | None:
        return value if value is None or self.unmasked else mask_name(value)

    def address(self, value: str | None) -> str | None:
        return value if value is None or self.full_addresses else mask_address(value)


MASK_ALL = MaskDecision(unmasked=False, full_addresses=False)


def may_see_unmasked(caller: Caller | None) -> bool:
    return caller is not None and bool(caller.roles & UNMASKED_ROLES)


def mask_for(caller: Caller | None, audience: Audience = Audience.STAFF) -> MaskDecision:
    """The masking decision for an output to ``caller`` (None: anonymous / public).

    Public outputs are masked entirely (addresses to street level) whoever asks; staff outputs
    show full addresses (people are sent there) and unmask personal data only for
    :data:`UNMASKED_ROLES`.
    """
    if audience is Audience.PUBLIC or caller is None or not caller.has_any_role:
        return MASK_ALL
    return MaskDecision(unmasked=may_see_unmasked(caller), full_addresses=True)
