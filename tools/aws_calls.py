"""Counts AWS API calls by operation with botocore event hooks (tests and benchmarks)."""

from __future__ import annotations

from collections import Counter
from types import TracebackType
from typing import Any

from smartzone.repositories.clients import client


class CallCounter:
    """``with CallCounter("dynamodb", "sqs") as calls: ...`` then ``calls.counts["BatchGetItem"]``."""

    def __init__(self, *services: str) -> None:
        self.services = services or ("dynamodb", "sqs", "sns")
        self.counts: Counter[str] = Counter()
        self.items: Counter[str] = Counter()
        """Items touched by write calls (TransactWriteItems counts each of its items)."""

    def _hook(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.counts[model.name] += 1
        if model.name == "TransactWriteItems":
            self.items[model.name] += len(params.get("TransactItems", []))
        elif model.name in {"UpdateItem", "PutItem", "DeleteItem"}:
            self.items[model.name] += 1

    def __enter__(self) -> CallCounter:
        for service in self.services:
            client(service).meta.events.register(
                f"provide-client-params.{client(service).meta.service_model.service_name}", self._hook
            )
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for service in self.services:
            client(service).meta.events.unregister(
                f"provide-client-params.{client(service).meta.service_model.service_name}", self._hook
            )

    @property
    def writes(self) -> int:
        return sum(
            self.counts[n]
            for n in ("TransactWriteItems", "UpdateItem", "PutItem", "DeleteItem", "BatchWriteItem")
        )

    def reset(self) -> None:
        self.counts.clear()
        self.items.clear()
