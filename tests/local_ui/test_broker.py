"""The embedded MQTT broker: real MQTT in, every smartzone/# message to the platform's hook."""

from __future__ import annotations

import json
import socket
import time

import pytest

from infra.local.broker import BrokerPortInUse, LocalBroker

from .conftest import Inbox


def test_a_published_message_reaches_the_hook(broker: LocalBroker, inbox: Inbox, mqtt_client) -> None:
    assert broker.host == "127.0.0.1" and broker.port > 0
    client = mqtt_client("MH-0178")
    payload = json.dumps({"ts": "2026-11-29T14:05:00+08:00", "tilt_deg": 25.3}).encode()
    client.publish("smartzone/manhole/MH-0178/telemetry", payload, qos=1).wait_for_publish(5)

    assert inbox.wait_for(1) == [("smartzone/manhole/MH-0178/telemetry", payload)]


def test_only_smartzone_topics_reach_the_hook(broker: LocalBroker, inbox: Inbox, mqtt_client) -> None:
    client = mqtt_client("other")
    client.publish("elsewhere/x", b"1", qos=1).wait_for_publish(5)
    client.publish("smartzone/camera/CAM-01/detections", b"2", qos=1).wait_for_publish(5)

    assert inbox.wait_for(1) == [("smartzone/camera/CAM-01/detections", b"2")]
    time.sleep(0.2)
    assert len(inbox.messages) == 1


def test_subscribers_still_get_messages(broker: LocalBroker, inbox: Inbox, mqtt_client) -> None:
    received: list[bytes] = []
    listener = mqtt_client("listener")
    listener.on_message = lambda _c, _u, msg: received.append(msg.payload)
    listener.subscribe("smartzone/#", qos=1)
    time.sleep(0.3)
    mqtt_client("MH-0001").publish("smartzone/manhole/MH-0001/telemetry", b"{}", qos=1).wait_for_publish(5)

    inbox.wait_for(1)
    deadline = time.monotonic() + 5
    while not received and time.monotonic() < deadline:
        time.sleep(0.05)
    assert received == [b"{}"]


def test_a_failing_hook_does_not_stop_the_next_message(broker: LocalBroker, mqtt_client) -> None:
    def explode(topic: str, payload: bytes) -> None:
        if payload == b"bad":
            raise RuntimeError("boom")

    broker.on_message(explode)
    box = Inbox()
    broker.on_message(box)
    client = mqtt_client("MH-0002")
    for body in (b"bad", b"good"):
        client.publish("smartzone/manhole/MH-0002/telemetry", body, qos=1).wait_for_publish(5)

    assert [p for _, p in box.wait_for(2)] == [b"bad", b"good"]
    assert broker.stats.hook_errors == 1


def test_1000_qos1_messages_arrive_in_order(broker: LocalBroker, inbox: Inbox, mqtt_client) -> None:
    client = mqtt_client("bulk")
    started = time.perf_counter()
    infos = [
        client.publish(
            f"smartzone/manhole/MH-{i % 600 + 1:04d}/telemetry", json.dumps({"seq": i}).encode(), qos=1
        )
        for i in range(1000)
    ]
    for info in infos:
        info.wait_for_publish(20)
    acked = time.perf_counter() - started
    messages = inbox.wait_for(1000, timeout=20)
    delivered = time.perf_counter() - started

    print(
        f"\n1000 QoS-1 messages: all PUBACKed in {acked:.2f} s, all at the hook in {delivered:.2f} s "
        f"({1000 / delivered:.0f} msg/s)"
    )
    assert len(messages) == 1000
    assert [json.loads(p)["seq"] for _, p in messages] == list(range(1000))


def test_a_busy_port_says_what_to_do() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(BrokerPortInUse) as caught:
            LocalBroker(port=port).start()
    assert (
        str(caught.value)
        == f"port {port} is in use: stop the other broker or run with MQTT_PORT=<another port>"
    )


def test_stop_frees_the_port_and_start_twice_is_refused() -> None:
    broker = LocalBroker(port=0).start()
    port = broker.port
    with pytest.raises(Exception, match="already started"):
        broker.start()
    broker.stop()
    assert not broker.running
    with LocalBroker(port=port) as again:  # the port is free again
        assert again.port == port
