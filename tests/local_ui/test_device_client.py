"""tools.device_client: one reading, exactly per the MQTT contract, to the local broker."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from infra.local.broker import LocalBroker
from smartzone.domain.timeutil import now_ms, parse_ts_ms
from tools import device_client
from tools.device_client import DeviceClientError, Target, publish_reading, reading_payload

from .conftest import Inbox


def test_cli_publishes_one_reading(
    broker: LocalBroker, inbox: Inbox, capsys: pytest.CaptureFixture[str]
) -> None:
    code = device_client.main(
        [
            "MH-0178",
            "--tilt",
            "25.3",
            "--battery",
            "80",
            "--ts",
            "2026-11-29T14:05:00+08:00",
            "--port",
            str(broker.port),
        ]
    )

    assert code == 0
    [(topic, payload)] = inbox.wait_for(1)
    assert topic == "smartzone/manhole/MH-0178/telemetry"
    assert json.loads(payload) == {"ts": "2026-11-29T14:05:00+08:00", "tilt_deg": 25.3, "battery_pct": 80.0}
    assert "smartzone/manhole/MH-0178/telemetry" in capsys.readouterr().out


def test_defaults_to_now_in_beijing_time_and_epoch_ms_stays_a_number(
    broker: LocalBroker, inbox: Inbox
) -> None:
    assert device_client.main(["MH-0001", "--tilt", "1.5", "--port", str(broker.port)]) == 0
    assert (
        device_client.main(
            ["MH-0002", "--tilt", "2", "--ts", "1764396300000", "--seq", "7", "--port", str(broker.port)]
        )
        == 0
    )

    first, second = (json.loads(p) for _, p in inbox.wait_for(2))
    assert first["ts"].endswith("+08:00") and abs(parse_ts_ms(first["ts"]) - now_ms()) < 10_000
    assert set(first) == {"ts", "tilt_deg"}
    assert second == {"ts": 1764396300000, "tilt_deg": 2.0, "seq": 7}


def test_library_call(broker: LocalBroker, inbox: Inbox) -> None:
    topic = publish_reading("MH-0042", reading_payload(3.0, 55.0), Target(port=broker.port))
    assert topic == "smartzone/manhole/MH-0042/telemetry"
    assert inbox.wait_for(1)[0][0] == topic


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_no_broker_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    code = device_client.main(["MH-0178", "--tilt", "25", "--port", str(_free_port()), "--timeout", "2"])
    err = capsys.readouterr().err
    assert code == 1
    assert "cannot connect to mqtt://127.0.0.1:" in err and "make run" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["mh178", "--tilt", "3"],  # not a device id
        ["MH-0178"],  # --tilt is required
        ["MH-0178", "--tilt", "3", "--ts", "yesterday"],
        ["MH-0178", "--tilt", "3", "--endpoint", "x-ats.iot.cn-north-1.amazonaws.com.cn"],  # no certificates
        ["MH-0178", "--tilt", "3", "--cert", "c.pem"],  # certificates without an endpoint
    ],
)
def test_bad_arguments_exit_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        device_client.parse_args(argv)
    assert caught.value.code == 2


def test_aws_iot_target_uses_tls_on_8883_with_the_device_as_client_id(tmp_path: Path) -> None:
    args = device_client.parse_args(
        [
            "MH-0178",
            "--tilt",
            "3",
            "--endpoint",
            "abc-ats.iot.cn-north-1.amazonaws.com.cn",
            "--cert",
            str(tmp_path / "certificate.pem.crt"),
            "--key",
            str(tmp_path / "private.pem.key"),
            "--ca",
            str(tmp_path / "AmazonRootCA1.pem"),
        ]
    )
    target = device_client.target_of(args)
    assert (target.host, target.port, target.tls) == ("abc-ats.iot.cn-north-1.amazonaws.com.cn", 8883, True)
    assert target.describe() == "mqtts://abc-ats.iot.cn-north-1.amazonaws.com.cn:8883"
    with pytest.raises(DeviceClientError, match="certificate file not found"):
        publish_reading("MH-0178", reading_payload(3.0), target, timeout=1)
