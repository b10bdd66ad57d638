"""The local MQTT broker: amqtt embedded on 127.0.0.1, run in its own thread and asyncio loop.

    broker = LocalBroker(port=1883)          # 0 picks a free port
    broker.on_message(lambda topic, payload: ...)   # every message published on smartzone/#
    broker.start()                           # returns once the listener is bound
    print(broker.host, broker.port)
    ...
    broker.stop()

Devices, the simulator and :mod:`tools.device_client` publish real MQTT 3.1.1 to it (anonymous,
no TLS: it listens on the loopback interface only). The platform registers an ``on_message``
hook to apply the IoT rule to each message, as IoT Core's rules engine sees every publish
without being a subscriber: the hook is a broker plugin, so it sees every accepted publish on
``smartzone/#`` whether or not any client subscribes.

Hooks run on one dispatcher thread, in the order the broker accepted the messages, never on the
broker's event loop: a slow hook (a moto call, a Lambda invocation) delays other hooks, not the
broker. A hook that raises is logged and the next message is delivered as usual.

A busy port raises :class:`BrokerPortInUse` with what to do, e.g. ``port 1883 is in use: stop the
other broker or run with MQTT_PORT=…``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import queue
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Self

from amqtt.broker import Broker
from amqtt.plugins.base import BasePlugin

LOCAL_HOST = "127.0.0.1"
DEFAULT_PORT = 1883
TOPIC_PREFIX = "smartzone/"
"""The hook sees topics under ``smartzone/#`` (telemetry and detections)."""
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0

MessageHook = Callable[[str, bytes], None]
logger = logging.getLogger(__name__)


class BrokerError(RuntimeError):
    """The broker could not start (the message says why and what to do)."""


class BrokerPortInUse(BrokerError):
    """Another process listens on the broker's port."""

    def __init__(self, host: str, port: int, env_var: str = "MQTT_PORT") -> None:
        self.host = host
        self.port = port
        super().__init__(f"port {port} is in use: stop the other broker or run with {env_var}=<another port>")


class _TapPlugin(BasePlugin[Any]):
    """amqtt plugin that forwards every broadcast publish to the owning :class:`LocalBroker`."""

    sink: Callable[[str, bytes], None] | None = None

    async def on_broker_message_broadcast(self, *, client_id: str, message: Any) -> None:
        sink = self.sink
        if sink is not None and message is not None:
            sink(str(message.topic), bytes(message.data or b""))


@dataclass
class BrokerStats:
    """What the broker's hook saw."""

    received: int = 0
    """Messages under ``smartzone/`` handed to the hooks."""
    hook_errors: int = 0


_STOP = object()


class LocalBroker:
    """An amqtt broker on ``host:port`` with an internal ``smartzone/#`` hook."""

    def __init__(
        self,
        port: int = DEFAULT_PORT,
        host: str = LOCAL_HOST,
        *,
        port_env_var: str = "MQTT_PORT",
        topic_prefix: str = TOPIC_PREFIX,
    ) -> None:
        self.host = host
        self.requested_port = port
        self.port = port
        self.port_env_var = port_env_var
        self.topic_prefix = topic_prefix
        self.stats = BrokerStats()
        self._hooks: list[MessageHook] = []
        self._hooks_lock = threading.Lock()
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._broker: Broker | None = None
        self._thread: threading.Thread | None = None
        self._dispatcher: threading.Thread | None = None
        self._started = threading.Event()
        self._start_error: BaseException | None = None
        self._stop_requested: asyncio.Event | None = None

    # -- public interface ------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._started.is_set() and self._thread is not None and self._thread.is_alive()

    def on_message(self, callback: MessageHook) -> MessageHook:
        """Register ``callback(topic, payload)`` for every message published under ``smartzone/``.

        Usable as a decorator; returns the callback. Hooks may be added before or after start.
        """
        with self._hooks_lock:
            self._hooks.append(callback)
        return callback

    def start(self, timeout: float = START_TIMEOUT_S) -> Self:
        """Start the broker thread; return once it listens (``self.port`` is the bound port)."""
        if self._thread is not None:
            raise BrokerError("the broker was already started")
        self._check_port_free()
        self._dispatcher = threading.Thread(target=self._dispatch, name="mqtt-hooks", daemon=True)
        self._dispatcher.start()
        self._thread = threading.Thread(target=self._run, name="mqtt-broker", daemon=True)
        self._thread.start()
        if not self._started.wait(timeout):
            self.stop()
            raise BrokerError(f"the MQTT broker did not start within {timeout:.0f} s")
        if self._start_error is not None:
            error = self._start_error
            self._join(timeout)
            self._queue.put(_STOP)
            raise error
        logger.info("MQTT broker listening on %s", self.url)
        return self

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Stop the broker and the hook dispatcher (pending hook calls are delivered first)."""
        loop, stop = self._loop, self._stop_requested
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stop.set)
        self._join(timeout)
        if self._dispatcher is not None:
            self._queue.put(_STOP)
            self._dispatcher.join(timeout)
            self._dispatcher = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- internals -------------------------------------------------------------------------------
    def _check_port_free(self) -> None:
        """Fail early, with a message saying what to do, when something else holds the port."""
        if self.requested_port == 0:
            return
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((self.host, self.requested_port))
            except OSError as error:
                if error.errno == errno.EADDRINUSE:
                    raise BrokerPortInUse(self.host, self.requested_port, self.port_env_var) from None
                raise BrokerError(f"cannot listen on {self.host}:{self.requested_port}: {error}") from None

    def _join(self, timeout: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def _config(self) -> dict[str, Any]:
        return {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.requested_port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
                f"{__name__}._TapPlugin": {},
            },
        }

    def _publish_seen(self, topic: str, payload: bytes) -> None:
        if topic.startswith(self.topic_prefix):
            self._queue.put((topic, payload))

    def _dispatch(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            topic, payload = item
            self.stats.received += 1
            with self._hooks_lock:
                hooks = list(self._hooks)
            for hook in hooks:
                try:
                    hook(topic, payload)
                except Exception:
                    self.stats.hook_errors += 1
                    logger.exception("MQTT hook failed for a message on %s", topic)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as error:  # reported to start(); never lost
            if not self._started.is_set():
                self._start_error = error
                self._started.set()
            else:
                logger.exception("MQTT broker stopped with an error")
        finally:
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _serve(self) -> None:
        self._stop_requested = asyncio.Event()
        broker = Broker(self._config())
        tap = broker.plugins_manager.get_plugin(_TapPlugin.__name__)
        if not isinstance(tap, _TapPlugin):  # pragma: no cover - amqtt changed its plugin loading
            raise BrokerError("the broker's message hook plugin did not load")
        tap.sink = self._publish_seen
        try:
            await broker.start()
        except Exception as error:
            if _is_addr_in_use(error):
                raise BrokerPortInUse(self.host, self.requested_port, self.port_env_var) from None
            raise BrokerError(f"the MQTT broker could not start: {error}") from error
        self._broker = broker
        self.port = _bound_port(broker) or self.requested_port
        self._started.set()
        try:
            await self._stop_requested.wait()
        finally:
            with contextlib.suppress(Exception):
                await broker.shutdown()


def _is_addr_in_use(error: BaseException | None) -> bool:
    seen = 0
    while error is not None and seen < 10:
        if isinstance(error, OSError) and error.errno == errno.EADDRINUSE:
            return True
        error = error.__cause__ or error.__context__
        seen += 1
    return False


def _bound_port(broker: Broker) -> int | None:
    for server in broker._servers.values():  # amqtt keeps its listeners there
        instance = getattr(server, "instance", None)
        for sock in getattr(instance, "sockets", None) or ():
            return int(sock.getsockname()[1])
    return None
