"""The subset of AWS IoT SQL (version 2016-03-23) our topic rules use, evaluated locally.

moto stores IoT topic rules but never runs them, so the local platform evaluates the rule's SQL
itself: ``compile_rule(sql)`` parses it once, ``rule.matches(topic)`` tests the ``FROM`` filter and
``rule.evaluate(topic, payload, now_ms)`` returns the message the rule's actions receive.

Supported, with AWS's semantics:

- ``SELECT *``, payload fields (``a``, nested ``a.b.c``), ``topic()``, ``topic(n)`` (1-based level
  of the topic), ``timestamp()`` (milliseconds of the evaluation), string / number / boolean
  literals, ``AS`` aliases; several items separated by commas (later items win on equal names).
  An unaliased field is named after its last segment (``a.b`` → ``b``).
- ``FROM '<topic filter>'`` with MQTT wildcards ``+`` (one level) and ``#`` (the rest, last).
- ``WHERE`` with ``=``, ``<>`` (``!=``), ``<``, ``<=``, ``>``, ``>=``, ``AND``, ``OR``, ``NOT`` and
  parentheses.

AWS semantics reproduced: a field absent from the payload is *Undefined* and omitted from the
output (not ``null``); a payload that is not a JSON object has no fields (``*`` selects nothing);
ordering comparisons convert both sides to decimals (a string that is not a number makes the
result Undefined); ``=``/``<>`` compare values of the same type (numbers numerically); ``AND``,
``OR`` and ``NOT`` take booleans or the strings ``"true"``/``"false"``; anything involving
Undefined is Undefined, and a ``WHERE`` that is not true drops the message.

Everything else — other functions, nested ``SELECT``, ``SELECT VALUE``, ``CASE``, ``IN``,
``NULL``/``IS``, arithmetic, array indexing, double-quoted strings, unaliased function calls or
literals — is refused when the rule is compiled, with a message naming the construct (an
:class:`UnsupportedSql`); malformed SQL raises :class:`IotSqlSyntaxError`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Final

SQL_VERSION = "2016-03-23"


class IotSqlError(ValueError):
    """The rule's SQL cannot be evaluated locally."""


class IotSqlSyntaxError(IotSqlError):
    """The SQL is malformed."""


class UnsupportedSql(IotSqlError):
    """The SQL uses a construct the local evaluator does not implement."""


class _Undefined:
    """AWS IoT SQL's *Undefined*: not a value; omitted from the output."""

    _instance: _Undefined | None = None

    def __new__(cls) -> _Undefined:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "Undefined"


UNDEFINED: Final = _Undefined()

# ---------------------------------------------------------------------------------------------
# Tokens

_KEYWORDS = frozenset({"SELECT", "FROM", "WHERE", "AS", "AND", "OR", "NOT", "TRUE", "FALSE"})
_REFUSED_KEYWORDS = {
    "VALUE": "SELECT VALUE",
    "DISTINCT": "SELECT DISTINCT",
    "CASE": "CASE expressions",
    "WHEN": "CASE expressions",
    "IN": "the IN operator",
    "IS": "IS [NOT] NULL / IS [NOT] UNDEFINED",
    "NULL": "the NULL literal",
    "LIKE": "LIKE",
    "BETWEEN": "BETWEEN",
    "EXISTS": "EXISTS",
    "ORDER": "ORDER BY",
    "GROUP": "GROUP BY",
    "LIMIT": "LIMIT",
    "JOIN": "JOIN",
    "UNION": "UNION",
}
_SUPPORTED_FUNCTIONS = ("topic", "timestamp")

_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<number>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<string>'[^']*')
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op><>|!=|<=|>=|=|<|>)
  | (?P<punct>[(),.*])
  | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)
_OTHER_CONSTRUCTS = {
    "+": "arithmetic ('+')",
    "-": "arithmetic ('-')",
    "/": "arithmetic ('/')",
    "%": "arithmetic ('%')",
    "|": "string concatenation ('||')",
    "[": "array indexing ('[…]')",
    "]": "array indexing ('[…]')",
    '"': "double-quoted strings (string literals are single-quoted)",
    "`": "backtick-quoted identifiers",
    "$": "substitution templates ('${…}')",
    "{": "object literals",
    ";": "several statements (';')",
}


@dataclass(frozen=True)
class _Token:
    kind: str  # number, string, ident, keyword, op, punct, end
    text: str
    pos: int


def _tokenize(sql: str) -> list[_Token]:
    tokens: list[_Token] = []
    for match in _TOKEN_RE.finditer(sql):
        kind = match.lastgroup or "other"
        text = match.group()
        pos = match.start()
        if kind == "ws":
            continue
        if kind == "other":
            if (
                text == "-"
                and tokens
                and tokens[-1].kind in {"keyword", "op", "punct"}
                and (tokens[-1].text not in {")", "*"})
            ):
                # A sign in operand position: a negative number literal.
                tokens.append(_Token("sign", text, pos))
                continue
            if text == "'":
                raise IotSqlSyntaxError(f"unterminated string literal at position {pos}")
            construct = _OTHER_CONSTRUCTS.get(text, f"the character {text!r}")
            raise UnsupportedSql(f"{construct} at position {pos} is not supported by the local IoT SQL")
        if kind == "ident" and text.upper() in _KEYWORDS:
            kind, text = "keyword", text.upper()
        elif kind == "ident" and text.upper() in _REFUSED_KEYWORDS:
            raise UnsupportedSql(
                f"{_REFUSED_KEYWORDS[text.upper()]} (at position {pos}) is not supported by the local IoT SQL"
            )
        elif kind == "punct" and text == "*" and tokens and tokens[-1].kind in {"ident", "number", "string"}:
            raise UnsupportedSql(f"arithmetic ('*') at position {pos} is not supported by the local IoT SQL")
        tokens.append(_Token(kind, text, pos))
    tokens.append(_Token("end", "", len(sql)))
    return tokens


# ---------------------------------------------------------------------------------------------
# Expressions


class Expr:
    def eval(self, ctx: _Context) -> Any:
        raise NotImplementedError


@dataclass(frozen=True)
class _Context:
    topic: str
    payload: Mapping[str, Any] | None
    now_ms: int


@dataclass(frozen=True)
class Literal(Expr):
    value: Any

    def eval(self, ctx: _Context) -> Any:
        return self.value


@dataclass(frozen=True)
class Field(Expr):
    path: tuple[str, ...]

    def eval(self, ctx: _Context) -> Any:
        value: Any = ctx.payload if ctx.payload is not None else UNDEFINED
        for part in self.path:
            if not isinstance(value, Mapping) or part not in value:
                return UNDEFINED
            value = value[part]
        return value


@dataclass(frozen=True)
class Topic(Expr):
    level: int | None  # 1-based; None: the whole topic

    def eval(self, ctx: _Context) -> Any:
        if self.level is None:
            return ctx.topic
        levels = ctx.topic.split("/")
        return levels[self.level - 1] if self.level <= len(levels) else UNDEFINED


@dataclass(frozen=True)
class Timestamp(Expr):
    def eval(self, ctx: _Context) -> Any:
        return ctx.now_ms


def _as_boolean(value: Any) -> bool | _Undefined:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in {"true", "false"}:
        return value.lower() == "true"
    return UNDEFINED


def _as_decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return Decimal(str(value))
    if isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            return None
        return result if result.is_finite() else None
    return None


def _equal(left: Any, right: Any) -> bool | _Undefined:
    if left is UNDEFINED or right is UNDEFINED:
        return UNDEFINED
    left_number, right_number = _as_decimal(left), _as_decimal(right)
    if not isinstance(left, str) and not isinstance(right, str) and None not in (left_number, right_number):
        return left_number == right_number
    if type(left) is not type(right):
        return False
    return bool(left == right)


@dataclass(frozen=True)
class Compare(Expr):
    op: str
    left: Expr
    right: Expr

    def eval(self, ctx: _Context) -> Any:
        left, right = self.left.eval(ctx), self.right.eval(ctx)
        if self.op in {"=", "<>", "!="}:
            equal = _equal(left, right)
            if equal is UNDEFINED or self.op == "=":
                return equal
            return not equal
        if left is UNDEFINED or right is UNDEFINED:
            return UNDEFINED
        a, b = _as_decimal(left), _as_decimal(right)
        if a is None or b is None:
            return UNDEFINED
        return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[self.op]


@dataclass(frozen=True)
class Logical(Expr):
    op: str  # AND / OR
    left: Expr
    right: Expr

    def eval(self, ctx: _Context) -> Any:
        a, b = _as_boolean(self.left.eval(ctx)), _as_boolean(self.right.eval(ctx))
        if a is UNDEFINED or b is UNDEFINED:
            return UNDEFINED
        return (a and b) if self.op == "AND" else (a or b)


@dataclass(frozen=True)
class Not(Expr):
    operand: Expr

    def eval(self, ctx: _Context) -> Any:
        value = _as_boolean(self.operand.eval(ctx))
        return UNDEFINED if value is UNDEFINED else not value


# ---------------------------------------------------------------------------------------------
# Parser


@dataclass(frozen=True)
class SelectItem:
    """``*`` (``expr is None``) or an expression with its output name."""

    expr: Expr | None
    name: str | None


class _Parser:
    def __init__(self, sql: str) -> None:
        self.sql = sql
        self.tokens = _tokenize(sql)
        self.i = 0

    @property
    def tok(self) -> _Token:
        return self.tokens[self.i]

    def _next(self) -> _Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def _accept(self, kind: str, text: str | None = None) -> _Token | None:
        token = self.tok
        if token.kind == kind and (text is None or token.text == text):
            self.i += 1
            return token
        return None

    def _expect(self, kind: str, text: str | None = None, what: str = "") -> _Token:
        token = self._accept(kind, text)
        if token is None:
            found = self.tok.text or "end of statement"
            raise IotSqlSyntaxError(
                f"expected {what or text or kind} at position {self.tok.pos}, found {found!r}"
            )
        return token

    def parse(self) -> tuple[tuple[SelectItem, ...], str, Expr | None]:
        self._expect("keyword", "SELECT")
        items = [self._select_item()]
        while self._accept("punct", ","):
            items.append(self._select_item())
        self._expect("keyword", "FROM")
        if self.tok.kind == "punct" and self.tok.text == "(":
            raise UnsupportedSql(
                f"a nested SELECT in FROM (position {self.tok.pos}) is not supported by the local IoT SQL"
            )
        topic_filter = self._expect("string", what="a quoted topic filter after FROM").text[1:-1]
        _validate_filter(topic_filter)
        where = None
        if self._accept("keyword", "WHERE"):
            where = self._or()
        if self.tok.kind != "end":
            raise IotSqlSyntaxError(f"unexpected {self.tok.text!r} at position {self.tok.pos}")
        return tuple(items), topic_filter, where

    def _select_item(self) -> SelectItem:
        if self._accept("punct", "*"):
            return SelectItem(None, None)
        start = self.tok
        expr = self._or()
        if self._accept("keyword", "AS"):
            alias = self._expect("ident", what="an alias after AS")
            return SelectItem(expr, alias.text)
        if isinstance(expr, Field):
            return SelectItem(expr, expr.path[-1])
        raise UnsupportedSql(
            f"the SELECT item at position {start.pos} needs an alias (… AS name): the output name of "
            "an unaliased function, literal or expression is not emulated by the local IoT SQL"
        )

    def _or(self) -> Expr:
        expr = self._and()
        while self._accept("keyword", "OR"):
            expr = Logical("OR", expr, self._and())
        return expr

    def _and(self) -> Expr:
        expr = self._not()
        while self._accept("keyword", "AND"):
            expr = Logical("AND", expr, self._not())
        return expr

    def _not(self) -> Expr:
        if self._accept("keyword", "NOT"):
            return Not(self._not())
        return self._comparison()

    def _comparison(self) -> Expr:
        left = self._operand()
        op = self._accept("op")
        if op is None:
            return left
        right = self._operand()
        if self.tok.kind == "op":
            raise IotSqlSyntaxError(
                f"chained comparison at position {self.tok.pos}: use AND between comparisons"
            )
        return Compare(op.text, left, right)

    def _operand(self) -> Expr:
        token = self._next()
        if token.kind == "punct" and token.text == "(":
            if self.tok.kind == "keyword" and self.tok.text == "SELECT":
                raise UnsupportedSql(
                    f"a nested SELECT (position {self.tok.pos}) is not supported by the local IoT SQL"
                )
            expr = self._or()
            self._expect("punct", ")")
            return expr
        if token.kind == "sign":
            number = self._expect("number", what="a number after '-'")
            return Literal(-_number(number.text))
        if token.kind == "number":
            return Literal(_number(token.text))
        if token.kind == "string":
            return Literal(token.text[1:-1])
        if token.kind == "keyword" and token.text in {"TRUE", "FALSE"}:
            return Literal(token.text == "TRUE")
        if token.kind == "ident":
            if self.tok.kind == "punct" and self.tok.text == "(":
                return self._function(token)
            path = [token.text]
            while self._accept("punct", "."):
                if self.tok.kind == "punct" and self.tok.text == "*":
                    raise UnsupportedSql(
                        f"'{'.'.join(path)}.*' (position {self.tok.pos}) is not supported by the local IoT SQL"
                    )
                path.append(self._expect("ident", what="a field name after '.'").text)
            return Field(tuple(path))
        if token.kind == "punct" and token.text == "*":
            raise IotSqlSyntaxError(f"'*' at position {token.pos} is only allowed as a SELECT item")
        found = token.text or "end of statement"
        raise IotSqlSyntaxError(f"expected a value at position {token.pos}, found {found!r}")

    def _function(self, name: _Token) -> Expr:
        fn = name.text.lower()
        if fn not in _SUPPORTED_FUNCTIONS:
            raise UnsupportedSql(
                f"the function {name.text}() (position {name.pos}) is not supported by the local IoT SQL "
                f"(supported: {', '.join(f + '()' for f in _SUPPORTED_FUNCTIONS)})"
            )
        self._expect("punct", "(")
        if fn == "timestamp":
            self._expect("punct", ")", what="')': timestamp() takes no argument")
            return Timestamp()
        if self._accept("punct", ")"):
            return Topic(None)
        level = self._expect("number", what="a level number in topic(n)")
        if not level.text.isdigit() or int(level.text) < 1:
            raise UnsupportedSql(
                f"topic({level.text}) is not supported by the local IoT SQL: the level is a whole number from 1"
            )
        self._expect("punct", ")", what="')' after topic(n)")
        return Topic(int(level.text))


def _number(text: str) -> int | float:
    value = float(text)
    # SQL V2 (2016-03-23) treats whole numbers such as 10.0 as Int.
    return int(value) if value.is_integer() and "e" not in text.lower() else value


# ---------------------------------------------------------------------------------------------
# Topic filters


def _validate_filter(topic_filter: str) -> None:
    if not topic_filter:
        raise IotSqlSyntaxError("the FROM topic filter is empty")
    levels = topic_filter.split("/")
    for index, level in enumerate(levels):
        if "#" in level and (level != "#" or index != len(levels) - 1):
            raise IotSqlSyntaxError(f"'#' must be a whole last level of the topic filter {topic_filter!r}")
        if "+" in level and level != "+":
            raise IotSqlSyntaxError(f"'+' must be a whole level of the topic filter {topic_filter!r}")


def topic_matches(topic_filter: str, topic: str) -> bool:
    """MQTT topic-filter matching (``+`` one level, ``#`` the remaining levels, parent included)."""
    filter_levels = topic_filter.split("/")
    topic_levels = topic.split("/")
    if topic.startswith("$") and filter_levels[0] in {"+", "#"}:
        return False  # wildcards do not match reserved ($…) topics at the first level
    for index, level in enumerate(filter_levels):
        if level == "#":
            return True
        if index >= len(topic_levels):
            return False
        if level != "+" and level != topic_levels[index]:
            return False
    return len(filter_levels) == len(topic_levels)


# ---------------------------------------------------------------------------------------------
# Rules


def parse_payload(payload: bytes | str) -> Mapping[str, Any] | None:
    """The payload as a JSON object, or ``None`` when it is not one (then it has no fields)."""
    try:
        value = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None


@dataclass(frozen=True)
class Rule:
    """A compiled topic rule's SQL."""

    sql: str
    topic_filter: str
    select: Sequence[SelectItem]
    where: Expr | None

    def matches(self, topic: str) -> bool:
        return topic_matches(self.topic_filter, topic)

    def evaluate(self, topic: str, payload: bytes | str, now_ms: int) -> dict[str, Any] | None:
        """The message the rule's actions receive, or ``None`` when the topic is outside the
        ``FROM`` filter or the ``WHERE`` clause is not true."""
        if not self.matches(topic):
            return None
        ctx = _Context(topic, parse_payload(payload), now_ms)
        if self.where is not None and _as_boolean(self.where.eval(ctx)) is not True:
            return None
        out: dict[str, Any] = {}
        for item in self.select:
            if item.expr is None:
                out.update(ctx.payload or {})
                continue
            value = item.expr.eval(ctx)
            if value is not UNDEFINED:
                out[item.name or ""] = value
        return out


def compile_rule(sql: str, version: str = SQL_VERSION) -> Rule:
    """Parse ``sql``; raises :class:`UnsupportedSql` or :class:`IotSqlSyntaxError`."""
    if version != SQL_VERSION:
        raise UnsupportedSql(f"AWS IoT SQL version {version!r} is not emulated (only {SQL_VERSION})")
    select, topic_filter, where = _Parser(sql).parse()
    return Rule(sql=sql, topic_filter=topic_filter, select=select, where=where)
