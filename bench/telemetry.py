"""Telemetry benchmark: 10,000+ messages through the real handler against emulated AWS (moto).

Prints and writes ``bench/results/telemetry.json``:
- ``msgs_per_s``: messages per second of the handler's own time (time inside AWS calls, i.e. the
  emulator, subtracted); ``msgs_per_s_with_emulator`` includes it;
- ``own_ms_per_100``: our own code's time for a batch of 100 messages;
- ``calls_per_1000_normal``: AWS calls per 1,000 normal readings, by operation;
- ``writes_per_alarm`` / ``items_per_alarm``: write calls and items per alarm transition;
- ``import_ms``: cold import time of each handler module (fresh interpreter).

Run: ``make bench`` (or ``python -m bench.telemetry``).
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from typing import Any

from moto import mock_aws

from bench.common import ROOT, import_ms, use_emulated_aws, write_results

use_emulated_aws()

DEVICES = 600
BATCH = 500
MIN = 60_000


class AwsTimer:
    """Time spent inside AWS calls (the emulator), measured with botocore event hooks."""

    def __init__(self, clients: list[Any]) -> None:
        self.clients = clients
        self.total = 0.0
        self._start: dict[int, float] = {}

    def _before(self, **kwargs: Any) -> None:
        self._start[id(kwargs.get("context"))] = time.perf_counter()

    def _after(self, **kwargs: Any) -> None:
        started = self._start.pop(id(kwargs.get("context")), None)
        if started is not None:
            self.total += time.perf_counter() - started

    def __enter__(self) -> AwsTimer:
        for c in self.clients:
            name = c.meta.service_model.service_name
            c.meta.events.register(f"before-call.{name}", self._before)
            c.meta.events.register(f"after-call.{name}", self._after)
        return self

    def __exit__(self, *exc: object) -> None:
        for c in self.clients:
            name = c.meta.service_model.service_name
            c.meta.events.unregister(f"before-call.{name}", self._before)
            c.meta.events.unregister(f"after-call.{name}", self._after)


def shuffled_within_batches(bodies: list[str], rnd: random.Random) -> list[str]:
    """Roughly time-ordered delivery (as a standard queue gives), in any order within a batch."""
    out: list[str] = []
    for i in range(0, len(bodies), BATCH):
        chunk = bodies[i : i + BATCH]
        rnd.shuffle(chunk)
        out.extend(chunk)
    return out


def main() -> dict[str, Any]:
    from functions.telemetry import handler as telemetry
    from infra.local.resources import create_local_resources
    from smartzone.domain.registry import Device
    from smartzone.repositories.clients import client, reset_clients
    from smartzone.repositories.devices import device_to_item
    from smartzone.settings import get_settings
    from tests.support.telemetry import FakeContext, rule_message, sqs_event
    from tools.aws_calls import CallCounter

    rnd = random.Random(178)
    with mock_aws():
        reset_clients()
        get_settings.cache_clear()
        res = create_local_resources("bench")
        res.export()
        get_settings.cache_clear()
        telemetry.pipeline.cache_clear()
        ids = [f"MH-{i:04d}" for i in range(1, DEVICES + 1)]
        for device_id in ids:
            device = Device(
                device_id=device_id, name=device_id, road="高新大道", lon=118.35, lat=31.33, grid_id="G01"
            )
            client("dynamodb").put_item(TableName=res.table_name, Item=device_to_item(device))
        start = int(time.time() * 1000) - 6 * 3600_000

        def run(bodies: list[str], counter: CallCounter, timer: AwsTimer) -> tuple[float, int]:
            elapsed = 0.0
            failures = 0
            for i in range(0, len(bodies), BATCH):
                event = sqs_event(bodies[i : i + BATCH])
                t = time.perf_counter()
                failures += len(telemetry.handler(event, FakeContext())["batchItemFailures"])
                elapsed += time.perf_counter() - t
            return elapsed, failures

        clients = [client("dynamodb"), client("sqs")]
        pipeline = telemetry.pipeline()
        transitions: Counter[str] = Counter()
        process = pipeline.process

        def counting_process(messages: Any) -> Any:
            outcome = process(messages)
            transitions.update(t.kind.value for t in outcome.transitions)
            return outcome

        pipeline.process = counting_process  # type: ignore[method-assign]
        # Phase 1: warm-up — every device reports once (first heartbeat write each).
        with CallCounter("dynamodb", "sqs") as counter, AwsTimer(clients) as timer:
            run([rule_message(d, start, 2.0) for d in ids], counter, timer)

        # Phase 2: normal readings only, one a minute per device, within a heartbeat interval.
        normal = [
            rule_message(d, start + m * MIN, round(rnd.uniform(0, 6), 1)) for m in range(1, 11) for d in ids
        ]
        normal = shuffled_within_batches(normal, rnd)
        with CallCounter("dynamodb", "sqs") as counter, AwsTimer(clients) as timer:
            normal_s, _ = run(normal, counter, timer)
        normal_calls = dict(counter.counts)
        normal_aws = timer.total

        transitions.clear()
        # Phase 3: a mixed stream — alarms, recoveries, duplicates, malformed.
        mixed: list[str] = []
        tilted = rnd.sample(ids, 30)
        for m in range(11, 18):
            for d in ids:
                tilt = (
                    25.0 + rnd.random() * 10 if d in tilted and m in (11, 12) else round(rnd.uniform(0, 6), 1)
                )
                mixed.append(rule_message(d, start + m * MIN, tilt))
        for _ in range(300):  # duplicates, redelivered close to the original
            i = rnd.randrange(len(mixed))
            mixed.insert(min(len(mixed), i + rnd.randrange(1, BATCH)), mixed[i])
        for _ in range(50):
            mixed.insert(rnd.randrange(len(mixed)), "{bad json")
            mixed.insert(rnd.randrange(len(mixed)), json.dumps({"device_id": "MH-0001", "tilt_deg": "x"}))
        mixed = shuffled_within_batches(mixed, rnd)
        with CallCounter("dynamodb", "sqs") as counter, AwsTimer(clients) as timer:
            mixed_s, failures = run(mixed, counter, timer)
        outcome_orders = counter.counts["TransactWriteItems"]
        # Phase 4: recoveries clear the 30 alarms (clear window 5 min) — more transitions.
        recover = [rule_message(d, start + m * MIN, 1.0) for m in range(18, 26) for d in tilted]
        with CallCounter("dynamodb", "sqs") as counter2, AwsTimer(clients) as timer2:
            run(recover, counter2, timer2)

        total_msgs = len(normal) + len(mixed)
        handler_s = normal_s + mixed_s
        own_s = handler_s - normal_aws - timer.total
        alarm_transitions = sum(transitions.values())
        transaction_calls = outcome_orders + counter2.counts["TransactWriteItems"]
        transaction_items = counter.items["TransactWriteItems"] + counter2.items["TransactWriteItems"]
        per_1000 = {op: round(n * 1000 / len(normal), 2) for op, n in sorted(normal_calls.items())}
        results = {
            "messages": total_msgs,
            "devices": DEVICES,
            "batch_size": BATCH,
            "msgs_per_s": round(total_msgs / own_s),
            "msgs_per_s_with_emulator": round(total_msgs / handler_s),
            "own_ms_per_100": round(own_s / total_msgs * 100 * 1000, 2),
            "calls_per_1000_normal": {**per_1000, "total": round(sum(per_1000.values()), 2)},
            "alarm_transitions": dict(transitions),
            "writes_per_alarm": round(transaction_calls / max(alarm_transitions, 1), 2),
            "items_per_alarm": round(transaction_items / max(alarm_transitions, 1), 2),
            "batch_item_failures": failures,
            "import_ms": {
                f"functions.{path.parent.name}.handler": import_ms(
                    f"functions.{path.parent.name}.handler", samples=3
                )
                for path in sorted((ROOT / "functions").glob("*/handler.py"))
            },
        }
    write_results("telemetry", results)
    return results


if __name__ == "__main__":
    figures = main()
    width = max(len(k) for k in figures)
    for key, value in figures.items():
        print(f"{key:<{width}}  {value}")
