"""The seed story's whole lifecycle through the HTTP API, with real signed JWTs issued by a
(moto) Cognito user pool and verified by the emulated API Gateway authorizer.

MH-0178 tilts → order dispatched to G07 → its worker sees it (and an inbox entry), nobody else
does → acknowledge → verify → handle → resolve → the sensor reports level for the clear window →
the order is closed (预警消除), with the time spent in each stage.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from functions.outbox import handler as outbox
from functions.telemetry import handler as telemetry
from infra.local.gateway import LocalGateway
from infra.local.resources import LocalResources
from infra.local.streams import StreamReader
from infra.local.userpool import LocalUserPool
from tests.support.telemetry import FakeContext, rule_message, sqs_event
from tools.seed import load_district

MIN = 60_000
SEED = "events/seed/district.json"


@dataclass
class Story:
    gateway: LocalGateway
    tokens: dict[str, str]
    stream: StreamReader
    start_ms: int

    def call(self, user: str, method: str, path: str, body: Any = None, **query: str) -> Any:
        headers = {"Authorization": f"Bearer {self.tokens[user]}"}
        return self.gateway.request(method, path, headers=headers, json_body=body, query=query or None)

    def readings(self, *pairs: tuple[int, float]) -> None:
        bodies = [rule_message("MH-0178", self.start_ms + minute * MIN, tilt) for minute, tilt in pairs]
        assert telemetry.handler(sqs_event(bodies), FakeContext()) == {"batchItemFailures": []}
        for event in self.stream.batches():
            assert outbox.handler(event, FakeContext())["batchItemFailures"] == []


@pytest.fixture
def story(resources: LocalResources, monkeypatch: pytest.MonkeyPatch) -> Iterator[Story]:
    from functions.api import context
    from smartzone.settings import get_settings

    monkeypatch.setenv("CURSOR_SECRET", "story-secret")
    monkeypatch.setenv("UPLOADS_BUCKET", "story-uploads")
    get_settings.cache_clear()
    context.users.cache_clear()
    context.cursor_secret.cache_clear()
    telemetry.pipeline.cache_clear()
    load_district(SEED, resources.table_name)
    pool = LocalUserPool.create()
    pool.add_user("G07-W1", ["grid_worker"], grid_id="G07")
    pool.add_user("G01-W1", ["grid_worker"], grid_id="G01")
    pool.add_user("dispatcher-01", ["dispatcher"])
    tokens = {name: pool.id_token(name) for name in ("G07-W1", "G01-W1", "dispatcher-01")}
    stream = StreamReader(resources.table_name, starting_position="LATEST")
    yield Story(LocalGateway.for_user_pool(pool), tokens, stream, int(time.time() * 1000) - 2 * 3600_000)
    telemetry.pipeline.cache_clear()
    context.users.cache_clear()
    context.cursor_secret.cache_clear()


def test_given_the_seed_story_when_worked_through_the_api_then_the_order_closes_with_stage_times(
    story: Story,
) -> None:
    story.readings((0, 3.2), (1, 25.3))

    mine = story.call("G07-W1", "GET", "/v1/workorders").json()["items"]
    assert [(o["device_id"], o["status"], o["grid_id"]) for o in mine] == [("MH-0178", "dispatched", "G07")]
    order_id = mine[0]["order_id"]
    assert story.call("G01-W1", "GET", "/v1/workorders").json()["items"] == []
    assert story.call("G01-W1", "GET", f"/v1/workorders/{order_id}").status == 404

    inbox = story.call("G07-W1", "GET", "/v1/notifications").json()["items"]
    assert [(n["order_id"], n["event_type"]) for n in inbox] == [(order_id, "order_created")]
    assert story.call("G01-W1", "GET", "/v1/notifications").json()["items"] == []

    for action in ("acknowledge", "verify", "handle"):
        response = story.call("G07-W1", "POST", f"/v1/workorders/{order_id}/transitions", {"action": action})
        assert response.status == 200, response.json()
    resolved = story.call(
        "G07-W1",
        "POST",
        f"/v1/workorders/{order_id}/transitions",
        {"action": "resolve", "note": "已扶正井盖并加固"},
    )
    assert resolved.status == 200 and resolved.json()["status"] == "resolved", "sensor not yet normal"
    assert (
        story.call("G07-W1", "POST", f"/v1/workorders/{order_id}/transitions", {"action": "close"}).status
        == 403
    )

    story.readings(*[(3 + i, 1.0) for i in range(7)])  # level for the 5-minute clear window

    detail = story.call("dispatcher-01", "GET", f"/v1/workorders/{order_id}").json()
    assert detail["status"] == "closed" and detail["sensor_normal"] is True
    actions = [entry["action"] for entry in detail["timeline"]]
    assert actions == ["raise", "acknowledge", "verify", "handle", "resolve", "alarm_cleared", "close"]
    assert set(detail["stage_durations"]) == {
        "dispatched_to_acknowledged",
        "acknowledged_to_verifying",
        "verifying_to_handling",
        "handling_to_resolved",
        "resolved_to_closed",
    }
    assert detail["alarm_to_clearance_s"] is not None and detail["alarm_to_clearance_s"] >= 0


def test_given_a_forged_or_missing_token_then_401(story: Story) -> None:
    header, payload, signature = story.tokens["G01-W1"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["cognito:groups"] = ["dispatcher"]
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    story.tokens["forged"] = f"{header}.{forged}.{signature}"
    assert story.call("forged", "GET", "/v1/workorders").status == 401
    assert story.gateway.request("GET", "/v1/workorders").status == 401
