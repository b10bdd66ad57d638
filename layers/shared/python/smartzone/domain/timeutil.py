"""Time on the wire and in storage.

Wire: ISO-8601 with an offset, or epoch milliseconds. A timestamp without an offset is read as
Asia/Shanghai (+08:00). Storage: UTC (epoch milliseconds in hot state, ISO-8601 ``Z`` strings on
records people read). Display: Asia/Shanghai.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")
_EPOCH_MS_MIN = 946_684_800_000  # 2000-01-01: anything smaller is not epoch milliseconds


class TimestampError(ValueError):
    """A timestamp that cannot be read."""


def parse_ts_ms(value: object) -> int:
    """Read a wire timestamp (ISO-8601 string or epoch ms) as UTC epoch milliseconds."""
    if isinstance(value, bool):
        raise TimestampError("timestamp must be ISO-8601 or epoch milliseconds")
    if isinstance(value, int | float):
        if not math.isfinite(value) or value < _EPOCH_MS_MIN:
            raise TimestampError("epoch timestamp must be milliseconds since 1970")
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return parse_ts_ms(int(text))
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError as exc:
            raise TimestampError(f"not an ISO-8601 timestamp: {text[:40]!r}") from exc
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=SHANGHAI)
        return int(parsed.timestamp() * 1000)
    raise TimestampError("timestamp must be ISO-8601 or epoch milliseconds")


def to_iso(ms: int) -> str:
    """UTC ISO-8601 with milliseconds and ``Z`` (sorts lexicographically)."""
    dt = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def to_local_display(ms: int) -> str:
    """Asia/Shanghai wall-clock time for people (``2026-11-29 14:05``)."""
    return datetime.fromtimestamp(ms / 1000, tz=SHANGHAI).strftime("%Y-%m-%d %H:%M")


def now_ms() -> int:
    return int(datetime.now(tz=UTC).timestamp() * 1000)


def from_iso(text: str) -> int:
    """Inverse of :func:`to_iso` (any ISO-8601 accepted)."""
    return parse_ts_ms(text)
