"""Errors at start say what to do: a busy port, no Node.js for the synth."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from infra.local import platform
from infra.local.platform import Platform, PlatformConfig, PlatformError


def test_given_the_api_port_is_busy_when_starting_then_the_error_names_the_port_and_the_fix(
    tmp_path: Path,
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        config = PlatformConfig(state_dir=tmp_path, api_port=port, mqtt_port=0, dashboard_port=0, quiet=True)
        with pytest.raises(PlatformError, match=rf"port {port} \(HTTP API\) is in use.*make run API_PORT="):
            Platform(config).start()


def test_given_no_node_when_starting_then_the_error_says_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(platform.shutil, "which", lambda name: None)
    config = PlatformConfig(state_dir=tmp_path, api_port=0, mqtt_port=0, dashboard_port=0, quiet=True)
    with pytest.raises(PlatformError, match=r"Node\.js is needed"):
        Platform(config).start()
