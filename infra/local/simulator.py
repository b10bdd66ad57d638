"""The device simulator: telemetry of the district's manhole covers over real MQTT.

    sim = DeviceSimulator(device_ids, SimulatorConfig(rate=10, seed=178), MqttPublisher(port=1883))
    sim.start()            # a background thread, paced in real time
    ...
    sim.stop(); print(sim.counts())

Each cover reports in turn (a seeded shuffle of the fleet, round robin), ``rate`` readings per
second overall: the default 10/s gives each of 600 covers one reading a minute. Topic and payload
follow DESIGN.md (``smartzone/manhole/{id}/telemetry``, QoS 1,
``{"ts", "tilt_deg", "battery_pct", "seq"}``); half the covers send ISO-8601 times with the
+08:00 offset, the other half epoch milliseconds, so both wire forms stay exercised.

What happens, each with a configurable probability per reading, all drawn from one seeded
random generator:

- **tilt** (``tilt_probability``): the cover tilts for ``tilt_duration_s`` (a few minutes), then
  lies level again. Most tilts go beyond the 20° alarm threshold (``tilt_alarm_share``); the
  others stay between 12° and 19° (no alarm). Level readings after a tilt stay under 3°, so the
  alarm clears once the clear window has passed on the readings' own times.
- **low battery** (``low_battery_probability``): the battery reads 5–18 % for
  ``low_battery_duration_s``, then the battery is "replaced" (100 %).
- **silent** (``silent_probability``): the cover stops reporting for ``silent_duration_s``
  (long enough for the sweeper to call it offline), then reports again.
- **duplicate** (``duplicate_probability``): the same message is published twice.
- **malformed** (``malformed_probability``): an extra, broken message is sent on the cover's topic
  (not JSON, no ``tilt_deg``, an impossible tilt, an unreadable time, a negative battery), as a
  faulty device would; the good reading is sent as well.

Determinism: the message sequence is a pure function of the device list, the configuration
(seed included) and the start time: reading ``i`` carries the time ``start + i / rate`` and every
decision is made on that clock, never on the wall clock. :meth:`DeviceSimulator.messages` gives the
sequence without publishing (tests, previews); the run loop only paces it (never ahead of the wall
clock, so no reading is "from the future").

Counts by kind (:meth:`DeviceSimulator.counts`): ``normal``, ``tilt`` (readings during a tilt),
``low_battery``, ``duplicate``, ``malformed``, ``silent`` (readings a silent cover skipped); and
episodes started: ``tilt_episodes``, ``low_battery_episodes``, ``silent_episodes``;
``published`` counts every MQTT message sent, ``publish_errors`` the failed ones.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from smartzone.domain.timeutil import SHANGHAI

logger = logging.getLogger(__name__)

TOPIC_TEMPLATE = "smartzone/manhole/{device_id}/telemetry"
DEFAULT_SEED_FILE = Path(__file__).resolve().parents[2] / "events" / "seed" / "district.json"

KINDS = ("normal", "tilt", "low_battery", "duplicate", "malformed", "silent")
EPISODES = ("tilt_episodes", "low_battery_episodes", "silent_episodes")
MALFORMED_VARIANTS = ("not_json", "missing_tilt", "impossible_tilt", "bad_ts", "negative_battery")


@dataclass(frozen=True)
class SimulatorConfig:
    """How the fleet behaves. Probabilities are per reading; durations in (simulated) seconds."""

    rate: float = 10.0
    """Readings per second, the whole fleet together (600 covers every 60 s)."""
    seed: int = 178
    tilt_probability: float = 0.0005
    tilt_alarm_share: float = 0.8
    tilt_duration_s: tuple[float, float] = (120.0, 480.0)
    low_battery_probability: float = 0.0002
    low_battery_duration_s: tuple[float, float] = (1800.0, 7200.0)
    silent_probability: float = 0.0001
    silent_duration_s: tuple[float, float] = (3600.0, 3 * 3600.0)
    duplicate_probability: float = 0.002
    malformed_probability: float = 0.001
    qos: int = 1

    def __post_init__(self) -> None:
        if not self.rate > 0:
            raise ValueError("rate must be positive (readings per second)")
        for name in (
            "tilt_probability",
            "tilt_alarm_share",
            "low_battery_probability",
            "silent_probability",
            "duplicate_probability",
            "malformed_probability",
        ):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1 (got {value})")
        for name in ("tilt_duration_s", "low_battery_duration_s", "silent_duration_s"):
            low, high = getattr(self, name)
            if not 0 <= low <= high:
                raise ValueError(f"{name} must be (low, high) with 0 <= low <= high")


@dataclass(frozen=True)
class SimMessage:
    """One MQTT message of the sequence."""

    index: int
    """The reading it belongs to (duplicates and malformed extras share it)."""
    at: float
    """Simulated epoch seconds: when it is due."""
    topic: str
    payload: bytes
    kind: str


@dataclass
class _Cover:
    device_id: str
    epoch_ms_times: bool
    battery: float
    seq: int = 0
    tilt_until: float = 0.0
    tilt_deg: float = 0.0
    low_battery_until: float = 0.0
    silent_until: float = 0.0


class Publisher(Protocol):
    def publish(self, topic: str, payload: bytes, qos: int) -> None: ...

    def close(self) -> None: ...


class DeviceSimulator:
    """Generates and publishes the fleet's telemetry (see the module doc)."""

    def __init__(
        self,
        device_ids: Sequence[str],
        config: SimulatorConfig | None = None,
        publisher: Publisher | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not device_ids:
            raise ValueError("the simulator needs at least one device id")
        self.device_ids = list(device_ids)
        self.config = config or SimulatorConfig()
        self.publisher = publisher
        self.clock = clock
        self._counts: Counter[str] = Counter(
            {kind: 0 for kind in (*KINDS, *EPISODES, "published", "publish_errors")}
        )
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.started_at: float | None = None

    # -- the sequence ----------------------------------------------------------------------------
    def messages(
        self, start: float, count: int | None = None, tally: Callable[[str], None] | None = None
    ) -> Iterator[SimMessage]:
        """The deterministic message sequence from simulated time ``start`` (epoch seconds).

        ``count`` limits the number of readings (not messages); ``None`` runs forever. ``tally``
        is called with each episode started and each reading a silent cover skips (``silent``);
        the run loop counts the messages' kinds as it publishes them.
        """
        cfg = self.config
        tally = tally or (lambda _kind: None)
        rng = random.Random(cfg.seed)
        order = list(self.device_ids)
        rng.shuffle(order)
        covers = {
            device_id: _Cover(device_id, epoch_ms_times=n % 2 == 1, battery=rng.uniform(60.0, 100.0))
            for n, device_id in enumerate(order)
        }
        index = 0
        while count is None or index < count:
            at = start + index / cfg.rate
            cover = covers[order[index % len(order)]]
            yield from self._reading(rng, cover, index, at, tally)
            index += 1

    def _reading(
        self, rng: random.Random, cover: _Cover, index: int, at: float, tally: Callable[[str], None]
    ) -> Iterator[SimMessage]:
        cfg = self.config
        topic = TOPIC_TEMPLATE.format(device_id=cover.device_id)
        # Draw every decision each time, in a fixed order, so one outcome never shifts the others.
        draws = [rng.random() for _ in range(5)]
        variant = rng.choice(MALFORMED_VARIANTS)
        noise = rng.random()
        if at < cover.silent_until:
            tally("silent")
            return
        if draws[0] < cfg.silent_probability:
            cover.silent_until = at + rng.uniform(*cfg.silent_duration_s)
            tally("silent_episodes")
            tally("silent")
            return
        if at >= cover.tilt_until and draws[1] < cfg.tilt_probability:
            cover.tilt_until = at + rng.uniform(*cfg.tilt_duration_s)
            alarm = rng.random() < cfg.tilt_alarm_share
            cover.tilt_deg = rng.uniform(21.0, 40.0) if alarm else rng.uniform(12.0, 19.0)
            tally("tilt_episodes")
        if at >= cover.low_battery_until and draws[2] < cfg.low_battery_probability:
            cover.low_battery_until = at + rng.uniform(*cfg.low_battery_duration_s)
            cover.battery = rng.uniform(5.0, 18.0)
            tally("low_battery_episodes")
        elif cover.low_battery_until and at >= cover.low_battery_until:
            cover.low_battery_until = 0.0
            cover.battery = 100.0  # replaced

        tilted = at < cover.tilt_until
        tilt = cover.tilt_deg + (noise - 0.5) if tilted else round(noise * 3.0, 2)
        cover.battery = max(cover.battery - 0.001, 0.0)
        cover.seq += 1
        ts: str | int = (
            int(at * 1000)
            if cover.epoch_ms_times
            else datetime.fromtimestamp(at, tz=SHANGHAI).isoformat(timespec="milliseconds")
        )
        body = {
            "ts": ts,
            "tilt_deg": round(tilt, 2),
            "battery_pct": round(cover.battery, 1),
            "seq": cover.seq,
        }
        payload = json.dumps(body, separators=(",", ":")).encode()
        kind = "tilt" if tilted else "low_battery" if at < cover.low_battery_until else "normal"
        yield SimMessage(index, at, topic, payload, kind)
        if draws[3] < cfg.duplicate_probability:
            yield SimMessage(index, at, topic, payload, "duplicate")
        if draws[4] < cfg.malformed_probability:
            yield SimMessage(index, at, topic, malformed_payload(variant, body), "malformed")

    # -- running ---------------------------------------------------------------------------------
    def run(self, readings: int | None = None, duration_s: float | None = None) -> dict[str, int]:
        """Publish in real time until stopped, ``readings`` readings or ``duration_s`` seconds."""
        if self.publisher is None:
            raise RuntimeError("the simulator has no publisher")
        start = self.clock()
        self.started_at = start
        deadline = None if duration_s is None else start + duration_s
        for message in self.messages(start, readings, self._count):
            if self._stop.is_set() or (deadline is not None and message.at >= deadline):
                break
            delay = message.at - self.clock()
            if delay > 0 and self._stop.wait(delay):
                break
            try:
                self.publisher.publish(message.topic, message.payload, self.config.qos)
                self._count("published")
                self._count(message.kind)
            except Exception as error:
                self._count("publish_errors")
                logger.warning("simulator: publishing to %s failed: %s", message.topic, error)
        return self.counts()

    def start(self, readings: int | None = None, duration_s: float | None = None) -> DeviceSimulator:
        """Run in a background thread (see :meth:`run`)."""
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError("the simulator is already running")
        self._stop.clear()
        self._thread = threading.Thread(
            target=self.run, args=(readings, duration_s), name="device-simulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> dict[str, int]:
        """Stop publishing (the message in flight completes); return the counts."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        return self.counts()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def _count(self, kind: str) -> None:
        with self._lock:
            self._counts[kind] += 1


def malformed_payload(variant: str, body: dict[str, Any]) -> bytes:
    """A broken version of a good reading, as a faulty device might send."""
    broken = dict(body)
    if variant == "not_json":
        return b'{"ts": ' + str(body["ts"]).encode() + b', "tilt_deg": '
    if variant == "missing_tilt":
        broken.pop("tilt_deg")
    elif variant == "impossible_tilt":
        broken["tilt_deg"] = 999.0
    elif variant == "bad_ts":
        broken["ts"] = "yesterday at noon"
    elif variant == "negative_battery":
        broken["battery_pct"] = -5
    else:  # pragma: no cover - MALFORMED_VARIANTS lists them all
        raise ValueError(f"unknown malformed variant {variant!r}")
    return json.dumps(broken, separators=(",", ":")).encode()


class MqttPublisher:
    """Publishes through one paho connection (the simulator acts as a gateway for the fleet)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 1883,
        client_id: str = "smartzone-simulator",
        *,
        timeout: float = 10.0,
        max_inflight: int = 100,
    ) -> None:
        import paho.mqtt.client as mqtt

        self.host, self.port = host, port
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        self._client.max_inflight_messages_set(max_inflight)
        connected = threading.Event()
        self._client.on_connect = lambda *_args: connected.set()
        try:
            self._client.connect(host, port, keepalive=60)
        except OSError as error:
            raise ConnectionError(
                f"simulator: cannot connect to the MQTT broker at {host}:{port}: {error}"
            ) from None
        self._client.loop_start()
        if not connected.wait(timeout):
            self._client.loop_stop()
            raise ConnectionError(f"simulator: no CONNACK from {host}:{port} within {timeout:.0f} s")
        self._last: Any = None

    def publish(self, topic: str, payload: bytes, qos: int) -> None:
        info = self._client.publish(topic, payload, qos=qos)
        if info.rc != 0:
            raise ConnectionError(f"paho error {info.rc}")
        self._last = info

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until the last message published was acknowledged."""
        if self._last is not None:
            self._last.wait_for_publish(timeout)

    def close(self) -> None:
        self.flush()
        self._client.disconnect()
        self._client.loop_stop()


def district_device_ids(path: str | Path = DEFAULT_SEED_FILE) -> list[str]:
    """The manhole covers of a seed file (validated by :func:`tools.seed.read_district`)."""
    from tools.seed import read_district

    return [device.device_id for device in read_district(path).devices]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m infra.local.simulator",
        description="Simulate the district's manhole covers over MQTT.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1883)
    parser.add_argument("--seed-file", type=Path, default=DEFAULT_SEED_FILE)
    parser.add_argument(
        "--rate", type=float, default=SimulatorConfig.rate, help="readings per second overall"
    )
    parser.add_argument("--seed", type=int, default=SimulatorConfig.seed)
    parser.add_argument("--duration", type=float, help="seconds to run (default: until Ctrl-C)")
    for name in (
        "tilt_probability",
        "low_battery_probability",
        "silent_probability",
        "duplicate_probability",
        "malformed_probability",
    ):
        parser.add_argument(f"--{name.replace('_', '-')}", type=float, default=getattr(SimulatorConfig, name))
    args = parser.parse_args(argv)
    config = SimulatorConfig(
        rate=args.rate,
        seed=args.seed,
        tilt_probability=args.tilt_probability,
        low_battery_probability=args.low_battery_probability,
        silent_probability=args.silent_probability,
        duplicate_probability=args.duplicate_probability,
        malformed_probability=args.malformed_probability,
    )
    try:
        publisher = MqttPublisher(args.host, args.port)
    except ConnectionError as error:
        print(error, file=sys.stderr)
        return 1
    devices = district_device_ids(args.seed_file)
    sim = DeviceSimulator(devices, config, publisher)
    print(
        f"simulating {len(devices)} covers at {config.rate:g} readings/s to {args.host}:{args.port} (Ctrl-C stops)"
    )
    try:
        counts = sim.run(duration_s=args.duration)
    except KeyboardInterrupt:
        counts = sim.stop()
    finally:
        publisher.close()
    print("sent: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
