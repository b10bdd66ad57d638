"""Fixtures for the HTTP API tests: emulated AWS with the API's environment, seeded people, orders.

People (user registry): grid workers of G03 and G04, a technician, a dispatcher, an admin, and a
grid worker who has no grid. Orders are written the way the telemetry pipeline writes them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from smartzone.domain.identity import Caller
from smartzone.domain.users import UserProfile
from smartzone.domain.workorders import WorkOrder
from tests.support.api import ApiClient
from tests.support.api_env import CURSOR_SECRET, UPLOADS_BUCKET, clear_api_caches, prepare_api

__all__ = ["CURSOR_SECRET", "PEOPLE", "PROFILES", "UPLOADS_BUCKET", "People"]


@dataclass(frozen=True)
class People:
    gw_g03: Caller
    gw_g04: Caller
    gw_nogrid: Caller
    tech: Caller
    dispatcher: Caller
    admin: Caller


PEOPLE = People(
    gw_g03=Caller.of("sub-gw-g03", "gw-g03-01", ["grid_worker"]),
    gw_g04=Caller.of("sub-gw-g04", "gw-g04-01", ["grid_worker"]),
    gw_nogrid=Caller.of("sub-gw-none", "gw-none", ["grid_worker"]),
    tech=Caller.of("sub-tech", "tech-07", ["technician"]),
    dispatcher=Caller.of("sub-disp", "disp-01", ["dispatcher"]),
    admin=Caller.of("sub-admin", "admin-01", ["admin"]),
)

PROFILES = [
    UserProfile(
        username="gw-g03-01", name="王芳", phone="13812345678", roles=["grid_worker"], grid_ids=["G03"]
    ),
    UserProfile(
        username="gw-g04-01", name="李强", phone="13987654321", roles=["grid_worker"], grid_ids=["G04"]
    ),
    UserProfile(username="gw-none", name="赵六", roles=["grid_worker"], grid_ids=[]),
    UserProfile(username="tech-07", name="张师傅", phone="13700001111", roles=["technician"]),
    UserProfile(username="disp-01", name="陈调度", roles=["dispatcher"]),
    UserProfile(username="admin-01", name="管理员", roles=["admin"]),
]


@pytest.fixture
def api_env(resources, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """The platform's resources plus what the API needs: the uploads bucket and the cursor key."""
    prepare_api(resources.table_name, monkeypatch, PROFILES)
    yield resources
    clear_api_caches()


@pytest.fixture
def people(api_env) -> People:  # type: ignore[no-untyped-def]
    return PEOPLE


@pytest.fixture
def as_user(api_env) -> Callable[[Caller], ApiClient]:  # type: ignore[no-untyped-def]
    """``as_user(people.dispatcher).get("/v1/workorders")``."""
    return ApiClient


@pytest.fixture
def store_order(api_env) -> Iterator[Callable[[WorkOrder], WorkOrder]]:  # type: ignore[no-untyped-def]
    """Write an order item as the platform does (all index keys), returning it."""
    from smartzone.repositories.clients import client
    from smartzone.repositories.codec import to_item
    from smartzone.repositories.workorders import order_item

    def put(order: WorkOrder) -> WorkOrder:
        client("dynamodb").put_item(TableName=api_env.table_name, Item=to_item(order_item(order)))
        return order

    yield put


class Clock:
    """The API's clock (``now_ms`` of the work-order and report routes), moved by the test."""

    def __init__(self, start_ms: int) -> None:
        self.now = start_ms

    def __call__(self) -> int:
        return self.now

    def advance(self, minutes: float) -> int:
        self.now += int(minutes * 60_000)
        return self.now


@pytest.fixture
def clock(api_env, monkeypatch: pytest.MonkeyPatch) -> Clock:  # type: ignore[no-untyped-def]
    """Starts at the seed story's alarm (14:05 Beijing time, 2026-11-29) plus one second."""
    from functions.api.routes import reports, workorders
    from tests.support.orders import RAISED_AT

    fake = Clock(RAISED_AT + 1000)
    monkeypatch.setattr(workorders, "now_ms", fake)
    monkeypatch.setattr(reports, "now_ms", fake)
    return fake


@pytest.fixture
def sensor_clears(api_env) -> Callable[[str, int], str]:  # type: ignore[no-untyped-def]
    """The telemetry pipeline's clearance write on an order, as ``AlarmStore`` makes it: one
    conditional update that flags a working order ``sensor_normal`` (bumping ``version``), or,
    when the order is already ``resolved``, closes it. Returns ``"flagged"`` or ``"closed"``."""
    from botocore.exceptions import ClientError

    from smartzone.domain.timeutil import to_iso
    from smartzone.domain.workorders import WORKING_STATUSES, OrderStatus, system_entry
    from smartzone.repositories import keys
    from smartzone.repositories.clients import client
    from smartzone.repositories.codec import serialize, to_item

    def clear(order_id: str, at_ms: int) -> str:
        now = to_iso(at_ms)
        cleared = system_entry(at_ms, "alarm_cleared", "传感器恢复正常(3.1°),告警解除").to_item()
        closed = system_entry(
            at_ms,
            "close",
            "已办结且传感器恢复正常,工单自动关闭(预警消除)",
            OrderStatus.RESOLVED,
            OrderStatus.CLOSED,
        ).to_item()
        sets = "sensor_normal = :t, sensor_normal_at = :now, updated_at = :now, version = version + :one"
        working = sorted(s.value for s in WORKING_STATUSES)
        attempts = [
            (
                "flagged",
                f"SET {sets}, timeline = list_append(timeline, :tl)",
                "#st IN (" + ", ".join(f":w{i}" for i in range(len(working))) + ")",
                {":tl": [cleared], **{f":w{i}": s for i, s in enumerate(working)}},
            ),
            (
                "closed",
                f"SET {sets}, timeline = list_append(timeline, :tl), #st = :closed, closed_at = :now, "
                "gsi2pk = :g2 REMOVE gsi4pk, gsi4sk",
                "#st = :resolved",
                {
                    ":tl": [cleared, closed],
                    ":closed": "closed",
                    ":resolved": "resolved",
                    ":g2": "ORDERSTATUS#closed",
                },
            ),
        ]
        for outcome, expression, condition, values in attempts:
            try:
                client("dynamodb").update_item(
                    TableName=api_env.table_name,
                    Key=to_item(keys.order_key(order_id)),
                    UpdateExpression=expression,
                    ConditionExpression=condition,
                    ExpressionAttributeNames={"#st": "status"},
                    ExpressionAttributeValues={
                        k: serialize(v) for k, v in {**values, ":t": True, ":now": now, ":one": 1}.items()
                    },
                )
                return outcome
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise
        return "recorded_only"

    return clear
