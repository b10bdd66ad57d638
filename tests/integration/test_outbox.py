"""The outbox dispatcher against emulated AWS: table stream → handler → SNS → grid workers' queues.

SQS queues subscribed to the topic with a ``grid_id`` filter policy stand in for the grid
workers' e-mail and webhook subscriptions (moto enforces filter policies).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from functions.outbox.handler import handler
from infra.local.resources import LocalResources
from infra.local.streams import StreamReader
from smartzone.domain.notifications import OutboundEvent
from smartzone.repositories.clients import client
from smartzone.repositories.codec import to_item
from smartzone.repositories.notifier import Notifier, PublishError, parse_parked
from tests.support.orders import cleared, commented, cover, order_image, put_order, tilt_order
from tests.support.telemetry import FakeContext
from tools.redrive_notifications import main as redrive_main
from tools.redrive_notifications import redrive

EVENTS = Path(__file__).resolve().parents[2] / "events"


class OutboxContext(FakeContext):
    function_name = "outbox"
    invoked_function_arn = "arn:aws-cn:lambda:cn-north-1:123456789012:function:outbox"


@dataclass
class Delivery:
    """One SNS notification as a subscriber's queue received it."""

    event: dict[str, Any]
    attributes: dict[str, str]
    subject: str | None


@dataclass
class Workers:
    """Grid workers' subscriptions: one queue per grid, filtered on ``grid_id``."""

    queues: dict[str, str]

    def received(self, grid_id: str) -> list[Delivery]:
        sqs = client("sqs")
        deliveries: list[Delivery] = []
        while True:
            messages = sqs.receive_message(QueueUrl=self.queues[grid_id], MaxNumberOfMessages=10).get(
                "Messages", []
            )
            if not messages:
                return deliveries
            for message in messages:
                envelope = json.loads(message["Body"])
                deliveries.append(
                    Delivery(
                        event=json.loads(envelope["Message"]),
                        attributes={k: v["Value"] for k, v in envelope.get("MessageAttributes", {}).items()},
                        subject=envelope.get("Subject"),
                    )
                )
                sqs.delete_message(QueueUrl=self.queues[grid_id], ReceiptHandle=message["ReceiptHandle"])


@pytest.fixture
def workers(resources: LocalResources) -> Workers:
    sqs, sns = client("sqs"), client("sns")
    queues = {}
    for grid_id in ("G03", "G05"):
        url = sqs.create_queue(QueueName=f"worker-{grid_id.lower()}")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(
            TopicArn=resources.notifications_topic_arn,
            Protocol="sqs",
            Endpoint=arn,
            Attributes={"FilterPolicy": json.dumps({"grid_id": [grid_id]})},
        )
        queues[grid_id] = url
    return Workers(queues)


@pytest.fixture
def stream(resources: LocalResources) -> StreamReader:
    return StreamReader(resources.table_name)


def dispatch(event: dict[str, Any]) -> dict[str, Any]:
    return handler(event, OutboxContext())


def parked_messages(queue_url: str) -> list[dict[str, Any]]:
    """Peek at the retry queue (messages are made visible again at once)."""
    sqs = client("sqs")
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0).get(
        "Messages", []
    )
    return messages


def failing(code: str = "InternalError", when: Callable[[dict[str, Any]], bool] = lambda _kw: True) -> Any:
    """A stand-in for a client method that raises ``code`` for the calls ``when`` selects."""

    def call(original: Callable[..., Any]) -> Callable[..., Any]:
        def method(**kwargs: Any) -> Any:
            if when(kwargs):
                raise ClientError({"Error": {"Code": code, "Message": "injected failure"}}, "Injected")
            return original(**kwargs)

        return method

    return call


class SnsOutage:
    """Makes the cached SNS client's ``publish`` fail (all calls, or those ``when`` selects)."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self._sns = client("sns")

    def start(self, when: Callable[[dict[str, Any]], bool] = lambda _kw: True) -> list[dict[str, Any]]:
        self.end()
        wrapped = failing("InternalError", when)(self._sns.publish)

        def publish(**kwargs: Any) -> Any:
            self.calls.append(kwargs)
            return wrapped(**kwargs)

        self._sns.publish = publish
        return self.calls

    def end(self) -> None:
        """SNS works again (the client's own method is back)."""
        self._sns.__dict__.pop("publish", None)


@pytest.fixture
def sns_outage(resources: LocalResources) -> Iterator[SnsOutage]:
    outage = SnsOutage()
    yield outage
    outage.end()


def metrics_emitted(output: str) -> dict[str, float]:
    """Sum of the EMF metrics Powertools printed."""
    totals: dict[str, float] = {}
    for line in output.splitlines():
        if not line.startswith("{") or '"_aws"' not in line:
            continue
        blob = json.loads(line)
        for directive in blob["_aws"]["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                values = blob[metric["Name"]]
                values = values if isinstance(values, list) else [values]
                totals[metric["Name"]] = totals.get(metric["Name"], 0) + sum(values)
    return totals


# ------------------------------------------------------------------------------- delivery


def test_given_a_new_order_in_g03_when_its_stream_record_is_dispatched_then_only_g03_worker_receives_it(
    resources: LocalResources, workers: Workers, stream: StreamReader
) -> None:
    order = tilt_order(cover("MH-0178", "G03"))
    put_order(resources.table_name, order)

    response = dispatch(stream.poll())

    assert response == {"batchItemFailures": []}
    (delivery,) = workers.received("G03")
    assert delivery.event["event_id"] == f"{order.order_id}:v1"
    assert delivery.event["event_type"] == "order_created"
    assert "178号窨井盖" in delivery.event["text"] and "25.3°" in delivery.event["text"]
    assert delivery.event["order"]["order_id"] == order.order_id
    assert delivery.attributes == {
        "grid_id": "G03",
        "category": "manhole_tilt",
        "severity": "high",
        "event_type": "order_created",
        "event_id": f"{order.order_id}:v1",
    }
    assert delivery.subject == "【新工单】178号窨井盖倾斜告警(网格 G03)"
    assert workers.received("G05") == []


def test_given_orders_in_two_grids_when_dispatched_then_each_worker_gets_only_their_grids_order(
    resources: LocalResources, workers: Workers, stream: StreamReader
) -> None:
    g03 = tilt_order(cover("MH-0178", "G03"))
    g05 = tilt_order(cover("MH-0412", "G05"))
    put_order(resources.table_name, g03)
    put_order(resources.table_name, g05)

    dispatch(stream.poll())

    assert [d.event["order_id"] for d in workers.received("G03")] == [g03.order_id]
    assert [d.event["order_id"] for d in workers.received("G05")] == [g05.order_id]


def test_given_the_alarm_clears_when_the_modification_is_dispatched_then_the_worker_gets_version_2(
    resources: LocalResources, workers: Workers, stream: StreamReader
) -> None:
    order = tilt_order()
    put_order(resources.table_name, order)
    dispatch(stream.poll())
    workers.received("G03")

    put_order(resources.table_name, cleared(order))
    response = dispatch(stream.poll())

    assert response == {"batchItemFailures": []}
    (delivery,) = workers.received("G03")
    assert delivery.event["event_id"] == f"{order.order_id}:v2"
    assert delivery.event["event_type"] == "alarm_cleared"
    assert "已解除" in delivery.event["text"] and "3.1°" in delivery.event["text"]
    assert delivery.attributes["event_type"] == "alarm_cleared"


def test_given_a_comment_when_dispatched_then_nobody_is_notified(
    resources: LocalResources, workers: Workers, stream: StreamReader
) -> None:
    order = tilt_order()
    put_order(resources.table_name, order)
    dispatch(stream.poll())
    workers.received("G03")

    put_order(resources.table_name, commented(order))
    response = dispatch(stream.poll())

    assert response == {"batchItemFailures": []}
    assert workers.received("G03") == []


def test_given_a_record_delivered_twice_when_dispatched_again_then_people_are_notified_once(
    resources: LocalResources, workers: Workers, stream: StreamReader
) -> None:
    """E-mail and webhooks do not deduplicate: the SNS sink publishes each event id once."""
    put_order(resources.table_name, tilt_order())
    event = stream.poll()

    dispatch(event)
    dispatch(event)

    ids = [d.event["event_id"] for d in workers.received("G03")]
    assert len(ids) == 1


def test_given_the_inbox_fails_once_when_the_record_is_retried_then_sns_does_not_publish_again(
    resources: LocalResources, workers: Workers, stream: StreamReader, monkeypatch: pytest.MonkeyPatch
) -> None:
    from smartzone.repositories.inbox import InboxRepository

    put_order(resources.table_name, tilt_order().model_copy(update={"assignee": "tech-07"}))
    event = stream.poll()
    real_add = InboxRepository.add
    failures = [1]

    def flaky_add(self: InboxRepository, *args: Any, **kwargs: Any) -> Any:
        if failures[0]:
            failures[0] -= 1
            raise RuntimeError("inbox write failed")
        return real_add(self, *args, **kwargs)

    monkeypatch.setattr(InboxRepository, "add", flaky_add)
    assert dispatch(event)["batchItemFailures"], "the record is retried"
    assert dispatch(event) == {"batchItemFailures": []}

    assert len(workers.received("G03")) == 1


def test_given_records_of_other_items_when_they_reach_the_dispatcher_then_they_are_ignored(
    resources: LocalResources, workers: Workers, sns_outage: SnsOutage
) -> None:
    calls = sns_outage.start()
    client("dynamodb").put_item(
        TableName=resources.table_name,
        Item=to_item({"pk": "DEVICE#MH-0178", "sk": "DEVICE", "entity": "device", "grid_id": "G03"}),
    )
    unfiltered = StreamReader(resources.table_name, key_prefix=None)

    response = dispatch(unfiltered.poll())

    assert response == {"batchItemFailures": []}
    assert calls == []


def test_given_a_malformed_order_item_when_dispatched_then_it_is_acknowledged_and_counted(
    resources: LocalResources, workers: Workers, stream: StreamReader, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = {**order_image(tilt_order()), "status": "teleported"}
    client("dynamodb").put_item(TableName=resources.table_name, Item=to_item(broken))
    good = tilt_order(cover("MH-0412", "G05"))
    put_order(resources.table_name, good)

    response = dispatch(stream.poll())

    assert response == {"batchItemFailures": []}
    assert [d.event["order_id"] for d in workers.received("G05")] == [good.order_id]
    assert metrics_emitted(capsys.readouterr().out)["OutboxRecordsInvalid"] == 1


def test_given_the_stream_reader_then_it_filters_to_orders_and_remembers_its_position(
    resources: LocalResources,
) -> None:
    reader = StreamReader(resources.table_name)
    client("dynamodb").put_item(
        TableName=resources.table_name, Item=to_item({"pk": "GRID#G03", "sk": "GRID", "entity": "grid"})
    )
    put_order(resources.table_name, tilt_order())

    first = reader.poll()
    second = reader.poll()

    (record,) = first["Records"]
    assert record["eventName"] == "INSERT"
    assert record["eventSource"] == "aws:dynamodb"
    assert record["awsRegion"] == "cn-north-1"
    assert record["eventSourceARN"].startswith("arn:aws-cn:dynamodb:cn-north-1:")
    assert "/stream/" in record["eventSourceARN"]
    assert isinstance(record["dynamodb"]["ApproximateCreationDateTime"], int)
    assert record["dynamodb"]["Keys"]["pk"] == {"S": f"ORDER#{tilt_order().order_id}"}
    assert second == {"Records": []}


def test_given_a_latest_reader_then_it_sees_only_records_written_after_it_was_created(
    resources: LocalResources,
) -> None:
    put_order(resources.table_name, tilt_order(cover("MH-0178", "G03")))
    reader = StreamReader(resources.table_name, starting_position="LATEST")
    later = tilt_order(cover("MH-0179", "G03"))
    put_order(resources.table_name, later)

    records = [*reader.batches(batch_size=1)]

    assert [r["Records"][0]["dynamodb"]["Keys"]["pk"]["S"] for r in records] == [f"ORDER#{later.order_id}"]


def test_given_the_sample_insert_event_when_invoked_locally_then_g03_worker_receives_the_seed_story_order(
    resources: LocalResources, workers: Workers
) -> None:
    event = json.loads((EVENTS / "stream_order_insert.json").read_text(encoding="utf-8"))

    response = dispatch(event)

    assert response == {"batchItemFailures": []}
    (delivery,) = workers.received("G03")
    assert delivery.event["event_type"] == "order_created"
    assert "2026-11-29 14:05(北京时间)" in delivery.event["text"]
    assert workers.received("G05") == []


# ------------------------------------------------------------------------------- failures


def test_given_sns_fails_once_when_dispatched_then_the_retry_publishes_it_and_nothing_is_parked(
    resources: LocalResources, workers: Workers, stream: StreamReader, sns_outage: SnsOutage
) -> None:
    seen: list[int] = []

    def first_call_only(_kwargs: dict[str, Any]) -> bool:
        seen.append(1)
        return len(seen) == 1

    calls = sns_outage.start(first_call_only)
    put_order(resources.table_name, tilt_order())

    response = dispatch(stream.poll())

    assert response == {"batchItemFailures": []}
    assert len(calls) == 2
    assert len(workers.received("G03")) == 1
    assert parked_messages(resources.retry_queue_url) == []


def test_given_sns_keeps_failing_when_dispatched_then_the_event_is_parked_in_full_and_redrive_delivers_it(
    resources: LocalResources,
    workers: Workers,
    stream: StreamReader,
    sns_outage: SnsOutage,
    capsys: pytest.CaptureFixture[str],
) -> None:
    order = tilt_order()
    put_order(resources.table_name, order)
    calls = sns_outage.start()

    response = dispatch(stream.poll())

    # Not a batch failure: the event is safe in the retry queue.
    assert response == {"batchItemFailures": []}
    assert len(calls) == 3  # publish_attempts
    assert workers.received("G03") == []
    assert metrics_emitted(capsys.readouterr().out).get("NotificationsParked") == 1
    (message,) = parked_messages(resources.retry_queue_url)
    parked = parse_parked(message["Body"])
    assert parked.event.event_id == f"{order.order_id}:v1"
    assert parked.event.order["order_id"] == order.order_id
    assert "178号窨井盖" in parked.event.text
    assert parked.attempts == 3 and "InternalError" in parked.error
    assert parked.topic_arn == resources.notifications_topic_arn

    # When SNS works again, the redrive publishes it to the same grid's worker only.
    sns_outage.end()
    report = redrive(wait_s=0)

    assert (report.found, report.published, report.failed, report.left) == (1, 1, 0, 0)
    (delivery,) = workers.received("G03")
    assert delivery.event["event_id"] == f"{order.order_id}:v1"
    assert delivery.attributes["grid_id"] == "G03"
    assert OutboundEvent.model_validate(delivery.event) == parked.event
    assert workers.received("G05") == []
    assert parked_messages(resources.retry_queue_url) == []


def test_given_sns_down_when_a_batch_is_dispatched_then_all_events_are_parked_after_one_events_attempts(
    resources: LocalResources, workers: Workers, stream: StreamReader, sns_outage: SnsOutage
) -> None:
    for device_id in ("MH-0178", "MH-0179", "MH-0180"):
        put_order(resources.table_name, tilt_order(cover(device_id, "G03")))
    calls = sns_outage.start()

    response = dispatch(stream.poll())

    assert response == {"batchItemFailures": []}
    assert len(calls) == 3  # the first event's attempts; the others are parked at once
    parked = [parse_parked(m["Body"]).event.event_id for m in _drain(resources.retry_queue_url)]
    assert sorted(parked) == sorted(
        f"{tilt_order(cover(d, 'G03')).order_id}:v1" for d in ("MH-0178", "MH-0179", "MH-0180")
    )


def _drain(queue_url: str) -> list[dict[str, Any]]:
    sqs = client("sqs")
    found: list[dict[str, Any]] = []
    while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
        found.extend(messages)
    return found


def test_given_sns_and_the_retry_queue_fail_when_dispatched_then_only_that_record_is_a_batch_failure(
    resources: LocalResources,
    workers: Workers,
    stream: StreamReader,
    sns_outage: SnsOutage,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    g05 = tilt_order(cover("MH-0412", "G05"))
    g03 = tilt_order(cover("MH-0178", "G03"))
    put_order(resources.table_name, g05)
    put_order(resources.table_name, g03)
    event = stream.poll()
    g03_sequence = event["Records"][1]["dynamodb"]["SequenceNumber"]

    def for_g03(kwargs: dict[str, Any]) -> bool:
        return bool(kwargs["MessageAttributes"]["grid_id"]["StringValue"] == "G03")

    sns_outage.start(for_g03)
    sqs = client("sqs")
    monkeypatch.setattr(
        sqs, "send_message", failing("AWS.SimpleQueueService.NonExistentQueue")(sqs.send_message)
    )

    response = dispatch(event)

    assert response == {"batchItemFailures": [{"itemIdentifier": g03_sequence}]}
    assert [d.event["order_id"] for d in workers.received("G05")] == [g05.order_id]
    assert workers.received("G03") == []


def test_given_every_record_fails_when_dispatched_then_all_are_reported_not_raised(
    resources: LocalResources, stream: StreamReader, sns_outage: SnsOutage, monkeypatch: pytest.MonkeyPatch
) -> None:
    put_order(resources.table_name, tilt_order())
    event = stream.poll()
    sns_outage.start()
    sqs = client("sqs")
    monkeypatch.setattr(sqs, "send_message", failing()(sqs.send_message))

    response = dispatch(event)

    assert response == {
        "batchItemFailures": [{"itemIdentifier": event["Records"][0]["dynamodb"]["SequenceNumber"]}]
    }


def test_given_a_permanent_sns_error_when_publishing_then_it_is_parked_without_more_attempts(
    resources: LocalResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    sns = client("sns")
    calls: list[dict[str, Any]] = []
    refuse = failing("AuthorizationError")(sns.publish)

    def publish(**kwargs: Any) -> Any:
        calls.append(kwargs)
        return refuse(**kwargs)

    monkeypatch.setattr(sns, "publish", publish)

    with pytest.raises(PublishError, match="AuthorizationError"):
        Notifier.from_settings().publish(_event())

    assert len(calls) == 1


def test_given_sns_down_when_one_event_used_up_its_attempts_then_publishing_pauses_then_probes_once(
    resources: LocalResources, sns_outage: SnsOutage
) -> None:
    calls = sns_outage.start()
    now = [0.0]
    slept: list[float] = []
    notifier = Notifier(
        resources.notifications_topic_arn,
        resources.retry_queue_url,
        attempts=3,
        cooldown_s=20,
        sleep=slept.append,
        clock=lambda: now[0],
    )

    with pytest.raises(PublishError, match="InternalError"):
        notifier.publish(_event())
    assert (len(calls), slept, notifier.circuit_open) == (3, [0.05, 0.1], True)

    # While the circuit is open, events fail at once (to be parked) without calling SNS.
    with pytest.raises(PublishError, match="CircuitOpenError") as paused:
        notifier.publish(_event())
    assert paused.value.attempts == 0 and len(calls) == 3

    # After the cooldown one event probes with a single attempt; it fails: paused again.
    now[0] = 21.0
    with pytest.raises(PublishError, match="InternalError"):
        notifier.publish(_event())
    assert len(calls) == 4 and notifier.circuit_open

    # SNS is back: the next probe succeeds and closes the circuit.
    sns_outage.end()
    now[0] = 42.0
    assert notifier.publish(_event())
    assert not notifier.circuit_open
    assert notifier.publish(_event())


def _event() -> OutboundEvent:
    from smartzone.domain.notifications import OrderChange, derive_event

    change = OrderChange.from_images("INSERT", None, order_image(tilt_order()))
    assert change is not None
    event = derive_event(change)
    assert event is not None
    return event


# ------------------------------------------------------------------------------- redrive


@pytest.fixture
def parked_one(resources: LocalResources, stream: StreamReader, sns_outage: SnsOutage) -> str:
    """One event parked after SNS failures; SNS works again afterwards."""
    order = tilt_order()
    put_order(resources.table_name, order)
    sns_outage.start()
    dispatch(stream.poll())
    sns_outage.end()
    return f"{order.order_id}:v1"


def test_given_a_parked_event_when_redriving_dry_then_nothing_is_published_or_deleted(
    resources: LocalResources, workers: Workers, parked_one: str
) -> None:
    report = redrive(dry_run=True, wait_s=0)

    assert (report.found, report.published, report.failed, report.left) == (1, 1, 0, 1)
    assert report.event_ids == [parked_one]
    assert workers.received("G03") == []
    assert len(parked_messages(resources.retry_queue_url)) == 1


def test_given_sns_still_failing_when_redriving_then_the_event_stays_parked(
    resources: LocalResources, workers: Workers, parked_one: str, sns_outage: SnsOutage
) -> None:
    sns_outage.start()

    report = redrive(wait_s=0)

    assert (report.found, report.published, report.failed, report.left) == (1, 0, 1, 1)
    assert len(parked_messages(resources.retry_queue_url)) == 1


def test_given_a_foreign_message_in_the_retry_queue_when_redriving_then_it_is_left_alone(
    resources: LocalResources, workers: Workers, parked_one: str
) -> None:
    client("sqs").send_message(QueueUrl=resources.retry_queue_url, MessageBody="not a parked event")

    report = redrive(wait_s=0)

    assert (report.found, report.published, report.failed, report.left) == (2, 1, 1, 1)
    assert [d.event["event_id"] for d in workers.received("G03")] == [parked_one]


def test_given_parked_events_when_the_cli_runs_with_max_then_it_handles_that_many_and_prints_counts(
    resources: LocalResources,
    workers: Workers,
    stream: StreamReader,
    sns_outage: SnsOutage,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for device_id in ("MH-0178", "MH-0179", "MH-0180"):
        put_order(resources.table_name, tilt_order(cover(device_id, "G03")))
    sns_outage.start()
    dispatch(stream.poll())
    sns_outage.end()
    capsys.readouterr()

    code = redrive_main(
        [
            "--max",
            "2",
            "--queue-url",
            resources.retry_queue_url,
            "--topic-arn",
            resources.notifications_topic_arn,
        ]
    )

    assert code == 0
    assert "found 2, published 2, failed 0, left 1" in capsys.readouterr().out
    assert len(workers.received("G03")) == 2


def test_given_held_messages_that_reappear_at_once_when_redriving_then_the_run_stops_with_a_note_not_a_loop(
    resources: LocalResources, workers: Workers, parked_one: str
) -> None:
    """A hold of 0 s makes every foreign message come straight back: the run must still end,
    having delivered the parked event and saying why it stopped."""
    for k in range(12):
        client("sqs").send_message(QueueUrl=resources.retry_queue_url, MessageBody=f"not a parked event {k}")

    report = redrive(wait_s=0, visibility_timeout_s=0)

    assert report.published == 1
    assert [d.event["event_id"] for d in workers.received("G03")] == [parked_one]
    assert report.left == 12  # every foreign message is still in the queue, none deleted
    assert any("run the command again" in error for error in report.errors)
