"""Detections benchmark: the real detections handler against emulated AWS (moto), in-process.

Prints and writes ``bench/results/detections.json``:
- ``burst``: 1,000 detections of one camera within its quiet window, in batches of 100 → exactly
  one order with count 1,000 (checked); detections per second (wall, emulator included) and AWS
  calls per detection, by operation;
- ``mixed``: 1,000 detections from 6 cameras and 3 types (a tenth below threshold, 5 %
  duplicates, a few malformed) plus drone changes → calls per detection, transactions per batch;
- ``import_ms``: cold import time of the handler module (fresh interpreter).

Run: ``make bench`` (or ``python -m bench.detections``).
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from typing import Any

from moto import mock_aws

from bench.common import as_json, import_ms, use_emulated_aws, write_results

use_emulated_aws()

BATCH = 100
TYPES = ("illegal_dumping", "river_loitering", "illegal_fishing", "straw_burning")


def _run(handler: Any, context: Any, bodies: list[str], counter_cls: Any) -> tuple[float, Counter[str], int]:
    from tests.support.telemetry import sqs_event

    retried = 0
    with counter_cls("dynamodb", "sqs") as calls:
        start = time.perf_counter()
        for i in range(0, len(bodies), BATCH):
            retried += len(handler(sqs_event(bodies[i : i + BATCH]), context)["batchItemFailures"])
        elapsed = time.perf_counter() - start
    return elapsed, Counter(calls.counts), retried


def _per_detection(counts: Counter[str], n: int) -> dict[str, float]:
    return {op: round(c / n, 4) for op, c in sorted(counts.items())} | {
        "total": round(sum(counts.values()) / n, 4)
    }


def main() -> dict[str, Any]:
    from functions.detections import handler as detections
    from infra.local.resources import create_local_resources
    from smartzone.domain.detections import DetectionType
    from smartzone.repositories.cameras import CameraRepository
    from smartzone.repositories.clients import reset_clients
    from smartzone.repositories.workorders import WorkOrderRepository
    from smartzone.settings import get_settings
    from tests.support.detections import detection_message, drone_message, river_camera
    from tests.support.telemetry import FakeContext
    from tools.aws_calls import CallCounter

    rnd = random.Random(5)
    with mock_aws():
        reset_clients()
        resources = create_local_resources()
        resources.export()
        get_settings.cache_clear()
        detections.pipeline.cache_clear()
        cameras = CameraRepository(resources.table_name)
        types = tuple(DetectionType(t) for t in TYPES)
        for n in range(1, 8):
            cameras.put(river_camera(f"CAM-{n:02d}", f"G{(n % 12) + 1:02d}", types))
        context = FakeContext()
        start_ms = int(time.time() * 1000) - 3 * 3600_000

        # -- burst: one camera, one type, 1,000 detections within the quiet window
        burst = [
            detection_message(
                "CAM-01",
                start_ms + i * 500,
                "illegal_dumping",
                0.8,
                snapshot=f"snapshots/hikvision/b/{i}.jpg",
            )
            for i in range(1000)
        ]
        elapsed, counts, retried = _run(detections.handler, context, burst, CallCounter)
        state = detections.pipeline().store.load_state("CAM-01", "illegal_dumping")
        order = WorkOrderRepository(resources.table_name).get(state.order_id or "")
        assert order is not None and order.detection is not None and order.detection.count == 1000, order
        burst_result = {
            "detections": len(burst),
            "orders": 1,
            "order_count": order.detection.count,
            "retried": retried,
            "detections_per_s": round(len(burst) / elapsed, 1),
            "calls_per_detection": _per_detection(counts, len(burst)),
        }

        # -- mixed: 20 cameras × 4 types, some below threshold, duplicates, malformed, drone changes
        mixed: list[str] = []
        for i in range(1000):
            camera = f"CAM-{rnd.randint(2, 7):02d}"
            confidence = 0.3 if rnd.random() < 0.1 else round(rnd.uniform(0.75, 0.99), 2)
            mixed.append(
                detection_message(camera, start_ms + 600_000 + i * 900, rnd.choice(TYPES[:3]), confidence)
            )
        mixed += rnd.sample(mixed, 50)  # duplicates (redelivery)
        mixed += [
            "{broken",
            json.dumps({"camera_id": "CAM-02", "ts": start_ms, "type": "ufo", "confidence": 0.9}),
        ] * 10
        mixed += [drone_message(f"UAV1-F{i}", start_ms + i, 118.30 + i / 1000, 31.35) for i in range(10)]
        rnd.shuffle(mixed)
        elapsed, counts, retried = _run(detections.handler, context, mixed, CallCounter)
        mixed_result = {
            "messages": len(mixed),
            "retried": retried,
            "detections_per_s": round(len(mixed) / elapsed, 1),
            "calls_per_detection": _per_detection(counts, len(mixed)),
            "transactions_per_batch": round(counts["TransactWriteItems"] / -(-len(mixed) // BATCH), 2),
        }
    results = {
        "burst_1000_one_camera": burst_result,
        "mixed": mixed_result,
        "import_ms": {"functions.detections.handler": import_ms("functions.detections.handler")},
        "note": "moto in-process: rates include the emulator's time; calls per detection are exact",
    }
    print(as_json(results))
    write_results("detections", results)
    return results


if __name__ == "__main__":
    main()
