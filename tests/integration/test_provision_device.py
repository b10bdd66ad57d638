"""tools/provision_device.py against moto's IoT (and CloudFormation for --stack-name)."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

import boto3
import pytest

from tools import provision_device
from tools.provision_device import main

POLICY = "SmartZone-DevicePolicy"
DEVICE = "MH-0178"


@pytest.fixture
def iot(aws: None):  # type: ignore[no-untyped-def]
    """An emulated account with the stack's device policy."""
    client = boto3.client("iot")
    client.create_policy(
        policyName=POLICY,
        policyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"}],
            }
        ),
    )
    return client


def test_given_a_deployed_policy_when_provisioning_a_device_then_thing_certificate_and_policy_are_linked(
    iot, tmp_path: Path
) -> None:
    out = tmp_path / DEVICE

    assert main([DEVICE, "--policy-name", POLICY, "--out", str(out)]) == 0

    principals = iot.list_thing_principals(thingName=DEVICE)["principals"]
    assert len(principals) == 1
    cert_arn = principals[0]
    assert [p["policyName"] for p in iot.list_attached_policies(target=cert_arn)["policies"]] == [POLICY]
    cert_id = cert_arn.rsplit("/", 1)[1]
    assert iot.describe_certificate(certificateId=cert_id)["certificateDescription"]["status"] == "ACTIVE"


def test_given_a_provisioned_device_then_its_folder_holds_pems_and_the_endpoint(iot, tmp_path: Path) -> None:
    out = tmp_path / DEVICE

    main([DEVICE, "--policy-name", POLICY, "--out", str(out)])

    assert (out / "certificate.pem.crt").read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert "PRIVATE KEY" in (out / "private.pem.key").read_text()
    assert "PUBLIC KEY" in (out / "public.pem.key").read_text()
    assert stat.S_IMODE((out / "private.pem.key").stat().st_mode) == 0o600
    device = json.loads((out / "device.json").read_text())
    assert re.fullmatch(
        rf"[a-z0-9]+-ats\.iot\.{iot.meta.region_name}\.amazonaws\.com(\.cn)?", device["endpoint"]
    )
    assert device["port"] == 8883
    assert device["client_id"] == device["thing_name"] == DEVICE
    assert device["topic"] == f"smartzone/manhole/{DEVICE}/telemetry"
    assert device["policy_name"] == POLICY
    assert device["certificate_arn"] in iot.list_thing_principals(thingName=DEVICE)["principals"]


def test_given_a_dry_run_then_nothing_is_created_and_nothing_written(
    iot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / DEVICE

    assert main([DEVICE, "--policy-name", POLICY, "--out", str(out), "--dry-run"]) == 0

    assert iot.list_things()["things"] == []
    assert iot.list_certificates()["certificates"] == []
    assert not out.exists()
    assert "[dry run] would create thing MH-0178" in capsys.readouterr().out


def test_given_the_stack_name_then_the_policy_comes_from_its_device_policy_output(
    iot, tmp_path: Path
) -> None:
    template = {
        "Resources": {"Placeholder": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {"DevicePolicyName": {"Value": POLICY}},
    }
    boto3.client("cloudformation").create_stack(StackName="SmartZone", TemplateBody=json.dumps(template))

    assert main([DEVICE, "--stack-name", "SmartZone", "--out", str(tmp_path / DEVICE)]) == 0

    cert_arn = iot.list_thing_principals(thingName=DEVICE)["principals"][0]
    assert iot.list_attached_policies(target=cert_arn)["policies"][0]["policyName"] == POLICY


def test_given_an_unknown_policy_then_it_fails_clearly_and_creates_nothing(
    iot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([DEVICE, "--policy-name", "nope", "--out", str(tmp_path / DEVICE)]) == 2

    err = capsys.readouterr().err
    assert "IoT policy 'nope' not found" in err
    assert "DevicePolicyName" in err
    assert iot.list_things()["things"] == []
    assert iot.list_certificates()["certificates"] == []


@pytest.mark.parametrize("device_id", ["mh-0178", "MH 0178", "MH-0178/../x", "", "MH-"])
def test_given_a_malformed_device_id_then_it_is_refused_before_any_call(
    iot, tmp_path: Path, device_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([device_id, "--policy-name", POLICY, "--out", str(tmp_path / "x")]) == 2

    assert "invalid device id" in capsys.readouterr().err
    assert iot.list_things()["things"] == []


def test_given_a_device_already_provisioned_then_a_second_run_is_refused_without_force(
    iot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main([DEVICE, "--policy-name", POLICY, "--out", str(tmp_path / "first")])

    assert main([DEVICE, "--policy-name", POLICY, "--out", str(tmp_path / "second")]) == 2
    assert "already has 1 certificate(s)" in capsys.readouterr().err
    assert len(iot.list_certificates()["certificates"]) == 1

    assert main([DEVICE, "--policy-name", POLICY, "--out", str(tmp_path / "second"), "--force"]) == 0
    assert len(iot.list_thing_principals(thingName=DEVICE)["principals"]) == 2


def test_given_existing_credentials_in_the_folder_then_they_are_not_overwritten(
    iot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / DEVICE
    out.mkdir()
    (out / "private.pem.key").write_text("keep me")

    assert main([DEVICE, "--policy-name", POLICY, "--out", str(out)]) == 2

    assert "already exists" in capsys.readouterr().err
    assert (out / "private.pem.key").read_text() == "keep me"


def test_given_a_failure_after_the_certificate_then_everything_created_is_rolled_back(
    iot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def failing_write(path: Path, content: str, mode: int = 0o644) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(provision_device, "_write", failing_write)

    assert main([DEVICE, "--policy-name", POLICY, "--out", str(tmp_path / DEVICE)]) == 2

    assert "everything this run created was removed" in capsys.readouterr().err
    assert iot.list_things()["things"] == []
    assert iot.list_certificates()["certificates"] == []
