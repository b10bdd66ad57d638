"""The dependency layer's local bundler and the app's configuration (no synth needed)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import aws_lambda as lambda_

from infra.constructs import layers
from infra.constructs.identity import IdentityConfigError, IdentitySettings
from infra.constructs.layers import LayerBundlingError, PipLayerBundler
from infra.stack import StackConfig, partition_of


@pytest.fixture
def requirements(tmp_path: Path) -> Path:
    path = tmp_path / "requirements.txt"
    path.write_text("pydantic>=2\n")
    return path


def test_given_the_runtime_then_pip_targets_lambda_arm64_binary_wheels_for_its_python(
    requirements: Path,
) -> None:
    bundler = PipLayerBundler(requirements, lambda_.Runtime.PYTHON_3_14)

    command = bundler.command(Path("/out/python"))

    for option, value in [
        ("--platform", "manylinux2014_aarch64"),
        ("--python-version", "3.14"),
        ("--implementation", "cp"),
        ("--target", "/out/python"),
        ("--requirement", str(requirements)),
    ]:
        assert command[command.index(option) + 1] == value
    assert "--only-binary=:all:" in command


def test_given_pip_succeeds_then_the_layer_holds_the_packages_without_the_runtimes_boto3(
    requirements: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[list[str]] = []

    def fake_pip(command: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        calls.append(command)
        target = Path(command[command.index("--target") + 1])
        for package in ("pydantic", "botocore", "boto3", "s3transfer", "pydantic/__pycache__"):
            (target / package).mkdir(parents=True, exist_ok=True)
        (target / "botocore-1.0.dist-info").mkdir()
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(layers.subprocess, "run", fake_pip)
    bundler = PipLayerBundler(requirements, lambda_.Runtime.PYTHON_3_14, cache_dir=tmp_path / "cache")

    for attempt in range(2):
        output = tmp_path / f"asset{attempt}"
        assert bundler.try_bundle(str(output)) is True
        assert sorted(p.name for p in (output / "python").iterdir()) == ["pydantic"]
    assert len(calls) == 1, "the second synth reuses the built layer"


def test_given_pip_fails_then_the_synth_stops_with_pips_message(
    requirements: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_pip(command: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(
            command, 1, "", "ERROR: No matching distribution found for pydantic"
        )

    monkeypatch.setattr(layers.subprocess, "run", failing_pip)
    bundler = PipLayerBundler(requirements, lambda_.Runtime.PYTHON_3_14, cache_dir=tmp_path / "cache")

    with pytest.raises(LayerBundlingError, match="No matching distribution found"):
        bundler.try_bundle(str(tmp_path / "asset"))
    assert not list((tmp_path / "cache").iterdir()), "a failed build is not cached"


def test_given_cdk_context_strings_then_config_converts_them() -> None:
    context = {"log_retention_days": "731", "publish_attempts": "5", "log_level": "DEBUG"}

    class Node:
        def try_get_context(self, key: str) -> Any:
            return context.get(key)

    config = StackConfig.from_context(Node())

    assert (config.log_retention_days, config.publish_attempts, config.log_level) == (731, 5, "DEBUG")


@pytest.mark.parametrize(
    "bad",
    [
        {"log_retention_days": 42},
        {"archive_expiry_days": 90},
        {"publish_attempts": 0},
        {"heartbeat_interval_s": 0},
        {"log_level": "LOUD"},
        {"sweep_minutes": 0},
        {"sweep_minutes": 61},
        {"api_throttle_rate": 0},
        {"cors_origins": " , "},
        {"cors_origins": "http://evil.example"},
        {"authorizer_cache_s": 7200},
    ],
)
def test_given_an_invalid_setting_then_config_refuses_it(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        StackConfig(**bad).validate()  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("region", "partition"),
    [("cn-north-1", "aws-cn"), ("cn-northwest-1", "aws-cn"), ("ap-southeast-1", "aws"), ("us-east-1", "aws")],
)
def test_given_a_region_then_its_partition_decides_tracing(region: str, partition: str) -> None:
    assert partition_of(region) == partition


def test_given_no_region_context_then_the_app_takes_cdk_default_region(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from infra.app import build_app
    from infra.stack import SmartZoneStack
    from tests.infra.conftest import OIDC_CONTEXT, SKIP_BUNDLING

    monkeypatch.setenv("CDK_DEFAULT_REGION", "cn-northwest-1")
    monkeypatch.delenv("CDK_DEFAULT_ACCOUNT", raising=False)

    app = build_app({**SKIP_BUNDLING, **OIDC_CONTEXT})

    (stack,) = [c for c in app.node.children if isinstance(c, SmartZoneStack)]
    assert (stack.region, stack.partition_name, stack.tracing) == ("cn-northwest-1", "aws-cn", False)


def test_given_cors_origins_as_a_string_or_a_list_then_config_reads_them_in_order() -> None:
    class Node:
        def __init__(self, context: dict[str, Any]) -> None:
            self.context = context

        def try_get_context(self, key: str) -> Any:
            return self.context.get(key)

    from_string = StackConfig.from_context(Node({"cors_origins": "https://a.example, https://b.example"}))
    from_list = StackConfig.from_context(Node({"cors_origins": ["https://a.example", "https://b.example"]}))
    assert (
        from_string.cors_origin_list
        == from_list.cors_origin_list
        == ("https://a.example", "https://b.example")
    )
    assert StackConfig().cors_origin_list == ("*",)
    assert StackConfig.from_context(Node({"sweep_minutes": "10"})).sweep_minutes == 10


def test_given_china_without_oidc_context_then_identity_names_every_missing_value() -> None:
    with pytest.raises(IdentityConfigError) as error:
        IdentitySettings(use_cognito=False, oidc_issuer="https://idp.example.cn").validate()
    message = str(error.value)
    assert "oidc_jwks_url" in message and "oidc_audience" in message and "oidc_issuer," not in message


def test_given_china_with_a_plain_http_issuer_then_identity_refuses_it() -> None:
    settings = IdentitySettings(
        use_cognito=False,
        oidc_issuer="http://idp.example.cn",
        oidc_jwks_url="https://idp.example.cn/jwks.json",
        oidc_audience="smartzone",
    )
    with pytest.raises(IdentityConfigError, match="oidc_issuer"):
        settings.validate()


def test_given_a_global_region_then_identity_needs_no_oidc_context() -> None:
    IdentitySettings(use_cognito=True).validate()


def test_given_china_without_oidc_context_then_the_app_refuses_to_synthesize() -> None:
    from infra.app import build_app
    from tests.infra.conftest import SKIP_BUNDLING

    with pytest.raises(IdentityConfigError, match="oidc_issuer"):
        build_app({**SKIP_BUNDLING, "region": "cn-north-1"})
