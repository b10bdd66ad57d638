"""The local platform's pieces against the real synthesized template (one synth per session).

The app is synthesized once per test session into a temporary cloud assembly, with asset
bundling skipped (``aws:cdk:bundling-stacks: []``: the dependency layer's pip install does not
run). ``SMARTZONE_LOCAL_TEMPLATE=<path to a .template.json>`` reuses an existing synth instead
(faster while iterating; the default is always a fresh synth of the current stack).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from infra.local.event_sources import Invoker, LocalFunction, local_functions
from infra.local.provision import Deployment, deploy
from infra.local.template import TemplateDescription, read_template

SYNTH_REGION = "ap-southeast-1"
SKIP_BUNDLING: dict[str, list[str]] = {"aws:cdk:bundling-stacks": []}


@pytest.fixture(scope="session")
def template_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    existing = os.environ.get("SMARTZONE_LOCAL_TEMPLATE")
    if existing:
        return Path(existing)
    from infra.app import build_app

    outdir = tmp_path_factory.mktemp("local-synth")
    app = build_app({**SKIP_BUNDLING, "region": SYNTH_REGION}, outdir=str(outdir))
    (stack,) = app.synth().stacks
    return outdir / f"{stack.stack_name}.template.json"


@pytest.fixture(scope="session")
def description(template_path: Path) -> TemplateDescription:
    return read_template(template_path)


@pytest.fixture
def deployment(aws: None, description: TemplateDescription) -> Deployment:
    """The template's resources provisioned in an empty emulated account (``mock_aws``)."""
    return deploy(description)


@pytest.fixture
def functions(deployment: Deployment) -> dict[str, LocalFunction]:
    return local_functions(deployment)


@pytest.fixture
def invoker(deployment: Deployment) -> Invoker:
    return Invoker(region=deployment.resolver.region)
