"""Fixtures and helpers for end-to-end tests against a started local platform.

The tests talk to the platform only through its public protocols, as a device, the mobile app or
an operator would: MQTT to the broker on ``session["mqtt"]``, HTTP to ``session["api_url"]`` with
the seeded users' ID tokens, HTTP to the dashboard. Nothing is called in-process except
``Platform`` itself (start, stop, ``wait_idle``).

A test module starts ONE platform for all its tests (startup takes seconds)::

    from tests.e2e.platform_fixtures import api, platform_fixture, publish, session_fixture, wait_until

    __all__ = ["platform_fixture", "session_fixture"]  # the fixtures ``platform`` and ``session``

    def test_x(session: dict) -> None:
        publish(session, "MH-0178", 25.3)
        orders = wait_until(lambda: api(session, "G07-W1", "GET", "/v1/workorders")[1]["items"], 10,
                            "an order for G07-W1")
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any, TypeVar

import paho.mqtt.client as mqtt
import pytest

from smartzone.domain.timeutil import SHANGHAI
from tools.device_client import reading_payload, telemetry_topic

T = TypeVar("T")
Session = dict[str, Any]

HTTP_TIMEOUT_S = 15.0
MQTT_TIMEOUT_S = 10.0
STARTUP_HINT = (
    "the local platform could not be imported or started; "
    "`make run` should start it too (infra/local/platform.py)"
)


# -- the platform --------------------------------------------------------------------------------


@pytest.fixture(scope="module", name="platform")
def platform_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """ONE local platform for the whole test module: fresh seed, no simulator, ports picked free,
    the sweeper's schedule far away (so it never interferes), state in a temporary directory."""
    try:
        from infra.local.platform import Platform, PlatformConfig
    except ImportError as error:  # pragma: no cover - the message is the point
        pytest.fail(f"{STARTUP_HINT}: {error!r}")
    state_dir = tmp_path_factory.mktemp("platform")
    config = PlatformConfig(
        state_dir=state_dir,
        api_port=0,
        mqtt_port=0,
        dashboard_port=0,
        moto_port=0,
        simulator=False,
        reset=True,
        sweep_period_s=3600,
        quiet=True,
    )
    environment = dict(os.environ)  # the platform points boto3 at its moto server: undone after
    try:
        with Platform(config) as running:
            written = json.loads((state_dir / "session.json").read_text(encoding="utf-8"))
            assert written == running.session, "session.json differs from Platform.session"
            yield running
    finally:
        os.environ.clear()
        os.environ.update(environment)
        _forget_aws_clients()


def _forget_aws_clients() -> None:
    """Drop cached boto3 clients and settings made for the stopped platform's endpoint."""
    from smartzone.repositories.clients import reset_clients
    from smartzone.settings import get_settings

    reset_clients()
    get_settings.cache_clear()


@pytest.fixture(scope="module", name="session")
def session_fixture(platform: Any) -> Session:
    """The started platform's session (as written to ``session.json``), checked for its shape."""
    found: Session = platform.session
    for key in ("api_url", "dashboard_url", "mqtt", "users"):
        assert key in found, f"session.json has no {key!r}: {sorted(found)}"
    for url in (found["api_url"], found["dashboard_url"]):
        assert url.startswith("http://127.0.0.1:"), f"not on 127.0.0.1: {url}"
    assert found["mqtt"]["host"] == "127.0.0.1" and int(found["mqtt"]["port"]) > 0, found["mqtt"]
    return found


# -- users and tokens ----------------------------------------------------------------------------


def user(session: Session, username: str) -> dict[str, Any]:
    for entry in session["users"]:
        if entry["username"] == username:
            return dict(entry)
    names = sorted(u["username"] for u in session["users"])
    raise AssertionError(f"no seeded user {username!r} in session.json; users: {names}")


def token(session: Session, username: str) -> str:
    """The seeded user's ID token, as ``session.json`` gives it."""
    id_token = user(session, username)["id_token"]
    assert isinstance(id_token, str) and id_token.count(".") == 2, f"{username}: not a JWT"
    return id_token


# -- HTTP ----------------------------------------------------------------------------------------


def http(
    method: str,
    url: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """One real HTTP request; returns (status, parsed JSON body or None when the body is empty)."""
    data = None if body is None else json.dumps(body, ensure_ascii=False).encode("utf-8")
    request = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    if not raw:
        return status, None
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode("utf-8", errors="replace")


def api_url(session: Session, path: str, **query: Any) -> str:
    url = session["api_url"].rstrip("/") + path
    if query:
        url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
    return url


def api(
    session: Session,
    username: str | None,
    method: str,
    path: str,
    body: Any = None,
    *,
    bearer: str | None = None,
    **query: Any,
) -> tuple[int, Any]:
    """Call the HTTP API as a seeded user (``username``), or with an explicit ``bearer`` token, or
    with no ``Authorization`` header at all (both ``None``). Returns (status, JSON)."""
    headers: dict[str, str] = {}
    if bearer is not None:
        headers["Authorization"] = f"Bearer {bearer}"
    elif username is not None:
        headers["Authorization"] = f"Bearer {token(session, username)}"
    return http(method, api_url(session, path, **query), body, headers)


def api_ok(session: Session, username: str, method: str, path: str, body: Any = None, **query: Any) -> Any:
    """:func:`api` that must answer 2xx; returns the JSON."""
    status, payload = api(session, username, method, path, body, **query)
    assert 200 <= status < 300, f"{method} {path} as {username}: {status} {payload}"
    return payload


# -- MQTT ----------------------------------------------------------------------------------------


def device_ts(at: datetime | int | str | None) -> str | int | None:
    """A reading's ``ts``: a datetime becomes ISO-8601 in Asia/Shanghai (with its offset)."""
    if isinstance(at, datetime):
        return at.astimezone(SHANGHAI).isoformat(timespec="milliseconds")
    return at


def minutes_ago(minutes: float) -> datetime:
    return datetime.now(tz=SHANGHAI) - timedelta(minutes=minutes)


def publish_raw(session: Session, topic: str, payload: bytes | str, *, client_id: str | None = None) -> None:
    """Publish one message (any bytes) with QoS 1 to the platform's broker; returns once the
    broker has acknowledged it (PUBACK)."""
    host, port = session["mqtt"]["host"], int(session["mqtt"]["port"])
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id or f"e2e-{uuid.uuid4().hex[:12]}",
        protocol=mqtt.MQTTv311,
    )
    connected = threading.Event()
    outcome: dict[str, Any] = {}

    def on_connect(_c: mqtt.Client, _u: object, _f: object, reason: Any, _p: object = None) -> None:
        outcome["reason"] = reason
        connected.set()

    client.on_connect = on_connect
    client.connect(host, port, keepalive=30)
    client.loop_start()
    try:
        assert connected.wait(MQTT_TIMEOUT_S), f"no CONNACK from mqtt://{host}:{port}"
        assert not getattr(outcome["reason"], "is_failure", False), f"broker refused: {outcome['reason']}"
        data = payload.encode("utf-8") if isinstance(payload, str) else payload
        info = client.publish(topic, data, qos=1)
        info.wait_for_publish(MQTT_TIMEOUT_S)
        assert info.is_published(), f"no PUBACK for {topic} within {MQTT_TIMEOUT_S:.0f} s"
    finally:
        client.disconnect()
        client.loop_stop()


def publish(
    session: Session,
    device_id: str,
    tilt: float,
    ts: datetime | int | str | None = None,
    battery: float | None = None,
) -> dict[str, Any]:
    """Publish one telemetry reading as the device would (its topic, client id = device id, QoS 1,
    PUBACK awaited). Returns the payload sent (``ts`` defaults to now, Asia/Shanghai)."""
    payload = reading_payload(tilt, battery, device_ts(ts))
    publish_raw(session, telemetry_topic(device_id), json.dumps(payload), client_id=device_id)
    return payload


# -- waiting -------------------------------------------------------------------------------------


def wait_until(
    predicate: Callable[[], T | None],
    timeout_s: float,
    what: str = "the condition",
    *,
    interval_s: float = 0.2,
) -> T:
    """Poll ``predicate`` until it returns something truthy (returned); on timeout fail, naming
    ``what`` and the last value seen (or the last exception raised by the predicate)."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while True:
        try:
            last = predicate()
        except AssertionError as error:  # a predicate may assert while the state is in flux
            last = error
        else:
            if last:
                return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}; last seen: {last!r}")
        time.sleep(interval_s)
