"""Event sources emulated in-process, wired from the template, driving the real handlers."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

import functions.outbox.handler as outbox_module
import functions.sweeper.handler as sweeper_module
from infra.local.event_sources import (
    Invoker,
    LocalFunction,
    ScheduleRunner,
    SqsPoller,
    StreamPoller,
    build_event_sources,
)
from infra.local.provision import Deployment
from smartzone.repositories.clients import client
from smartzone.repositories.devices import DeviceRepository
from smartzone.settings import get_settings
from tests.support.orders import cover, put_order, tilt_order
from tests.support.telemetry import demo_device, rule_message


def fn(functions: dict[str, LocalFunction], package: str) -> LocalFunction:
    (found,) = [f for f in functions.values() if f.spec.package == package]
    return found


def pollers_of(
    deployment: Deployment, invoker: Invoker, functions: dict[str, LocalFunction], **kw: Any
) -> Any:
    return build_event_sources(deployment, invoker, functions=functions, **kw)


@pytest.fixture
def telemetry_poller(
    deployment: Deployment, functions: dict[str, LocalFunction], invoker: Invoker
) -> SqsPoller:
    telemetry = fn(functions, "telemetry")
    table = telemetry.environment["TABLE_NAME"]
    repo = DeviceRepository(table)
    repo.put_device(demo_device("MH-0178", "G03"))
    repo.put_device(demo_device("MH-0042", "G01"))
    sources = pollers_of(deployment, invoker, functions)
    # The telemetry buffer's poller (the detections buffer and the forms export queue have theirs).
    (poller,) = [p for p in sources.pollers if isinstance(p, SqsPoller) and p.function is telemetry]
    poller.batching_window_s = 0  # deliver what is there now (the template says 2 s)
    return poller


def queue_counts(url: str) -> tuple[int, int]:
    attributes = client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def drain(url: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while messages := client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        out.extend(messages)
        for message in messages:
            client("sqs").delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return out


def send(url: str, bodies: list[str]) -> None:
    for body in bodies:
        client("sqs").send_message(QueueUrl=url, MessageBody=body)


def t0() -> int:
    return int(time.time() * 1000) - 3 * 3600_000


@pytest.fixture
def flaky_mh0178() -> Iterator[None]:
    """DynamoDB refuses (throttles) every write of MH-0178's state: a transient failure."""
    ddb = client("dynamodb")
    real = ddb.transact_write_items

    def flaky(**kwargs: Any) -> Any:
        if "MH-0178" in json.dumps(kwargs["TransactItems"][0]):
            raise ClientError(
                {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow"}},
                "TransactWriteItems",
            )
        return real(**kwargs)

    ddb.transact_write_items = flaky
    yield
    ddb.__dict__.pop("transact_write_items", None)


# -- SQS → telemetry -------------------------------------------------------------------------


def test_given_a_batch_with_one_transient_failure_when_polled_then_good_messages_are_deleted_and_the_failed_one_waits(
    telemetry_poller: SqsPoller, flaky_mh0178: None
) -> None:
    start = t0()
    send(
        telemetry_poller.queue_url,
        [
            rule_message("MH-0042", start, 2.0),
            rule_message("MH-0178", start, 30.0),
            rule_message("MH-0042", start + 60_000, 3.0),
        ],
    )
    result = telemetry_poller.poll_once()

    assert (result.received, result.delivered, result.succeeded, result.failed) == (3, 3, 2, 1)
    assert result.invocation is not None and result.invocation.ok
    event = result.invocation.event
    record = event["Records"][0]
    assert record["eventSource"] == "aws:sqs" and record["eventSourceARN"] == telemetry_poller.queue_arn
    assert record["awsRegion"] == telemetry_poller.region
    assert record["attributes"]["ApproximateReceiveCount"] == "1" and record["md5OfBody"]
    # The failed message is neither deleted nor visible: it comes back after the visibility timeout.
    assert queue_counts(telemetry_poller.queue_url) == (0, 1)


def test_given_a_failed_message_when_it_becomes_visible_again_then_it_is_redelivered_and_applied(
    telemetry_poller: SqsPoller, flaky_mh0178: None
) -> None:
    telemetry_poller.failure_visibility_timeout_s = 0  # no need to wait out 3 minutes here
    start = t0()
    send(
        telemetry_poller.queue_url,
        [rule_message("MH-0178", start, 30.0), rule_message("MH-0042", start, 1.0)],
    )
    first = telemetry_poller.poll_once()
    assert (first.succeeded, first.failed) == (1, 1)

    client("dynamodb").__dict__.pop("transact_write_items", None)  # DynamoDB recovers
    second = telemetry_poller.poll_once()

    assert (second.delivered, second.succeeded, second.failed) == (1, 1, 0)
    assert second.invocation is not None
    (again,) = second.invocation.event["Records"]
    assert json.loads(again["body"])["device_id"] == "MH-0178"
    assert again["attributes"]["ApproximateReceiveCount"] == "2"
    assert queue_counts(telemetry_poller.queue_url) == (0, 0)
    state = DeviceRepository(fn_env(telemetry_poller, "TABLE_NAME")).get("MH-0178")
    assert state is not None and state.state.alarms["tilt"].order_id is not None


def fn_env(poller: SqsPoller, name: str) -> str:
    return poller.function.environment[name]


def test_given_a_malformed_message_when_polled_then_it_goes_to_the_rejects_queue_and_is_deleted(
    telemetry_poller: SqsPoller,
) -> None:
    send(telemetry_poller.queue_url, ["{not json", rule_message("MH-0042", t0(), 1.0)])
    result = telemetry_poller.poll_once()

    assert (result.succeeded, result.failed) == (2, 0)
    assert queue_counts(telemetry_poller.queue_url) == (0, 0)
    rejects = drain(fn_env(telemetry_poller, "REJECTS_QUEUE_URL"))
    assert [json.loads(m["Body"])["reason"] for m in rejects] == ["malformed_json"]


def test_given_a_message_that_always_fails_when_retried_past_max_receive_count_then_it_lands_in_the_dlq(
    telemetry_poller: SqsPoller, flaky_mh0178: None, deployment: Deployment
) -> None:
    telemetry_poller.failure_visibility_timeout_s = 0
    spec = deployment.description.queues[telemetry_poller.mapping.source_id]
    assert spec.dlq_id is not None and spec.max_receive_count is not None
    send(telemetry_poller.queue_url, [rule_message("MH-0178", t0(), 30.0)])

    deliveries = 0
    for _ in range(spec.max_receive_count + 2):
        deliveries += telemetry_poller.poll_once().delivered

    assert deliveries == spec.max_receive_count
    (dead,) = drain(deployment.ref(spec.dlq_id))
    assert json.loads(dead["Body"])["device_id"] == "MH-0178"


def test_given_a_function_error_when_polled_then_nothing_is_deleted(
    telemetry_poller: SqsPoller, monkeypatch: pytest.MonkeyPatch
) -> None:
    import functions.telemetry.handler as telemetry_module

    def broken() -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(telemetry_module, "pipeline", broken)
    send(telemetry_poller.queue_url, [rule_message("MH-0042", t0(), 1.0)] * 2)
    result = telemetry_poller.poll_once()
    assert result.invocation is not None and isinstance(result.invocation.error, RuntimeError)
    assert (result.succeeded, result.failed) == (0, 2)
    assert queue_counts(telemetry_poller.queue_url) == (0, 2)


def test_given_an_invalid_partial_batch_response_then_the_whole_batch_fails(
    telemetry_poller: SqsPoller, monkeypatch: pytest.MonkeyPatch
) -> None:
    import functions.telemetry.handler as telemetry_module

    monkeypatch.setattr(
        telemetry_module, "handler", lambda _e, _c: {"batchItemFailures": [{"itemIdentifier": "unknown"}]}
    )
    send(telemetry_poller.queue_url, [rule_message("MH-0042", t0(), 1.0)] * 3)
    result = telemetry_poller.poll_once()
    assert (result.succeeded, result.failed) == (0, 3)


# -- table stream → outbox -------------------------------------------------------------------


@pytest.fixture
def outbox_poller(
    deployment: Deployment, functions: dict[str, LocalFunction], invoker: Invoker
) -> StreamPoller:
    (poller,) = [p for p in pollers_of(deployment, invoker, functions).pollers if isinstance(p, StreamPoller)]
    assert poller.function is fn(functions, "outbox")
    return poller


def subscribe_grid(topic_arn: str, grid_id: str) -> str:
    sqs = client("sqs")
    url = sqs.create_queue(QueueName=f"worker-{grid_id.lower()}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    client("sns").subscribe(
        TopicArn=topic_arn,
        Protocol="sqs",
        Endpoint=arn,
        Attributes={"FilterPolicy": json.dumps({"grid_id": [grid_id]}), "RawMessageDelivery": "true"},
    )
    return url


def test_given_a_new_order_when_the_stream_is_polled_then_the_outbox_notifies_its_grid(
    outbox_poller: StreamPoller,
) -> None:
    env = outbox_poller.function.environment
    g03 = subscribe_grid(env["NOTIFICATIONS_TOPIC_ARN"], "G03")
    DeviceRepository(env["TABLE_NAME"]).put_device(demo_device("MH-0178", "G03"))  # filtered out
    order = tilt_order(cover("MH-0178", "G03"))
    put_order(env["TABLE_NAME"], order)

    result = outbox_poller.poll_once()

    assert result.filtered >= 1 and result.delivered >= 1 and result.failed == 0
    assert result.invocation is not None
    records = result.invocation.event["Records"]
    assert all(r["dynamodb"]["Keys"]["pk"]["S"].startswith("ORDER#") for r in records)
    assert records[0]["eventSource"] == "aws:dynamodb" and records[0]["eventSourceARN"]
    events = [json.loads(m["Body"]) for m in drain(g03)]
    assert [e["event_id"] for e in events] == [f"{order.order_id}:v1"]
    assert outbox_poller.poll_once().delivered == 0  # nothing new


def test_given_a_record_that_keeps_failing_when_retries_run_out_then_its_metadata_goes_to_the_failure_queue(
    outbox_poller: StreamPoller, deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken() -> Any:
        raise RuntimeError("sinks unavailable")

    monkeypatch.setattr(outbox_module, "build_dispatcher", broken)
    put_order(outbox_poller.function.environment["TABLE_NAME"], tilt_order(cover("MH-0178", "G03")))
    mapping = outbox_poller.mapping
    assert mapping.max_retry_attempts is not None and mapping.on_failure_id is not None

    results = [outbox_poller.poll_once() for _ in range(mapping.max_retry_attempts + 1)]

    assert [r.delivered for r in results] == [1] * (mapping.max_retry_attempts + 1)
    assert sum(r.discarded for r in results) == 1 and results[-1].discarded == 1
    (failure,) = drain(deployment.ref(mapping.on_failure_id))
    metadata = json.loads(failure["Body"])
    assert metadata["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert metadata["requestContext"]["functionArn"] == outbox_poller.function.arn
    info = metadata["DDBStreamBatchInfo"]
    assert info["batchSize"] == 1 and info["streamArn"] == outbox_poller.reader.stream_arn
    assert info["startSequenceNumber"] == info["endSequenceNumber"]
    assert outbox_poller.poll_once().delivered == 0  # the shard moved on


def test_given_a_failing_batch_when_bisect_is_on_then_it_is_halved(
    outbox_poller: StreamPoller, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = outbox_module.handler

    def handler(event: dict[str, Any], context: Any) -> Any:
        calls.append(len(event["Records"]))
        if len(event["Records"]) > 1:
            raise RuntimeError("one poison record somewhere")
        return real(event, context)

    monkeypatch.setattr(outbox_module, "handler", handler)
    table = outbox_poller.function.environment["TABLE_NAME"]
    for i in range(4):
        put_order(table, tilt_order(cover(f"MH-01{i:02d}", "G03")))
    for _ in range(8):
        outbox_poller.poll_once()
    assert calls[:3] == [4, 2, 1]
    assert calls.count(1) == 4  # every record delivered on its own in the end


# -- schedule → sweeper ----------------------------------------------------------------------


def test_given_the_sweeper_schedule_when_fired_then_the_sweeper_runs_with_a_scheduled_event(
    deployment: Deployment, functions: dict[str, LocalFunction], invoker: Invoker
) -> None:
    (runner,) = [
        p for p in pollers_of(deployment, invoker, functions).pollers if isinstance(p, ScheduleRunner)
    ]
    assert runner.function is fn(functions, "sweeper")
    assert runner.period_s == runner.schedule.period_s

    result = runner.poll_once()

    assert result.invocation is not None and result.invocation.ok, result.invocation
    assert "counts" in result.invocation.result
    event = result.invocation.event
    assert event["source"] == "aws.events" and event["detail-type"] == "Scheduled Event"
    assert event["resources"] == [deployment.attribute(runner.schedule.logical_id, "Arn")]


def test_given_a_short_period_when_run_in_a_thread_then_it_fires_until_stopped(
    deployment: Deployment, functions: dict[str, LocalFunction], invoker: Invoker
) -> None:
    sources = pollers_of(deployment, invoker, functions, schedule_period_s=0.05)
    (runner,) = [p for p in sources.pollers if isinstance(p, ScheduleRunner)]  # cron schedules are not run
    assert runner.function is fn(functions, "sweeper")
    stop = threading.Event()
    thread = runner.start(stop)
    deadline = time.monotonic() + 10
    while runner.runs < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    stop.set()
    thread.join(timeout=10)
    assert runner.runs >= 2 and not thread.is_alive()


def test_pollers_run_in_threads_deliver_telemetry_end_to_end(
    telemetry_poller: SqsPoller,
) -> None:
    stop = threading.Event()
    thread = telemetry_poller.start(stop)
    try:
        send(telemetry_poller.queue_url, [rule_message("MH-0042", t0(), 30.0)])
        deadline = time.monotonic() + 10
        while queue_counts(telemetry_poller.queue_url) != (0, 0) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(timeout=10)
    assert queue_counts(telemetry_poller.queue_url) == (0, 0)
    state = DeviceRepository(fn_env(telemetry_poller, "TABLE_NAME")).get("MH-0042")
    assert state is not None and state.state.alarms["tilt"].order_id is not None


# -- function environments -------------------------------------------------------------------


def test_each_invocation_sees_only_its_own_functions_environment(
    functions: dict[str, LocalFunction], invoker: Invoker, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[dict[str, str | None]] = []

    def probe(event: Any, context: Any) -> None:
        settings = get_settings()
        seen.append(
            {
                "rejects": settings.rejects_queue_url or None,
                "retry": settings.retry_queue_url or None,
                "env_rejects": os.environ.get("REJECTS_QUEUE_URL"),
                "name": context.function_name,
                "lambda_name": os.environ.get("AWS_LAMBDA_FUNCTION_NAME"),
            }
        )

    monkeypatch.setattr(sweeper_module, "handler", probe)
    monkeypatch.delenv("REJECTS_QUEUE_URL", raising=False)
    telemetry, outbox, sweeper = fn(functions, "telemetry"), fn(functions, "outbox"), fn(functions, "sweeper")
    as_telemetry = LocalFunction(sweeper.spec, telemetry.name, telemetry.arn, telemetry.environment)
    as_outbox = LocalFunction(sweeper.spec, outbox.name, outbox.arn, outbox.environment)

    invoker.invoke(as_telemetry, {})
    invoker.invoke(as_outbox, {})

    assert seen[0]["rejects"] == telemetry.environment["REJECTS_QUEUE_URL"] and seen[0]["retry"] is None
    assert seen[1]["rejects"] is None and seen[1]["retry"] == outbox.environment["RETRY_QUEUE_URL"]
    assert seen[1]["env_rejects"] is None
    assert [s["name"] for s in seen] == [telemetry.name, outbox.name] == [s["lambda_name"] for s in seen]
    assert "REJECTS_QUEUE_URL" not in os.environ and "AWS_LAMBDA_FUNCTION_NAME" not in os.environ


def test_module_caches_of_a_function_are_rebuilt_when_its_environment_changes(
    deployment: Deployment, functions: dict[str, LocalFunction], invoker: Invoker
) -> None:
    import functions.telemetry.handler as telemetry_module

    telemetry = fn(functions, "telemetry")
    invoker.invoke(telemetry, {"Records": []})
    assert telemetry_module.pipeline().devices.table_name == telemetry.environment["TABLE_NAME"]
    moved = LocalFunction(
        telemetry.spec, telemetry.name, telemetry.arn, {**telemetry.environment, "TABLE_NAME": "elsewhere"}
    )
    invoker.invoke(moved, {"Records": []})
    assert telemetry_module.pipeline().devices.table_name == "elsewhere"
    invoker.invoke(telemetry, {"Records": []})
    assert telemetry_module.pipeline().devices.table_name == telemetry.environment["TABLE_NAME"]
