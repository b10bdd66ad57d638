"""Firehose delivery to S3, emulated: moto stores the stream but does not expand the prefix's
``!{timestamp:…}`` expressions, so the local platform delivers the records itself, as Firehose
would: buffered (the stream's interval or size, whichever first), one object per flush under the
rendered prefix (``raw/manhole/year=2026/month=11/day=29/``), compressed as configured.
"""

from __future__ import annotations

import gzip
import re
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from infra.local.template import DeliveryStreamSpec

_EXPRESSION = re.compile(r"!\{timestamp:([^}]+)\}")
_JAVA_TO_STRFTIME = {"yyyy": "%Y", "MM": "%m", "dd": "%d", "HH": "%H", "mm": "%M", "ss": "%S"}


def render_prefix(prefix: str, at: datetime) -> str:
    """Expand Firehose's ``!{timestamp:<Java date format>}`` expressions (UTC arrival time)."""

    def expand(match: re.Match[str]) -> str:
        pattern = match.group(1)
        for java, python in sorted(_JAVA_TO_STRFTIME.items(), key=lambda kv: -len(kv[0])):
            pattern = pattern.replace(java, python)
        return at.strftime(pattern)

    return _EXPRESSION.sub(expand, prefix)


class FirehoseToS3:
    """Buffers records of one delivery stream and writes them to its bucket."""

    def __init__(
        self,
        spec: DeliveryStreamSpec,
        stream_name: str,
        bucket: str,
        s3: Any,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.spec = spec
        self.stream_name = stream_name
        self.bucket = bucket
        self.s3 = s3
        self.clock = clock
        self._buffer: list[bytes] = []
        self._size = 0
        self._opened = clock()
        self._lock = threading.Lock()
        self.objects_written = 0

    def put_record(self, data: bytes) -> None:
        with self._lock:
            if not self._buffer:
                self._opened = self.clock()
            self._buffer.append(data)
            self._size += len(data)
            full = self._size >= self.spec.buffer_size_mb * 1024 * 1024
        if full:
            self.flush()

    def flush_if_due(self) -> None:
        with self._lock:
            due = bool(self._buffer) and self.clock() - self._opened >= self.spec.buffer_interval_s
        if due:
            self.flush()

    def flush(self) -> str | None:
        with self._lock:
            records, self._buffer, self._size = self._buffer, [], 0
        if not records:
            return None
        at = datetime.fromtimestamp(self.clock(), tz=UTC)
        body = b"".join(records)
        suffix = ""
        if self.spec.compression.upper() == "GZIP":
            body, suffix = gzip.compress(body), ".gz"
        key = (
            f"{render_prefix(self.spec.prefix, at)}{self.stream_name}-1-"
            f"{at.strftime('%Y-%m-%d-%H-%M-%S')}-{uuid.uuid4()}{suffix}"
        )
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body)
        self.objects_written += 1
        return key
