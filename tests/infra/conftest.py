"""One synth per region per test session (synth takes seconds), with asset bundling skipped.

``aws:cdk:bundling-stacks: []`` tells CDK to bundle no stack: the dependency layer's pip install
does not run in tests (``test_layers.py`` tests the bundler itself).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import assertions

GLOBAL_REGION = "ap-southeast-1"
CHINA_REGION = "cn-north-1"
REGIONS = (GLOBAL_REGION, CHINA_REGION)
SKIP_BUNDLING: dict[str, list[str]] = {"aws:cdk:bundling-stacks": []}
OIDC_CONTEXT = {
    "oidc_issuer": "https://idp.district.example.cn",
    "oidc_jwks_url": "https://idp.district.example.cn/.well-known/jwks.json",
    "oidc_audience": "smartzone-app",
}
"""The district IdP's values: required in aws-cn (no Cognito there), ignored elsewhere."""


@dataclass
class Synth:
    """A synthesized SmartZone app for one region."""

    region: str
    outdir: Path
    stack_name: str
    acknowledgments: list[tuple[str, str, str]]

    @cached_property
    def template_path(self) -> Path:
        return self.outdir / f"{self.stack_name}.template.json"

    @cached_property
    def template_json(self) -> dict[str, Any]:
        return json.loads(self.template_path.read_text(encoding="utf-8"))

    @cached_property
    def template(self) -> assertions.Template:
        return assertions.Template.from_json(self.template_json)

    def resources(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {
            logical_id: resource
            for logical_id, resource in self.template_json["Resources"].items()
            if resource["Type"] == resource_type
        }

    def only(self, resource_type: str, containing: str = "") -> tuple[str, dict[str, Any]]:
        """The one resource of this type whose logical id contains ``containing``."""
        matches = [(k, v) for k, v in self.resources(resource_type).items() if containing in k]
        assert len(matches) == 1, (
            f"expected one {resource_type} matching {containing!r}, got {[k for k, _ in matches]}"
        )
        return matches[0]


_cache: dict[str, Synth] = {}


def synthesize(region: str, tmp_root: Path) -> Synth:
    if region not in _cache:
        from infra.app import build_app
        from infra.nag import acknowledgments

        outdir = tmp_root / f"cdk-{region}"
        context = {**SKIP_BUNDLING, "region": region}
        if region == CHINA_REGION:
            context.update(OIDC_CONTEXT)
        app = build_app(context, outdir=str(outdir))
        assembly = app.synth()  # raises ValidationFailed on any unacknowledged cdk-nag finding
        (stack,) = assembly.stacks
        _cache[region] = Synth(region, outdir, stack.stack_name, acknowledgments(app))
    return _cache[region]


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("synth")


@pytest.fixture(scope="session")
def global_synth(synth_root: Path) -> Synth:
    return synthesize(GLOBAL_REGION, synth_root)


@pytest.fixture(scope="session")
def cn_synth(synth_root: Path) -> Synth:
    return synthesize(CHINA_REGION, synth_root)


@pytest.fixture(scope="session", params=REGIONS)
def synth(request: pytest.FixtureRequest, synth_root: Path) -> Synth:
    """The app for each region in turn (tests that must hold in both partitions)."""
    return synthesize(request.param, synth_root)
