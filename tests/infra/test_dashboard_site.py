"""The optional static site of the command-centre dashboard (context ``dashboard_site``).

Off by default (the session's shared synths). On: one extra synth per region, made once per
session: the global region gets S3 + CloudFront with origin access control, AWS China the bucket
and its deployment only (no OAC in the China regions' CloudFormation).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from cfnlint.api import ManualArgs, lint_file

from infra.constructs import REPO_ROOT
from infra.constructs.dashboard_site import DASHBOARD_DIR
from infra.stack import SmartZoneStack, StackConfig
from tests.infra.conftest import CHINA_REGION, GLOBAL_REGION, OIDC_CONTEXT, SKIP_BUNDLING, Synth

DEPLOY_DOC = REPO_ROOT / "docs" / "deploy.md"
SITE_FILES = ("index.html", "dashboard.js", "dashboard.css")

_cache: dict[str, Synth] = {}


def synthesize_with_site(region: str, tmp_root: Path) -> Synth:
    if region not in _cache:
        from infra.app import build_app
        from infra.nag import acknowledgments

        outdir = tmp_root / f"cdk-dashboard-{region}"
        context: dict[str, Any] = {**SKIP_BUNDLING, "region": region, "dashboard_site": "true"}
        if region == CHINA_REGION:
            context.update(OIDC_CONTEXT)
        app = build_app(context, outdir=str(outdir))
        assembly = app.synth()  # raises ValidationFailed on any unacknowledged cdk-nag finding
        (stack,) = assembly.stacks
        _cache[region] = Synth(region, outdir, stack.stack_name, acknowledgments(app))
    return _cache[region]


@pytest.fixture(scope="session")
def global_site(synth_root: Path) -> Synth:
    return synthesize_with_site(GLOBAL_REGION, synth_root)


@pytest.fixture(scope="session")
def cn_site(synth_root: Path) -> Synth:
    return synthesize_with_site(CHINA_REGION, synth_root)


@pytest.fixture(scope="session", params=(GLOBAL_REGION, CHINA_REGION))
def site_synth(request: pytest.FixtureRequest, synth_root: Path) -> Synth:
    return synthesize_with_site(request.param, synth_root)


def site_bucket(synth: Synth) -> tuple[str, dict[str, Any]]:
    return synth.only("AWS::S3::Bucket", "DashboardSiteBucket")


# --- off by default -------------------------------------------------------------------------


def test_given_no_context_then_the_stack_hosts_no_dashboard(synth: Synth) -> None:
    assert synth.resources("AWS::CloudFront::Distribution") == {}
    assert synth.resources("AWS::CloudFront::OriginAccessControl") == {}
    assert synth.resources("Custom::CDKBucketDeployment") == {}
    assert not [k for k in synth.resources("AWS::S3::Bucket") if k.startswith("DashboardSite")]
    assert not [k for k in synth.template_json["Outputs"] if k.startswith("Dashboard")]


# --- on, global region ----------------------------------------------------------------------


def test_given_a_global_region_then_cloudfront_reads_the_bucket_through_origin_access_control(
    global_site: Synth,
) -> None:
    _, distribution = global_site.only("AWS::CloudFront::Distribution")
    oac_id, oac = global_site.only("AWS::CloudFront::OriginAccessControl")
    bucket_id, _ = site_bucket(global_site)
    config = distribution["Properties"]["DistributionConfig"]

    (origin,) = config["Origins"]
    assert origin["DomainName"] == {"Fn::GetAtt": [bucket_id, "RegionalDomainName"]}
    assert origin["OriginAccessControlId"] == {"Fn::GetAtt": [oac_id, "Id"]}
    assert origin["S3OriginConfig"]["OriginAccessIdentity"] == ""  # no legacy OAI
    oac_config = oac["Properties"]["OriginAccessControlConfig"]
    assert (oac_config["OriginAccessControlOriginType"], oac_config["SigningBehavior"]) == ("s3", "always")
    assert oac_config["SigningProtocol"] == "sigv4"


def test_given_a_global_region_then_the_distribution_is_https_only_with_security_headers(
    global_site: Synth,
) -> None:
    _, distribution = global_site.only("AWS::CloudFront::Distribution")
    config = distribution["Properties"]["DistributionConfig"]
    behavior = config["DefaultCacheBehavior"]

    assert behavior["ViewerProtocolPolicy"] == "redirect-to-https"
    assert behavior["AllowedMethods"] == ["GET", "HEAD"]
    assert config["DefaultRootObject"] == "index.html"
    policy_id, policy = global_site.only("AWS::CloudFront::ResponseHeadersPolicy")
    assert behavior["ResponseHeadersPolicyId"] == {"Ref": policy_id}
    headers = policy["Properties"]["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]
    assert headers["StrictTransportSecurity"]["AccessControlMaxAgeSec"] >= 31536000
    assert headers["FrameOptions"]["FrameOption"] == "DENY"
    assert headers["ContentTypeOptions"]["Override"] is True
    csp = headers["ContentSecurityPolicy"]["ContentSecurityPolicy"]
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp and "frame-ancestors 'none'" in csp
    logs_id, logs = global_site.only("AWS::S3::Bucket", "DashboardSiteCdnLogs")
    assert config["Logging"]["Bucket"] == {"Fn::GetAtt": [logs_id, "RegionalDomainName"]}
    # CloudFront's standard logs need ACLs: bucket owner preferred, never public.
    ownership = logs["Properties"]["OwnershipControls"]["Rules"][0]["ObjectOwnership"]
    assert ownership == "BucketOwnerPreferred"
    assert all(logs["Properties"]["PublicAccessBlockConfiguration"].values())


def test_given_a_global_region_then_the_bucket_is_private_and_only_cloudfront_may_read_it(
    global_site: Synth,
) -> None:
    bucket_id, bucket = site_bucket(global_site)
    distribution_id, _ = global_site.only("AWS::CloudFront::Distribution")
    props = bucket["Properties"]
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
        "ServerSideEncryptionByDefault"
    ] == {"SSEAlgorithm": "AES256"}
    access_logs_id, _ = global_site.only("AWS::S3::Bucket", "StorageAccessLogs")
    assert props["LoggingConfiguration"] == {
        "DestinationBucketName": {"Ref": access_logs_id},
        "LogFilePrefix": "dashboard/",
    }
    assert "WebsiteConfiguration" not in props

    (policy,) = [
        p
        for p in global_site.resources("AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": bucket_id}
    ]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    allows = [s for s in statements if s["Effect"] == "Allow"]
    assert allows, "CloudFront needs a grant"
    for statement in allows:
        assert statement["Principal"] == {"Service": "cloudfront.amazonaws.com"}
        assert statement["Action"] == "s3:GetObject"
        source_arn = json.dumps(statement["Condition"]["StringEquals"]["AWS:SourceArn"])
        assert distribution_id in source_arn
    deny_plain_http = [s for s in statements if s["Effect"] == "Deny"]
    assert deny_plain_http and deny_plain_http[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_given_a_global_region_then_every_deploy_copies_the_page_and_invalidates_the_cache(
    global_site: Synth,
) -> None:
    bucket_id, _ = site_bucket(global_site)
    distribution_id, _ = global_site.only("AWS::CloudFront::Distribution")
    (deployment,) = global_site.resources("Custom::CDKBucketDeployment").values()
    props = deployment["Properties"]
    assert props["DestinationBucketName"] == {"Ref": bucket_id}
    assert props["Prune"] is True
    assert props["DistributionId"] == {"Ref": distribution_id}
    assert props["DistributionPaths"] == ["/*"]
    outputs = global_site.template_json["Outputs"]
    assert "DashboardSiteUrl" in outputs and "DashboardBucketName" in outputs
    assert distribution_id in json.dumps(outputs["DashboardSiteUrl"]["Value"])


def test_given_the_site_then_its_asset_is_the_local_dashboard_unchanged(site_synth: Synth) -> None:
    staged = [
        path
        for path in site_synth.outdir.glob("asset.*")
        if path.is_dir() and sorted(p.name for p in path.iterdir()) == sorted(SITE_FILES)
    ]
    assert len(staged) == 1, f"expected one staged copy of {DASHBOARD_DIR}"
    for name in SITE_FILES:
        assert (staged[0] / name).read_bytes() == (DASHBOARD_DIR / name).read_bytes()
    # The page fetches its state next to itself: what a host must also serve (docs/deploy.md).
    assert 'fetch("state.json"' in (DASHBOARD_DIR / "dashboard.js").read_text(encoding="utf-8")


# --- on, AWS China --------------------------------------------------------------------------


def test_given_aws_china_then_only_the_bucket_and_its_deployment_are_created(cn_site: Synth) -> None:
    bucket_id, bucket = site_bucket(cn_site)
    assert cn_site.resources("AWS::CloudFront::Distribution") == {}
    assert cn_site.resources("AWS::CloudFront::OriginAccessControl") == {}
    assert all(bucket["Properties"]["PublicAccessBlockConfiguration"].values())
    (deployment,) = cn_site.resources("Custom::CDKBucketDeployment").values()
    assert deployment["Properties"]["DestinationBucketName"] == {"Ref": bucket_id}
    assert "DistributionId" not in deployment["Properties"]
    outputs = cn_site.template_json["Outputs"]
    assert "DashboardBucketName" in outputs and "DashboardSiteUrl" not in outputs


def test_given_aws_china_and_a_dashboard_domain_then_synth_stops_with_the_china_path() -> None:
    app = cdk.App(
        context={
            **SKIP_BUNDLING,
            **OIDC_CONTEXT,
            "dashboard_site": True,
            "dashboard_domain": "dashboard.district.example.cn",
            "dashboard_certificate_arn": "arn:aws-cn:iam::111111111111:server-certificate/x",
        }
    )
    with pytest.raises(ValueError, match="ICP-recorded"):
        SmartZoneStack(app, "SmartZone", env=cdk.Environment(region=CHINA_REGION))


# --- compliance of the templates with the site on -------------------------------------------


def test_given_the_site_then_cdk_nag_reports_no_unacknowledged_finding(site_synth: Synth) -> None:
    report = json.loads((site_synth.outdir / "validation-report.json").read_text())
    assert [v for plugin in report["pluginReports"] for v in plugin.get("violations", [])] == []


def test_given_the_site_then_cfn_lint_for_its_own_region_finds_nothing(site_synth: Synth) -> None:
    matches = lint_file(Path(site_synth.template_path), config=ManualArgs(regions=[site_synth.region]))
    assert [str(m) for m in matches] == []


def test_given_the_site_then_no_partition_is_hard_coded(site_synth: Synth) -> None:
    text = site_synth.template_path.read_text(encoding="utf-8")
    assert "arn:aws:" not in text and "arn:aws-cn:" not in text


def test_given_the_site_then_docs_deploy_lists_its_acknowledgments(site_synth: Synth) -> None:
    """The table writes the region in the CDK assets bucket's name as ``<region>``."""
    doc = DEPLOY_DOC.read_text(encoding="utf-8")
    for path, finding, reason in site_synth.acknowledgments:
        assert path.count("/") >= 2 and len(reason) >= 40, (path, finding)
        generic = finding.replace(f"-{site_synth.region}/", "-<region>/")
        assert generic in doc, f"{generic} on {path} is missing from docs/deploy.md"
        construct = path.split("/", 1)[1]
        assert construct in doc, f"{construct} ({finding}) is missing from docs/deploy.md"


# --- settings -------------------------------------------------------------------------------


class Node:
    def __init__(self, context: dict[str, Any]) -> None:
        self.context = context

    def try_get_context(self, key: str) -> Any:
        return self.context.get(key)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(None, False), ("false", False), ("true", True), (True, True), ("0", False), (False, False)],
)
def test_given_dashboard_site_from_context_then_it_is_a_boolean(raw: Any, expected: bool) -> None:
    context = {} if raw is None else {"dashboard_site": raw}
    assert StackConfig.from_context(Node(context)).dashboard_site is expected


@pytest.mark.parametrize(
    "context",
    [
        {"dashboard_site": "maybe"},
        {"dashboard_domain": "dashboard.example.org"},
        {"dashboard_certificate_arn": "arn:aws:acm:us-east-1:111111111111:certificate/x"},
    ],
)
def test_given_bad_dashboard_settings_then_config_refuses_them(context: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="dashboard"):
        StackConfig.from_context(Node(context))
