"""Fixtures of the local platform's UI-side components: an embedded broker and an MQTT client."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import paho.mqtt.client as mqtt
import pytest

from infra.local.broker import LocalBroker


class Inbox:
    """What the broker's hook received, in order, with a wait helper."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self._cond = threading.Condition()

    def __call__(self, topic: str, payload: bytes) -> None:
        with self._cond:
            self.messages.append((topic, payload))
            self._cond.notify_all()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[tuple[str, bytes]]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.messages) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            return list(self.messages)


@pytest.fixture
def broker() -> Iterator[LocalBroker]:
    with LocalBroker(port=0) as running:
        yield running


@pytest.fixture
def inbox(broker: LocalBroker) -> Inbox:
    box = Inbox()
    broker.on_message(box)
    return box


@pytest.fixture
def mqtt_client(broker: LocalBroker) -> Iterator[Callable[[str], mqtt.Client]]:
    """A factory of connected paho clients (disconnected at the end)."""
    clients: list[mqtt.Client] = []

    def connect(client_id: str) -> mqtt.Client:
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        client.max_inflight_messages_set(100)
        connected = threading.Event()
        client.on_connect = lambda *_args: connected.set()
        client.connect(broker.host, broker.port)
        client.loop_start()
        assert connected.wait(5), "no CONNACK from the embedded broker"
        clients.append(client)
        return client

    yield connect
    for client in clients:
        client.disconnect()
        client.loop_stop()
