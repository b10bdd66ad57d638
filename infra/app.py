"""The SmartZone CDK app: ``python infra/app.py [-c region=cn-north-1]`` (or ``npx cdk synth``)
synthesizes offline into ``cdk.out``.

Region: context ``region`` (``-c region=cn-north-1``), else ``CDK_DEFAULT_REGION``, else
``ap-southeast-1``. Account: context ``account``, else ``CDK_DEFAULT_ACCOUNT``, else none (the
template then uses ``${AWS::AccountId}``; deploying resolves it). Stack name: context
``stack_name`` (default ``SmartZone``). Environment: ``-c env=dev|staging|prod`` applies that
preset of ``infra/environments.py`` (stack ``SmartZone-<env>``, retention, thresholds, removal
policy); ``-c`` values given too win over it. Nothing needs AWS credentials or a lookup.

cdk-nag's AwsSolutions checks run on every synth: an unacknowledged finding fails it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if __name__ == "__main__":
    # Run as a script, Python puts infra/ first on sys.path, where infra/constructs would shadow
    # the `constructs` library. Use the repository root (and the shared layer, whose key
    # constants the stack reuses) instead.
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != REPO_ROOT / "infra"]
    for extra in (REPO_ROOT / "layers" / "shared" / "python", REPO_ROOT):
        if str(extra) not in sys.path:
            sys.path.insert(0, str(extra))

import aws_cdk as cdk  # noqa: E402

from infra.environments import ENV_CONTEXT_KEY, environment_context  # noqa: E402
from infra.nag import add_nag_checks  # noqa: E402
from infra.stack import SmartZoneStack  # noqa: E402

DEFAULT_REGION = "ap-southeast-1"
DEFAULT_STACK_NAME = "SmartZone"


def cdk_json_context() -> dict[str, Any]:
    """The ``context`` block of cdk.json (feature flags), so a direct run matches ``cdk synth``."""
    path = REPO_ROOT / "cdk.json"
    if not path.is_file():
        return {}
    context = json.loads(path.read_text(encoding="utf-8")).get("context", {})
    return dict(context) if isinstance(context, dict) else {}


def build_app(context: Mapping[str, Any] | None = None, outdir: str | None = None) -> cdk.App:
    """The app with its one stack and the cdk-nag checks (``context`` wins over cdk.json)."""
    # An environment's preset (``-c env=prod``) fills what the caller did not set. Under the CDK
    # CLI, ``-c`` values arrive in CDK_CONTEXT_JSON, which cdk.App lets win over ``context``.
    cli = json.loads(os.environ.get("CDK_CONTEXT_JSON") or "{}")
    base = {**cdk_json_context(), **cli, **(context or {})}
    merged = {**cdk_json_context(), **environment_context(base.get(ENV_CONTEXT_KEY)), **(context or {})}
    app = cdk.App(context=merged, outdir=outdir)
    region = app.node.try_get_context("region") or os.environ.get("CDK_DEFAULT_REGION") or DEFAULT_REGION
    account = app.node.try_get_context("account") or os.environ.get("CDK_DEFAULT_ACCOUNT")
    stack_name = app.node.try_get_context("stack_name") or DEFAULT_STACK_NAME
    SmartZoneStack(
        app,
        stack_name,
        env=cdk.Environment(account=account, region=region),
        description="SmartZone: manhole-cover alarm pipeline (IoT -> SQS -> Lambda -> DynamoDB -> SNS)",
    )
    cdk.Tags.of(app).add("project", "smartzone")
    add_nag_checks(app)
    return app


def parse_context(argv: list[str]) -> dict[str, str]:
    """``-c key=value`` arguments of a direct run (the CDK CLI passes context in the environment)."""
    parser = argparse.ArgumentParser(description="Synthesize the SmartZone app into ./cdk.out")
    parser.add_argument("-c", "--context", action="append", default=[], metavar="KEY=VALUE")
    context: dict[str, str] = {}
    for item in parser.parse_args(argv).context:
        key, sep, value = item.partition("=")
        if not sep or not key:
            parser.error(f"context must be KEY=VALUE, got {item!r}")
        context[key] = value
    return context


def main(argv: list[str] | None = None) -> None:
    context = parse_context(sys.argv[1:] if argv is None else argv)
    # Under the CDK CLI, CDK_OUTDIR is set; run directly, write ./cdk.out (not a temp folder).
    outdir = None if os.environ.get("CDK_OUTDIR") else str(REPO_ROOT / "cdk.out")
    build_app(context, outdir=outdir).synth()


if __name__ == "__main__":
    main()
