"""Provision one device in AWS IoT Core: thing, certificate, policy; write its credentials.

    python -m tools.provision_device MH-0178 --stack-name SmartZone
    python -m tools.provision_device MH-0178 --policy-name <DevicePolicyName output> --out ./certs/MH-0178
    python -m tools.provision_device MH-0178 --stack-name SmartZone --dry-run

Steps: create the thing named by the device id (reused if it exists), create an active
certificate and key pair, attach the stack's device policy (which lets a device connect only as
its own thing and publish only to ``smartzone/manhole/<its id>/telemetry``) to the certificate,
attach the certificate to the thing, then write to the output folder (default
``.local/devices/<id>``, git-ignored):

    certificate.pem.crt   the device certificate
    private.pem.key       its private key (mode 0600; AWS never shows it again)
    public.pem.key        its public key
    device.json           thing, certificate id/ARN, policy, region, MQTT endpoint and topic

If a step fails after the certificate was created, the steps already done are undone (the
certificate is detached, deactivated and deleted; a thing created by this run is deleted), so a
failed run leaves nothing behind. ``--dry-run`` makes only read calls (policy, thing, endpoint)
and prints what it would do. Credentials and region come from the usual AWS configuration
(``AWS_PROFILE``, ``AWS_REGION``/``--region``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make the repository and the shared layer importable
    _ROOT = Path(__file__).resolve().parent.parent
    sys.path[:0] = [str(_ROOT), str(_ROOT / "layers" / "shared" / "python")]

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from smartzone.domain.registry import DEVICE_ID_RE

POLICY_OUTPUT_KEY = "DevicePolicyName"
"""The stack output that names the device policy (``infra/stack.py``)."""
ENDPOINT_TYPE = "iot:Data-ATS"
MQTT_PORT = 8883
CERTIFICATE_FILE = "certificate.pem.crt"
PRIVATE_KEY_FILE = "private.pem.key"
PUBLIC_KEY_FILE = "public.pem.key"
DEVICE_FILE = "device.json"


class ProvisioningError(Exception):
    """A problem the operator can fix; the message says what and how."""


def telemetry_topic(device_id: str) -> str:
    return f"smartzone/manhole/{device_id}/telemetry"


@dataclass
class Provisioned:
    """What a run created (for the summary, and for rolling back after a failure)."""

    thing_created: bool = False
    certificate_id: str | None = None
    certificate_arn: str | None = None
    policy_attached: bool = False
    principal_attached: bool = False
    files: list[Path] = field(default_factory=list)


def _aws_error(action: str, exc: Exception) -> ProvisioningError:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return ProvisioningError(f"{action} failed: {error.get('Code')}: {error.get('Message')}")
    return ProvisioningError(f"{action} failed: {exc}")


def resolve_policy_name(session: Any, policy_name: str | None, stack_name: str | None) -> str:
    if policy_name:
        return policy_name
    assert stack_name is not None
    try:
        stacks = session.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"]
    except (ClientError, BotoCoreError) as exc:
        raise _aws_error(f"reading stack {stack_name!r}", exc) from exc
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    if POLICY_OUTPUT_KEY not in outputs:
        raise ProvisioningError(
            f"stack {stack_name!r} has no {POLICY_OUTPUT_KEY} output; "
            "is it the SmartZone stack, fully deployed?"
        )
    return str(outputs[POLICY_OUTPUT_KEY])


def _existing_principals(iot: Any, thing_name: str) -> list[str] | None:
    """The thing's attached principals, or None when the thing does not exist."""
    try:
        iot.describe_thing(thingName=thing_name)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return None
        raise
    return list(iot.list_thing_principals(thingName=thing_name).get("principals", []))


def _rollback(iot: Any, thing_name: str, policy_name: str, done: Provisioned) -> list[str]:
    """Undo what this run created; returns the steps that could not be undone."""
    problems: list[str] = []

    def attempt(what: str, call: Any, **kwargs: Any) -> None:
        try:
            call(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            problems.append(f"{what}: {exc}")

    for path in done.files:
        path.unlink(missing_ok=True)
    if done.certificate_arn and done.principal_attached:
        attempt(
            "detach certificate from thing",
            iot.detach_thing_principal,
            thingName=thing_name,
            principal=done.certificate_arn,
        )
    if done.certificate_arn and done.policy_attached:
        attempt("detach policy", iot.detach_policy, policyName=policy_name, target=done.certificate_arn)
    if done.certificate_id:
        attempt(
            "deactivate certificate",
            iot.update_certificate,
            certificateId=done.certificate_id,
            newStatus="INACTIVE",
        )
        attempt("delete certificate", iot.delete_certificate, certificateId=done.certificate_id)
    if done.thing_created:
        attempt("delete thing", iot.delete_thing, thingName=thing_name)
    return problems


def _write(path: Path, content: str, mode: int = 0o644) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(content)
    os.chmod(path, mode)


def provision(
    device_id: str,
    *,
    policy_name: str | None = None,
    stack_name: str | None = None,
    out_dir: Path | None = None,
    region: str | None = None,
    dry_run: bool = False,
    force: bool = False,
    log: Any = print,
) -> dict[str, Any]:
    """Provision ``device_id``; returns the device description written to ``device.json``."""
    if not DEVICE_ID_RE.match(device_id):
        raise ProvisioningError(
            f"invalid device id {device_id!r}: expected the registry format, e.g. MH-0178 "
            f"(pattern {DEVICE_ID_RE.pattern})"
        )
    if not policy_name and not stack_name:
        raise ProvisioningError("name the device policy: --policy-name NAME or --stack-name STACK")
    out = out_dir or Path(".local") / "devices" / device_id
    if (out / PRIVATE_KEY_FILE).exists() and not force:
        raise ProvisioningError(
            f"{out / PRIVATE_KEY_FILE} already exists; choose another --out or pass --force"
        )

    try:
        session = boto3.session.Session(region_name=region)
        if not session.region_name:
            raise ProvisioningError("no AWS region: pass --region or set AWS_REGION")
        iot = session.client("iot")
        policy = resolve_policy_name(session, policy_name, stack_name)
        try:
            iot.get_policy(policyName=policy)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                raise ProvisioningError(
                    f"IoT policy {policy!r} not found in {session.region_name}; pass the stack's "
                    f"{POLICY_OUTPUT_KEY} output (or --stack-name) for this region"
                ) from exc
            raise
        principals = _existing_principals(iot, device_id)
        if principals and not force:
            raise ProvisioningError(
                f"thing {device_id} already has {len(principals)} certificate(s) attached; pass --force "
                "to add another (e.g. for a certificate rotation; deactivate the old one afterwards)"
            )
        endpoint = iot.describe_endpoint(endpointType=ENDPOINT_TYPE)["endpointAddress"]
    except (ClientError, BotoCoreError) as exc:
        raise _aws_error("checking the account", exc) from exc

    description: dict[str, Any] = {
        "device_id": device_id,
        "thing_name": device_id,
        "policy_name": policy,
        "region": session.region_name,
        "endpoint": endpoint,
        "port": MQTT_PORT,
        "client_id": device_id,
        "topic": telemetry_topic(device_id),
    }
    if dry_run:
        verb = "reuse" if principals is not None else "create"
        log(f"[dry run] would {verb} thing {device_id} in {session.region_name}")
        log(f"[dry run] would create an active certificate, attach policy {policy!r} and the thing to it")
        files = ", ".join((CERTIFICATE_FILE, PRIVATE_KEY_FILE, PUBLIC_KEY_FILE, DEVICE_FILE))
        log(f"[dry run] would write {files} to {out}")
        log(f"[dry run] endpoint {endpoint}:{MQTT_PORT}, topic {description['topic']}")
        return description

    done = Provisioned()
    try:
        if principals is None:
            iot.create_thing(thingName=device_id, attributePayload={"attributes": {"device_type": "manhole"}})
            done.thing_created = True
        cert = iot.create_keys_and_certificate(setAsActive=True)
        done.certificate_id, done.certificate_arn = cert["certificateId"], cert["certificateArn"]
        iot.attach_policy(policyName=policy, target=cert["certificateArn"])
        done.policy_attached = True
        iot.attach_thing_principal(thingName=device_id, principal=cert["certificateArn"])
        done.principal_attached = True

        description |= {"certificate_id": cert["certificateId"], "certificate_arn": cert["certificateArn"]}
        out.mkdir(parents=True, exist_ok=True)
        for name, content, mode in (
            (PRIVATE_KEY_FILE, cert["keyPair"]["PrivateKey"], 0o600),
            (CERTIFICATE_FILE, cert["certificatePem"], 0o644),
            (PUBLIC_KEY_FILE, cert["keyPair"]["PublicKey"], 0o644),
            (DEVICE_FILE, json.dumps(description, indent=2, ensure_ascii=False) + "\n", 0o644),
        ):
            _write(out / name, content, mode)
            done.files.append(out / name)
    except (ClientError, BotoCoreError, OSError) as exc:
        problems = _rollback(iot, device_id, policy, done)
        message = str(_aws_error(f"provisioning {device_id}", exc))
        if problems:
            message += "; rollback incomplete, clean up by hand: " + "; ".join(problems)
        else:
            message += "; everything this run created was removed"
        raise ProvisioningError(message) from exc

    log(f"provisioned {device_id}: certificate {done.certificate_id} with policy {policy!r}")
    log(f"credentials and device.json in {out} (keep {PRIVATE_KEY_FILE} secret)")
    log(f"connect to {endpoint}:{MQTT_PORT} as client id {device_id}; publish to {description['topic']}")
    return description


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="provision_device",
        description="Provision one SmartZone device in AWS IoT Core (thing, certificate, policy).",
    )
    parser.add_argument(
        "device_id", help="the device id, also the thing name and MQTT client id (e.g. MH-0178)"
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--policy-name", help="the IoT policy to attach (the stack's DevicePolicyName output)"
    )
    source.add_argument("--stack-name", help="read the policy name from this stack's DevicePolicyName output")
    parser.add_argument("--out", type=Path, help="output folder (default .local/devices/<device id>)")
    parser.add_argument("--region", help="AWS region (default: from the AWS configuration)")
    parser.add_argument("--dry-run", action="store_true", help="check and print the plan; change nothing")
    parser.add_argument(
        "--force",
        action="store_true",
        help="add a certificate to a thing that already has one / overwrite existing files",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        provision(
            args.device_id,
            policy_name=args.policy_name,
            stack_name=args.stack_name,
            out_dir=args.out,
            region=args.region,
            dry_run=args.dry_run,
            force=args.force,
        )
    except ProvisioningError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
