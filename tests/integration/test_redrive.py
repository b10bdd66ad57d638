"""``tools/redrive.py`` against emulated AWS: queues found by name, tag and redrive policy.

The queues are named and tagged the way the local platform provisions them from the template
(``<stack>-<LogicalId>``, tag ``smartzone:queue``), with a second stack's queue beside them
that must never be touched.
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from functions.telemetry import handler as telemetry
from infra.local.resources import LocalResources
from smartzone.domain.notifications import ChangeKind, OrderChange, derive_event
from smartzone.repositories.clients import client
from smartzone.repositories.devices import DeviceRepository
from smartzone.repositories.notifier import Notifier
from tests.integration.test_telemetry_handler import orders
from tests.support.orders import tilt_order
from tests.support.telemetry import FakeContext, demo_device, rule_message, sqs_event
from tools import redrive as tool
from tools.ops_aws import use_local_platform

STACK = "SmartZone"
TELEMETRY_SQL = (
    "SELECT ts, tilt_deg, battery_pct, seq, topic(3) AS device_id, timestamp() AS received_at "
    "FROM 'smartzone/manhole/+/telemetry'"
)
"""The telemetry rule's SQL (``infra/constructs/ingest.py``), as IoT Core returns it."""
MIN = 60_000


def make_queue(name: str, role: str | None = None, dlq_arn: str | None = None) -> tuple[str, str]:
    sqs = client("sqs")
    attributes = {}
    if dlq_arn:
        attributes["RedrivePolicy"] = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5})
    tags = {"project": "smartzone", **({"smartzone:queue": role} if role else {})}
    url = sqs.create_queue(QueueName=name, Attributes=attributes, tags=tags)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def drain(url: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        got = (
            client("sqs")
            .receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
            .get("Messages", [])
        )
        if not got:
            return out
        out.extend(got)
        client("sqs").delete_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)],
        )


def depth(url: str) -> int:
    attributes = client("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
    )
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


@pytest.fixture
def stack(resources: LocalResources) -> Iterator[dict[str, str]]:
    telemetry.pipeline.cache_clear()
    DeviceRepository(resources.table_name).put_device(demo_device("MH-0178", "G03"))
    urls: dict[str, str] = {}
    urls["buffer_dlq"], buffer_dlq_arn = make_queue(f"{STACK}-IngestBufferDlq1A2B3C4D")
    urls["buffer"], _ = make_queue(f"{STACK}-IngestBufferQueue5E6F7A8B", "telemetry-buffer", buffer_dlq_arn)
    urls["rejects"], _ = make_queue(f"{STACK}-IngestRejectsQueue11111111", "rejects")
    urls["rule_errors"], _ = make_queue(f"{STACK}-IngestRuleErrorsQueue22222222", "rule-errors")
    urls["retry"], _ = make_queue(f"{STACK}-NotificationsPublishRetryQueue33333333", "publish-retry")
    urls["topic"] = client("sns").create_topic(Name=f"{STACK}-Notifications3F627F63")["TopicArn"]
    urls["other_dlq"], other_arn = make_queue(f"{STACK}-dev-IngestBufferDlq1A2B3C4D")
    urls["other"], _ = make_queue(f"{STACK}-dev-IngestBufferQueue5E6F7A8B", "telemetry-buffer", other_arn)
    yield urls
    telemetry.pipeline.cache_clear()


def put(url: str, *bodies: str, attributes: dict[str, Any] | None = None) -> None:
    for body in bodies:
        client("sqs").send_message(QueueUrl=url, MessageBody=body, MessageAttributes=attributes or {})


def test_given_messages_in_a_dlq_when_dry_run_then_it_counts_them_and_moves_nothing(
    stack: dict[str, str],
) -> None:
    start = int(time.time() * 1000) - 3600_000
    put(stack["buffer_dlq"], *(rule_message("MH-0178", start + i * MIN, 2.0) for i in range(3)))
    put(stack["other_dlq"], rule_message("MH-0178", start, 2.0))

    report = tool.redrive(STACK, dry_run=True, wait_s=0)

    (entry,) = [q for q in report.queues if q.queue.startswith(f"{STACK}-IngestBufferDlq")]
    assert entry.found == 3 and entry.moved == 0 and entry.target.startswith(f"{STACK}-IngestBufferQueue")
    assert depth(stack["buffer_dlq"]) == 3 and depth(stack["buffer"]) == 0
    assert not any(q.queue.startswith(f"{STACK}-dev-") for q in report.queues)


def test_given_messages_in_a_dlq_when_redriven_then_all_move_to_the_source_with_their_attributes(
    stack: dict[str, str],
) -> None:
    start = int(time.time() * 1000) - 3600_000
    bodies = [rule_message("MH-0178", start + i * MIN, 2.0) for i in range(12)]
    put(stack["buffer_dlq"], *bodies, attributes={"origin": {"DataType": "String", "StringValue": "iot"}})
    put(stack["other_dlq"], bodies[0])

    report = tool.redrive(STACK, wait_s=0)

    assert (report.found, report.moved, report.failed) == (12, 12, 0)
    moved = drain(stack["buffer"])
    assert sorted(m["Body"] for m in moved) == sorted(bodies)
    assert all(m["MessageAttributes"]["origin"]["StringValue"] == "iot" for m in moved)
    assert depth(stack["buffer_dlq"]) == 0
    assert depth(stack["other_dlq"]) == 1  # another stack's queue is never touched
    assert tool.redrive(STACK, wait_s=0).moved == 0


def test_given_an_alarm_reading_dropped_in_the_dlq_when_redriven_then_it_is_processed_once(
    stack: dict[str, str], resources: LocalResources
) -> None:
    start = int(time.time() * 1000) - 3600_000
    alarm = rule_message("MH-0178", start, 25.3)
    put(stack["buffer_dlq"], alarm)

    assert tool.main(["--queue", "BufferDlq"]) == 0
    for _ in range(2):  # the event source delivers it; a duplicate delivery changes nothing
        bodies = [m["Body"] for m in drain(stack["buffer"])] or [alarm]
        telemetry.handler(sqs_event(bodies), FakeContext())
    assert tool.redrive(STACK, queues=["BufferDlq"], wait_s=0).moved == 0

    (order,) = orders(resources.table_name)
    assert order["device_id"] == "MH-0178"


def test_given_rejects_of_two_reasons_when_redriving_one_reason_then_only_those_move(
    stack: dict[str, str],
) -> None:
    original = rule_message("MH-0999", int(time.time() * 1000), 3.0)
    put(stack["rejects"], json.dumps({"reason": "unknown_device", "body": original, "message_id": "m1"}))
    put(stack["rejects"], json.dumps({"reason": "malformed", "body": "{not json", "message_id": "m2"}))

    default = tool.redrive(STACK, wait_s=0)
    assert not any(q.queue.startswith(f"{STACK}-IngestRejects") for q in default.queues)  # only when named

    report = tool.redrive(STACK, queues=["rejects"], reason="unknown_device", wait_s=0)

    (entry,) = report.queues
    assert (entry.found, entry.moved, entry.skipped, entry.left) == (2, 1, 1, 1)
    assert [m["Body"] for m in drain(stack["buffer"])] == [original]


def test_given_skipped_messages_that_reappear_when_redriving_then_the_run_goes_on_to_the_unseen_ones(
    stack: dict[str, str],
) -> None:
    """Given ten rejects of another reason ahead of five wanted ones, and a run that outlasts the
    visibility hold (simulated with a hold of 0 s: skipped messages are visible again at once), when
    redriven, then a receive of only already-seen messages does not end the run: all five wanted
    ones move, the ten others are counted once and stay."""
    original = rule_message("MH-0999", int(time.time() * 1000), 3.0)
    put(stack["rejects"], *(json.dumps({"reason": "malformed", "body": f"{{bad {n}"}) for n in range(10)))
    put(stack["rejects"], *(json.dumps({"reason": "unknown_device", "body": original}) for _ in range(5)))

    entry = tool.move_messages(
        stack["rejects"],
        stack["buffer"],
        tool.QueueReport(queue="rejects", target="buffer"),
        transform=tool._rejected_original("unknown_device"),
        wait_s=0,
        visibility_timeout_s=0,
    )

    assert (entry.found, entry.moved, entry.skipped, entry.failed, entry.left) == (15, 5, 10, 0, 10)
    assert [m["Body"] for m in drain(stack["buffer"])] == [original] * 5
    assert depth(stack["rejects"]) == 10  # released at the end: visible for the next run


def test_given_rejects_whose_body_was_truncated_when_redriven_then_they_are_skipped_and_counted(
    stack: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Given reject copies whose body was cut at 200,000 characters (flagged by the rejects sink, or
    an older copy of exactly that length), when redriven, then they are not resent as broken
    messages: skipped, counted under "truncated body", and left in the queue."""
    from smartzone.domain.readings import Rejection, RejectReason
    from smartzone.repositories.rejects import MAX_BODY_CHARS, RejectedMessage, RejectSink

    original = rule_message("MH-0999", int(time.time() * 1000), 3.0)
    long_body = '{"device_id": "MH-0999", "pad": "' + "x" * MAX_BODY_CHARS + '"}'
    rejection = Rejection(RejectReason.UNKNOWN_DEVICE, "not registered", "MH-0999")
    flagged = RejectedMessage("m-long", long_body, rejection, "2026-11-29T10:00:00Z")
    assert json.loads(flagged.to_json())["truncated"] is True
    assert "truncated" not in json.loads(RejectedMessage("m-ok", original, rejection, "x").to_json())
    assert (
        RejectSink(stack["rejects"]).send([flagged, RejectedMessage("m-ok", original, rejection, "x")])
        == set()
    )
    put(stack["rejects"], json.dumps({"reason": "unknown_device", "body": long_body[:MAX_BODY_CHARS]}))

    assert tool.main(["--queue", "rejects", "--reason", "unknown_device"]) == 0

    out = capsys.readouterr().out
    assert "found 3, moved 1, failed 0, skipped 2 (truncated body: 2), left 2" in out
    assert [m["Body"] for m in drain(stack["buffer"])] == [original]
    assert depth(stack["rejects"]) == 2


def test_given_iot_rule_errors_when_redriven_then_the_rule_sql_output_goes_to_the_buffer(
    stack: dict[str, str],
) -> None:
    client("iot").create_topic_rule(
        ruleName="SmartZoneTelemetryRule",
        topicRulePayload={"sql": TELEMETRY_SQL, "actions": [], "awsIotSqlVersion": "2016-03-23"},
    )
    payload = json.dumps({"ts": "2026-11-29T10:00:00+08:00", "tilt_deg": 21.5, "seq": 7})
    error = {
        "ruleName": "SmartZoneTelemetryRule",
        "topic": "smartzone/manhole/MH-0178/telemetry",
        "timestamp": 1764381600123,
        "base64OriginalPayload": base64.b64encode(payload.encode()).decode(),
        "failures": [{"failedAction": "SqsAction", "errorMessage": "throttled"}],
    }
    put(stack["rule_errors"], json.dumps(error), json.dumps({"topic": "x", "failures": []}))

    report = tool.redrive(STACK, queues=["rule-errors"], wait_s=0)

    (entry,) = report.queues
    assert (entry.moved, entry.skipped, entry.left) == (1, 1, 1)  # no payload: left for a look
    (message,) = drain(stack["buffer"])
    assert json.loads(message["Body"]) == {
        "ts": "2026-11-29T10:00:00+08:00",
        "tilt_deg": 21.5,
        "seq": 7,
        "device_id": "MH-0178",
        "received_at": 1764381600123,
    }


def test_given_a_parked_notification_when_redriven_then_it_is_published_and_removed(
    stack: dict[str, str],
) -> None:
    event = derive_event(OrderChange(ChangeKind.INSERT, None, tilt_order()))
    assert event is not None
    Notifier(stack["topic"], stack["retry"]).park(event, "SNS unavailable")

    report = tool.redrive(STACK, queues=["publish-retry"], wait_s=0)

    (entry,) = report.queues
    assert (entry.found, entry.moved, entry.failed) == (1, 1, 0)
    assert depth(stack["retry"]) == 0


def test_given_the_cli_when_listing_then_it_shows_the_stacks_queues_and_kinds(
    stack: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert tool.main(["--list"]) == 0
    out = capsys.readouterr().out
    assert "IngestBufferDlq" in out and "dead-letter" in out and "telemetry-buffer" in out
    assert f"{STACK}-dev-" not in out


def test_given_the_local_platform_session_when_redriving_with_local_then_it_uses_its_endpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The platform's moto server, found through ``.local/session.json``'s ``aws_endpoint_url``."""
    from moto.server import ThreadedMotoServer

    from smartzone.repositories.clients import reset_clients

    for key in ("AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_PROFILE"):
        # setenv records the original state (also "unset"), so teardown restores it.
        monkeypatch.setenv(key, os.environ.get(key, "unset"))
        if os.environ[key] == "unset":
            monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", os.environ.get("AWS_SECRET_ACCESS_KEY", "x"))
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        session = tmp_path / "session.json"
        session.write_text(json.dumps({"aws_endpoint_url": f"http://{host}:{port}"}), encoding="utf-8")
        use_local_platform(session)
        _, dlq_arn = make_queue(f"{STACK}-IngestBufferDlq1A2B3C4D")
        buffer, _ = make_queue(f"{STACK}-IngestBufferQueue5E6F7A8B", "telemetry-buffer", dlq_arn)
        dlq = client("sqs").get_queue_url(QueueName=f"{STACK}-IngestBufferDlq1A2B3C4D")["QueueUrl"]
        put(dlq, "one", "two")

        assert tool.main(["--local", str(session), "--queue", "Buffer-Dlq"]) == 0

        assert "moved 2" in capsys.readouterr().out
        assert sorted(m["Body"] for m in drain(buffer)) == ["one", "two"]
    finally:
        server.stop()
        reset_clients()
