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


def test_given_a_start_interrupted_after_emulated_aws_when_stopping_then_the_last_snapshot_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An interrupted start must not overwrite the saved state with a partial table."""
    snapshot = tmp_path / "snapshot.json"
    snapshot.write_text('{"table_items": ["the good state"]}', encoding="utf-8")

    def interrupted(self: Platform) -> None:
        from infra.local.resources import create_table

        create_table("half-made")  # on the platform's emulated AWS: an empty, partial table
        self.table_name, self.deployment = "half-made", object()
        raise KeyboardInterrupt

    monkeypatch.setattr(Platform, "_synthesize", interrupted)
    config = PlatformConfig(state_dir=tmp_path, api_port=0, mqtt_port=0, dashboard_port=0, quiet=True)
    with pytest.raises(KeyboardInterrupt):
        Platform(config).start()
    assert snapshot.read_text(encoding="utf-8") == '{"table_items": ["the good state"]}'
