"""tools.device_client's AWS IoT path (mutual TLS), against the embedded broker with a TLS listener.

A throw-away CA signs a server certificate for ``localhost`` and a device certificate for
MH-0178, as AWS IoT's ATS endpoint and ``tools/provision_device.py`` would provide them.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from infra.local.broker import LocalBroker
from tools import device_client


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(
    subject: str, key: Any, issuer: str, issuer_key: Any, *, ca: bool = False, san: str | None = None
) -> bytes:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(san)]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def _key_pem(key: Any) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Path]:
    ca_key, server_key, device_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    files = {
        "ca": ("AmazonRootCA1.pem", _cert("Test Root CA", ca_key, "Test Root CA", ca_key, ca=True)),
        "server_cert": (
            "server.pem",
            _cert("localhost", server_key, "Test Root CA", ca_key, san="localhost"),
        ),
        "server_key": ("server.key", _key_pem(server_key)),
        "cert": ("certificate.pem.crt", _cert("MH-0178", device_key, "Test Root CA", ca_key)),
        "key": ("private.pem.key", _key_pem(device_key)),
    }
    paths = {}
    for name, (filename, content) in files.items():
        (tmp_path / filename).write_bytes(content)
        paths[name] = tmp_path / filename
    return paths


class _TlsBroker(LocalBroker):
    """The embedded broker with a TLS listener (as the ATS endpoint, minus AWS's policies)."""

    def __init__(self, pki: dict[str, Path]) -> None:
        super().__init__(port=0)
        self.pki = pki

    def _config(self) -> dict[str, Any]:
        config = super()._config()
        config["listeners"]["default"].update(
            ssl=True,
            certfile=str(self.pki["server_cert"]),
            keyfile=str(self.pki["server_key"]),
            cafile=str(self.pki["ca"]),
        )
        return config


@pytest.fixture
def tls_broker(pki: dict[str, Path]) -> Iterator[_TlsBroker]:
    with _TlsBroker(pki) as running:
        yield running


def test_publishes_over_mutual_tls(tls_broker: _TlsBroker, pki: dict[str, Path]) -> None:
    got: list[tuple[str, bytes]] = []
    arrived = threading.Event()

    def hook(topic: str, payload: bytes) -> None:
        got.append((topic, payload))
        arrived.set()

    tls_broker.on_message(hook)
    argv = ["MH-0178", "--tilt", "25.3", "--ts", "2026-11-29T14:05:00+08:00", "--endpoint", "localhost"]
    argv += ["--port", str(tls_broker.port), "--cert", str(pki["cert"]), "--key", str(pki["key"])]
    argv += ["--ca", str(pki["ca"])]

    assert device_client.main(argv) == 0
    assert arrived.wait(5)
    assert got == [
        (
            "smartzone/manhole/MH-0178/telemetry",
            json.dumps({"ts": "2026-11-29T14:05:00+08:00", "tilt_deg": 25.3}).encode(),
        )
    ]


def test_an_untrusted_server_is_refused(tls_broker: _TlsBroker, pki: dict[str, Path], tmp_path: Path) -> None:
    other_key = ec.generate_private_key(ec.SECP256R1())
    other_ca = tmp_path / "other-ca.pem"
    other_ca.write_bytes(_cert("Other CA", other_key, "Other CA", other_key, ca=True))
    target = device_client.Target(
        host="localhost", port=tls_broker.port, cert=pki["cert"], key=pki["key"], ca=other_ca
    )
    with pytest.raises(device_client.DeviceClientError, match="cannot connect to mqtts://localhost"):
        device_client.publish_reading("MH-0178", device_client.reading_payload(3.0), target, timeout=3)
