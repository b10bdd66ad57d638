"""cdk-nag (v3) wiring: the AwsSolutions checks and the one way we acknowledge a finding.

Every acknowledgment is scoped to the narrowest construct that produces the finding and names
the exact finding (``AwsSolutions-IAM5[Action::kms:GenerateDataKey*]``, not the whole rule),
with a reason specific to that construct. ``docs/deploy.md`` lists them all; a test checks that
the list and the synthesized app agree.
"""

from __future__ import annotations

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct


def add_nag_checks(app: cdk.App) -> None:
    """Run the AwsSolutions pack on every synth: any unacknowledged finding fails the synth."""
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))


PACK = "AwsSolutions"


def acknowledge(scope: IConstruct, finding: str, reason: str) -> None:
    """Acknowledge one cdk-nag finding on ``scope`` (and its children) with a specific reason.

    ``finding`` is the rule id as nag prints it (``AwsSolutions-S1``,
    ``AwsSolutions-IAM5[Resource::*]``); it is recorded in the ``AwsSolutions::`` namespace that
    CDK's validation report asks for.
    """
    if len(reason) < 40:
        raise ValueError(f"acknowledgment of {finding} needs a specific reason, got {reason!r}")
    if not finding.startswith(f"{PACK}-"):
        raise ValueError(f"not an {PACK} finding: {finding!r}")
    cdk.Validations.of(scope).acknowledge(cdk.Acknowledgment(id=f"{PACK}::{finding}", reason=reason))


def acknowledgments(root: IConstruct) -> list[tuple[str, str, str]]:
    """Every nag acknowledgment recorded under ``root``: (construct path, finding, reason)."""
    key = cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY
    found: list[tuple[str, str, str]] = []
    for node in root.node.find_all():
        for entry in node.node.metadata:
            if entry.type != key:
                continue
            if isinstance(entry.data, dict):  # {"AwsSolutions::<finding>": reason}
                for rule, reason in entry.data.items():
                    finding = str(rule).removeprefix(f"{PACK}::")
                    found.append((node.node.path, finding, str(reason)))
    return found
