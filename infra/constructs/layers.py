"""The two Lambda layers: SmartZone's shared code and its third-party dependencies.

The dependency layer is built WITHOUT Docker: ``PipLayerBundler`` (CDK local bundling) runs
``pip install`` for the Lambda platform (manylinux2014 aarch64, the runtime's CPython version,
binary wheels only) into ``<asset>/python``. boto3/botocore/s3transfer are removed afterwards:
the runtime provides them. If pip fails, the synth fails with pip's output; it never falls back
to Docker. A built layer is kept in ``build/layers/deps-<hash>`` (hash of the requirements, the
platform and the Python version), so later synths are fast and need no package index.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any, cast

import aws_cdk as cdk
import jsii
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.constructs import REPO_ROOT
from infra.constructs.functions import ARCHITECTURE, RUNTIME

SHARED_LAYER_DIR = REPO_ROOT / "layers" / "shared"
DEPS_LAYER_DIR = REPO_ROOT / "layers" / "deps"
LAMBDA_PLATFORM = "manylinux2014_aarch64"
BUILD_CACHE_DIR = REPO_ROOT / "build" / "layers"
"""Built dependency layers, one folder per requirements/platform/version hash (git-ignored)."""
PROVIDED_BY_RUNTIME = ("boto3", "botocore", "s3transfer")
"""Distributions the Lambda Python runtime already ships; the layer must not shadow them."""


class LayerBundlingError(RuntimeError):
    """The dependency layer could not be built locally."""


def _python_version(runtime: lambda_.Runtime) -> str:
    name = runtime.name  # e.g. "python3.14"
    if not name.startswith("python"):
        raise ValueError(f"not a Python runtime: {name}")
    return name.removeprefix("python")


def _remove_provided(target: Path, names: Iterable[str]) -> None:
    """Delete the packages the runtime provides, their metadata and any byte-code caches."""
    for name in names:
        for path in [target / name, *target.glob(f"{name}-*.dist-info")]:
            if path.is_dir():
                shutil.rmtree(path)
    for cache in list(target.rglob("__pycache__")):
        shutil.rmtree(cache, ignore_errors=True)
    shutil.rmtree(target / "bin", ignore_errors=True)


@jsii.implements(cdk.ILocalBundling)
class PipLayerBundler:
    """Local bundling: ``pip install`` the requirements for the Lambda platform, no Docker."""

    def __init__(
        self,
        requirements: Path,
        runtime: lambda_.Runtime,
        platform: str = LAMBDA_PLATFORM,
        cache_dir: Path = BUILD_CACHE_DIR,
    ) -> None:
        self.requirements = requirements
        self.cache_dir = cache_dir
        self.python_version = _python_version(runtime)
        self.platform = platform

    def command(self, target: Path) -> list[str]:
        return [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-compile",
            "--platform",
            self.platform,
            "--only-binary=:all:",
            "--implementation",
            "cp",
            "--python-version",
            self.python_version,
            "--target",
            str(target),
            "--requirement",
            str(self.requirements),
        ]

    def cache_key(self) -> str:
        """Changes with the requirements, the platform and the Python version."""
        digest = hashlib.sha256()
        digest.update(self.requirements.read_bytes())
        digest.update(f"{self.platform}|{self.python_version}".encode())
        return digest.hexdigest()[:16]

    def try_bundle(self, output_dir: str, options: Any = None) -> bool:
        """Fill ``<output_dir>/python``; reuse ``build/layers/deps-<key>`` when already built."""
        cached = self.cache_dir / f"deps-{self.cache_key()}"
        if not cached.is_dir():
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=self.cache_dir) as tmp:
                self._pip_install(Path(tmp) / "python")
                (Path(tmp) / "python").rename(cached)
        shutil.copytree(cached, Path(output_dir) / "python", dirs_exist_ok=True)
        return True

    def _pip_install(self, target: Path) -> None:
        command = self.command(target)
        try:
            result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=600)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise LayerBundlingError(f"could not run pip to build the dependency layer: {exc}") from exc
        if result.returncode != 0:
            raise LayerBundlingError(
                "building the dependency layer failed (pip needs a package index with "
                f"{self.platform} cp{self.python_version.replace('.', '')} wheels).\n"
                f"command: {' '.join(command)}\n{result.stdout}{result.stderr}"
            )
        _remove_provided(target, PROVIDED_BY_RUNTIME)


class Layers(Construct):
    """``shared`` from ``layers/shared`` (``python/smartzone/...``); ``deps`` from its requirements."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        requirements = DEPS_LAYER_DIR / "requirements.txt"
        if not requirements.is_file():
            raise FileNotFoundError(f"{requirements} is missing")

        self.shared = lambda_.LayerVersion(
            self,
            "Shared",
            description="SmartZone shared code (domain, repositories, settings, observability)",
            code=lambda_.Code.from_asset(
                str(SHARED_LAYER_DIR), exclude=["**/__pycache__", "**/*.pyc", "**/.mypy_cache"]
            ),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
        )
        self.deps = lambda_.LayerVersion(
            self,
            "Deps",
            description="SmartZone third-party dependencies (Powertools, pydantic); boto3 excluded",
            code=lambda_.Code.from_asset(
                str(DEPS_LAYER_DIR),
                bundling=cdk.BundlingOptions(
                    # Docker is never used (local bundling returns True or raises); the image and
                    # command describe the equivalent containerised build.
                    image=RUNTIME.bundling_image,
                    local=cast(cdk.ILocalBundling, PipLayerBundler(requirements, RUNTIME)),
                    command=[
                        "bash",
                        "-c",
                        "pip install --no-compile -r requirements.txt -t /asset-output/python && "
                        "rm -rf /asset-output/python/boto3* /asset-output/python/botocore* "
                        "/asset-output/python/s3transfer*",
                    ],
                ),
            ),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
        )

    @property
    def all(self) -> list[lambda_.ILayerVersion]:
        return [self.deps, self.shared]
