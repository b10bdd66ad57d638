"""Publish ONE manhole-cover reading over MQTT, as a device would.

To the local platform's broker (``make run`` prints its port; default 127.0.0.1:1883)::

    python -m tools.device_client MH-0178 --tilt 25.3
    python -m tools.device_client MH-0178 --tilt 3.1 --battery 80 --ts 2026-11-29T14:05:00+08:00
    python -m tools.device_client MH-0178 --tilt 25.3 --port 18830

To AWS IoT Core (mutual TLS on 8883, client id = the device id), with the files
``python -m tools.provision_device MH-0178`` wrote to ``.local/devices/MH-0178`` and Amazon's root CA
(https://www.amazontrust.com/repository/AmazonRootCA1.pem)::

    python -m tools.device_client MH-0178 --tilt 25.3 \\
        --endpoint xxxxxxxx-ats.iot.cn-north-1.amazonaws.com.cn \\
        --cert .local/devices/MH-0178/certificate.pem.crt \\
        --key .local/devices/MH-0178/private.pem.key --ca AmazonRootCA1.pem

It publishes to ``smartzone/manhole/<device id>/telemetry`` with QoS 1 the JSON
``{"ts": ..., "tilt_deg": ..., "battery_pct"?: ..., "seq"?: ...}`` (DESIGN.md, "MQTT telemetry"),
waits for the broker's PUBACK, prints the topic and payload, and exits 0. ``--ts`` is sent as
given (ISO-8601, or digits for epoch milliseconds); without it, the current time in Asia/Shanghai
with its offset. Exit status 1: the broker could not be reached or did not acknowledge; 2: bad
arguments.
"""

from __future__ import annotations

import argparse
import json
import ssl
import sys
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make the repository and the shared layer importable
    _ROOT = Path(__file__).resolve().parent.parent
    sys.path[:0] = [str(_ROOT), str(_ROOT / "layers" / "shared" / "python")]

import paho.mqtt.client as mqtt

from smartzone.domain.registry import DEVICE_ID_RE
from smartzone.domain.timeutil import SHANGHAI, TimestampError, parse_ts_ms

LOCAL_HOST = "127.0.0.1"
LOCAL_PORT = 1883
AWS_IOT_PORT = 8883
QOS = 1
DEFAULT_TIMEOUT_S = 10.0


class DeviceClientError(Exception):
    """A reading could not be published; the message says why."""


def telemetry_topic(device_id: str) -> str:
    return f"smartzone/manhole/{device_id}/telemetry"


def now_iso() -> str:
    """The current time in Asia/Shanghai, ISO-8601 with its offset (``2026-11-29T14:05:00.123+08:00``)."""
    return datetime.now(tz=SHANGHAI).isoformat(timespec="milliseconds")


def reading_payload(
    tilt_deg: float, battery_pct: float | None = None, ts: str | int | None = None, seq: int | None = None
) -> dict[str, Any]:
    """The telemetry JSON object of DESIGN.md (optional fields left out when not given)."""
    payload: dict[str, Any] = {"ts": now_iso() if ts is None else ts, "tilt_deg": tilt_deg}
    if battery_pct is not None:
        payload["battery_pct"] = battery_pct
    if seq is not None:
        payload["seq"] = seq
    return payload


@dataclass(frozen=True)
class Target:
    """Where to publish: the local broker (plain MQTT) or AWS IoT Core (mutual TLS)."""

    host: str = LOCAL_HOST
    port: int = LOCAL_PORT
    cert: Path | None = None
    key: Path | None = None
    ca: Path | None = None

    @property
    def tls(self) -> bool:
        return self.cert is not None

    def describe(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


def publish_reading(
    device_id: str,
    payload: dict[str, Any],
    target: Target | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> str:
    """Connect as ``device_id``, publish ``payload`` on its telemetry topic (QoS 1), wait for the
    PUBACK, disconnect. Returns the topic. Raises :class:`DeviceClientError`."""
    target = target or Target()
    topic = telemetry_topic(device_id)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=device_id, protocol=mqtt.MQTTv311)
    if target.tls:
        if target.key is None or target.ca is None:
            raise DeviceClientError("TLS needs --cert, --key and --ca together")
        for what, path in (("certificate", target.cert), ("private key", target.key), ("CA", target.ca)):
            if path is None or not path.is_file():
                raise DeviceClientError(f"{what} file not found: {path}")
        client.tls_set(
            ca_certs=str(target.ca),
            certfile=str(target.cert),
            keyfile=str(target.key),
            cert_reqs=ssl.CERT_REQUIRED,
            tls_version=ssl.PROTOCOL_TLS_CLIENT,
        )
    connected = threading.Event()
    outcome: dict[str, Any] = {}

    def on_connect(_c: mqtt.Client, _u: object, _f: object, reason: Any, _p: object = None) -> None:
        outcome["connect"] = reason
        connected.set()

    client.on_connect = on_connect
    try:
        client.connect(target.host, target.port, keepalive=30)
    except (OSError, ssl.SSLError) as error:
        raise DeviceClientError(f"cannot connect to {target.describe()}: {error}") from None
    client.loop_start()
    try:
        if not connected.wait(timeout):
            raise DeviceClientError(f"no answer from {target.describe()} within {timeout:.0f} s")
        reason = outcome["connect"]
        if getattr(reason, "is_failure", False):
            raise DeviceClientError(f"{target.describe()} refused the connection: {reason}")
        info = client.publish(topic, json.dumps(payload, ensure_ascii=False), qos=QOS)
        try:
            info.wait_for_publish(timeout)
        except (RuntimeError, ValueError) as error:
            raise DeviceClientError(f"publish failed: {error}") from None
        if not info.is_published():
            raise DeviceClientError(
                f"{target.describe()} did not acknowledge the message within {timeout:.0f} s"
            )
    finally:
        client.disconnect()
        client.loop_stop()
    return topic


# -- command line ----------------------------------------------------------------------------------


def _timestamp(text: str) -> str | int:
    try:
        parse_ts_ms(text)
    except TimestampError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return int(text) if text.strip().isdigit() else text


def _device_id(text: str) -> str:
    if not DEVICE_ID_RE.match(text):
        raise argparse.ArgumentTypeError(f"not a device id like MH-0178: {text!r}")
    return text


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tools.device_client",
        description="Publish one manhole-cover reading to the local broker or to AWS IoT Core.",
    )
    parser.add_argument("device_id", type=_device_id, help="the device id, e.g. MH-0178 (also the client id)")
    parser.add_argument("--tilt", type=float, required=True, help="tilt in degrees (tilt_deg)")
    parser.add_argument("--battery", type=float, help="battery level in percent (battery_pct)")
    parser.add_argument("--ts", type=_timestamp, help="ISO-8601 time or epoch ms (default: now)")
    parser.add_argument("--seq", type=int, help="the device's sequence number")
    local = parser.add_argument_group("local broker")
    local.add_argument("--host", default=LOCAL_HOST, help=f"broker host (default {LOCAL_HOST})")
    local.add_argument(
        "--port", type=int, help=f"broker port (default {LOCAL_PORT}; {AWS_IOT_PORT} with --endpoint)"
    )
    aws = parser.add_argument_group("AWS IoT Core (mutual TLS)")
    aws.add_argument(
        "--endpoint", help="the account's ATS endpoint (xxx-ats.iot.<region>.amazonaws.com[.cn])"
    )
    aws.add_argument("--cert", type=Path, help="device certificate (certificate.pem.crt)")
    aws.add_argument("--key", type=Path, help="device private key (private.pem.key)")
    aws.add_argument("--ca", type=Path, help="Amazon root CA (AmazonRootCA1.pem)")
    parser.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds to wait (default 10)"
    )
    args = parser.parse_args(argv)
    tls_files = [args.cert, args.key, args.ca]
    if args.endpoint and not all(tls_files):
        parser.error("--endpoint needs --cert, --key and --ca")
    if any(tls_files) and not args.endpoint:
        parser.error("--cert/--key/--ca go with --endpoint (the local broker takes plain MQTT)")
    return args


def target_of(args: argparse.Namespace) -> Target:
    if args.endpoint:
        return Target(
            host=args.endpoint, port=args.port or AWS_IOT_PORT, cert=args.cert, key=args.key, ca=args.ca
        )
    return Target(host=args.host, port=args.port or LOCAL_PORT)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    payload = reading_payload(args.tilt, args.battery, args.ts, args.seq)
    target = target_of(args)
    try:
        topic = publish_reading(args.device_id, payload, target, timeout=args.timeout)
    except DeviceClientError as error:
        print(f"device_client: {error}", file=sys.stderr)
        if not target.tls and target.host == LOCAL_HOST:
            print("  is the local platform running? (make run prints its MQTT port)", file=sys.stderr)
        return 1
    print(f"published to {target.describe()} {topic}: {json.dumps(payload, ensure_ascii=False)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
