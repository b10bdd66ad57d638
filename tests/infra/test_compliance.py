"""cdk-nag, cfn-lint and partition-neutrality of the synthesized templates."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from cfnlint.api import ManualArgs, lint, lint_file

from infra.constructs import REPO_ROOT
from tests.infra.conftest import Synth

DEPLOY_DOC = REPO_ROOT / "docs" / "deploy.md"


def test_given_the_app_when_synthesized_then_cdk_nag_reports_no_unacknowledged_finding(synth: Synth) -> None:
    # The synth itself raises ValidationFailed on a finding; the report confirms it ran clean.
    report = json.loads((synth.outdir / "validation-report.json").read_text())
    violations = [v for plugin in report["pluginReports"] for v in plugin.get("violations", [])]
    assert violations == []


def test_given_the_acknowledgments_then_each_names_one_finding_with_a_specific_reason(synth: Synth) -> None:
    assert synth.acknowledgments, "the app acknowledges its known findings explicitly"
    for path, finding, reason in synth.acknowledgments:
        assert re.fullmatch(r"AwsSolutions-[A-Z0-9]+(\[[^\]]+\])?", finding), finding
        assert path.count("/") >= 2, f"{finding} is acknowledged on the stack or app, not a construct: {path}"
        assert len(reason) >= 40, reason


def test_given_the_acknowledgments_then_docs_deploy_lists_every_one(synth: Synth) -> None:
    doc = DEPLOY_DOC.read_text(encoding="utf-8")
    for path, finding, _ in synth.acknowledgments:
        assert finding in doc, f"{finding} on {path} is missing from docs/deploy.md"
        construct = path.split("/", 1)[1]
        assert construct in doc, f"{construct} ({finding}) is missing from docs/deploy.md"


@pytest.mark.parametrize("partition_arn", ["arn:aws:", "arn:aws-cn:", "arn:aws-us-gov:"])
def test_given_the_template_then_no_partition_is_hard_coded(synth: Synth, partition_arn: str) -> None:
    assert partition_arn not in synth.template_path.read_text(encoding="utf-8")


def test_given_the_template_then_cfn_lint_for_its_own_region_finds_nothing(synth: Synth) -> None:
    matches = lint_file(Path(synth.template_path), config=ManualArgs(regions=[synth.region]))
    assert [str(m) for m in matches] == []


def test_given_a_resource_china_lacks_then_cfn_lint_for_cn_north_1_rejects_it() -> None:
    """Guards the check above: cfn-lint does know per-region resource availability."""
    template = json.dumps(
        {"Resources": {"Pool": {"Type": "AWS::Cognito::UserPool", "Properties": {"UserPoolName": "x"}}}}
    )
    assert lint(template, regions=["cn-north-1"])
    assert not lint(template, regions=["ap-southeast-1"])
