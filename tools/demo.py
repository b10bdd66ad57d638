"""The seed story, end to end, on emulated AWS: ``make run`` prints it step by step with timings.

Manhole cover MH-0178 tilts to 25.3° → the telemetry handler opens one work order for its grid →
the outbox dispatcher publishes it to SNS → only that grid's worker receives it (one event id) →
the cover reports level for the clear window → the alarm clears and the order records it.

Grid workers' webhook endpoints are stood in for by SQS queues subscribed with the same
``grid_id`` filter policies that production subscriptions use.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SEED_FILE = ROOT / "events" / "seed" / "district.json"
STORY_DEVICE = "MH-0178"
MIN = 60_000


def _quiet_environment() -> None:
    for key, value in {
        "AWS_DEFAULT_REGION": "cn-north-1",
        "AWS_ACCESS_KEY_ID": "demo",
        "AWS_SECRET_ACCESS_KEY": "demo",
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "POWERTOOLS_SERVICE_NAME": "smartzone",
    }.items():
        os.environ.setdefault(key, value)


@dataclass
class Delivery:
    worker: str
    grid_id: str
    event_id: str
    event_type: str
    text: str


@dataclass
class StoryResult:
    order_id: str = ""
    grid_id: str = ""
    order: dict[str, Any] = field(default_factory=dict)
    deliveries: list[Delivery] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)
    workers: int = 0


class _Clock:
    def __init__(self, say: Callable[[str], None]) -> None:
        self.say = say
        self.started = time.perf_counter()

    def step(self, title: str) -> float:
        elapsed = (time.perf_counter() - self.started) * 1000
        self.say(f"\n[{elapsed:8.1f} ms] {title}")
        return elapsed


def run_story(say: Callable[[str], None] = print) -> StoryResult:
    """Run the seed story in an in-process emulated AWS and return what happened."""
    saved = dict(os.environ)
    _quiet_environment()
    from moto import mock_aws

    from smartzone.repositories.clients import reset_clients
    from smartzone.settings import get_settings

    try:
        with mock_aws():
            return _story(say)
    finally:  # leave the caller's environment (e.g. a test session) as it was
        os.environ.clear()
        os.environ.update(saved)
        reset_clients()
        get_settings.cache_clear()


def _story(say: Callable[[str], None]) -> StoryResult:
    from functions.outbox import handler as outbox
    from functions.telemetry import handler as telemetry
    from infra.local.resources import create_local_resources
    from infra.local.streams import StreamReader
    from smartzone.domain.timeutil import from_iso, now_ms, to_local_display
    from smartzone.repositories import keys
    from smartzone.repositories.clients import client, reset_clients
    from smartzone.repositories.codec import from_item, to_item
    from smartzone.repositories.subscriptions import grid_filter_policy
    from smartzone.settings import get_settings
    from tests.support.telemetry import FakeContext, rule_message, sqs_event
    from tools.seed import load_district, read_district

    reset_clients()
    get_settings.cache_clear()
    telemetry.pipeline.cache_clear()
    result = StoryResult()
    clock = _Clock(say)

    clock.step("启动模拟 AWS(moto):DynamoDB 表、SQS 队列、SNS 主题")
    res = create_local_resources("demo")
    res.export()
    get_settings.cache_clear()

    t = clock.step(f"载入示范辖区种子数据:{SEED_FILE.relative_to(ROOT)}")
    report = load_district(SEED_FILE, res.table_name)
    say(
        f"    {report.grids} 个网格,{report.devices} 个窨井盖传感器 ({(time.perf_counter() - clock.started) * 1000 - t:.0f} ms)"
    )

    district = read_district(SEED_FILE)
    sqs, sns = client("sqs"), client("sns")
    worker_queues: dict[str, tuple[str, str, str]] = {}
    for grid in district.grids:
        for worker in grid.workers:
            url = sqs.create_queue(QueueName=f"demo-worker-{worker.worker_id}")["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
            sns.subscribe(
                TopicArn=res.notifications_topic_arn,
                Protocol="sqs",
                Endpoint=arn,
                Attributes={"FilterPolicy": json.dumps(grid_filter_policy(grid.grid_id))},
            )
            worker_queues[url] = (worker.name, grid.grid_id, worker.worker_id)
    result.workers = len(worker_queues)
    say(f"    {len(worker_queues)} 名网格员已按网格订阅通知(过滤策略 grid_id)")

    cover = next(d for d in district.devices if d.device_id == STORY_DEVICE)
    grid = next(g for g in district.grids if g.grid_id == cover.grid_id)
    say(f"    {cover.short_name}:{cover.name},{cover.road},网格 {grid.grid_id}({grid.name},{grid.community})")

    stream = StreamReader(res.table_name, starting_position="LATEST")
    start = now_ms() - 70 * MIN

    def deliver(bodies: list[str]) -> dict[str, Any]:
        return telemetry.handler(sqs_event(bodies), FakeContext())

    def dispatch() -> int:
        count = 0
        for event in stream.batches():
            outbox.handler(event, FakeContext())
            count += len(event["Records"])
        return count

    def collect() -> list[Delivery]:
        found: list[Delivery] = []
        for url, (name, grid_id, _) in worker_queues.items():
            for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
                envelope = json.loads(message["Body"])
                attributes = envelope.get("MessageAttributes", {})
                event = json.loads(envelope["Message"])
                found.append(
                    Delivery(
                        worker=name,
                        grid_id=grid_id,
                        event_id=attributes.get("event_id", {}).get("Value", event.get("event_id", "")),
                        event_type=attributes.get("event_type", {}).get("Value", ""),
                        text=event.get("text", ""),
                    )
                )
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return found

    clock.step(f"{STORY_DEVICE} 上报正常读数 3.2°(设备时间 {to_local_display(start)})")
    deliver([rule_message(STORY_DEVICE, start, 3.2, 86)])

    t = clock.step(f"{STORY_DEVICE} 上报倾斜 25.3°(超过 20° 阈值)→ 遥测函数")
    deliver(
        [rule_message(STORY_DEVICE, start + MIN, 25.3, 86), rule_message(STORY_DEVICE, start + MIN, 25.3, 86)]
    )
    result.timings_ms["alarm_to_order"] = (time.perf_counter() - clock.started) * 1000 - t
    order_items = client("dynamodb").query(
        TableName=res.table_name,
        IndexName=keys.GSI1,
        KeyConditionExpression="gsi1pk = :p",
        ExpressionAttributeValues=to_item({":p": f"GRIDORDERS#{cover.grid_id}"}),
    )["Items"]
    orders = [from_item(i) for i in order_items]
    say(f"    生成工单 {len(orders)} 张(重复投递的同一读数不会生成第二张)")
    order = orders[0]
    result.order_id, result.grid_id = order["order_id"], order["grid_id"]
    say(f"    工单号 {order['order_id']},状态 {order['status']}(已派单),网格 {order['grid_id']}")
    say(f"    {order['description']}")

    t = clock.step("发件箱(表的流 → outbox 函数)→ SNS → 网格员订阅")
    dispatched = dispatch()
    deliveries = collect()
    result.timings_ms["order_to_notification"] = (time.perf_counter() - clock.started) * 1000 - t
    result.deliveries.extend(deliveries)
    say(f"    处理流记录 {dispatched} 条;送达 {len(deliveries)} 条通知:")
    for d in deliveries:
        say(f"    → {d.worker}(网格 {d.grid_id})事件 {d.event_id}:{d.text}")
    others = len(worker_queues) - len({d.worker for d in deliveries})
    say(f"    其他 {others} 名网格员未收到(过滤策略生效)")

    t = clock.step("技术员现场处置后,井盖恢复水平:连续 6 分钟读数低于 10°")
    deliver(
        [
            rule_message(STORY_DEVICE, start + (3 + i) * MIN, v, 86)
            for i, v in enumerate([4.1, 2.0, 1.2, 0.8, 0.9, 0.7, 0.8])
        ]
    )
    dispatch()
    cleared = collect()
    result.timings_ms["clear_to_notification"] = (time.perf_counter() - clock.started) * 1000 - t
    result.deliveries.extend(cleared)
    final = from_item(
        client("dynamodb").get_item(TableName=res.table_name, Key=to_item(keys.order_key(result.order_id)))[
            "Item"
        ]
    )
    result.order = final
    say(f"    工单 sensor_normal={final['sensor_normal']}(传感器已恢复正常),版本 v{final['version']}")
    for d in cleared:
        say(f"    → {d.worker}(网格 {d.grid_id})事件 {d.event_id}:{d.text}")

    clock.step("工单时间线")
    for entry in final["timeline"]:
        say(f"    {to_local_display(from_iso(entry['at']))}  {entry['action']:<15} {entry.get('note', '')}")
    total = clock.step("完成。下一步(工单 API)见 README:接单 → 核查 → 处置 → 办结 → 预警消除")
    result.timings_ms["total"] = total
    return result


def main() -> int:
    try:
        run_story()
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
