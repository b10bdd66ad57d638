"""The command-centre dashboard (指挥中心大屏) as an optional static site (context ``dashboard_site``).

Off by default. When on, the stack gets:

- ``Bucket``: the site's files (``infra/local/dashboard/``: ``index.html``, ``dashboard.js``,
  ``dashboard.css``), private (all public access blocked, no ACLs), SSE-S3, TLS-only, versioned
  (old versions expire after 30 days), server access logs to the stack's access-log bucket under
  ``dashboard/``.
- ``Deployment``: a ``BucketDeployment`` that copies the folder into the bucket on every deploy
  (pruning files no longer in it) and, where there is a distribution, invalidates its cache.
- In global regions, ``Cdn``: a CloudFront distribution reading the bucket through origin access
  control (OAC), HTTPS only (HTTP redirects), ``index.html`` as the default root object, a
  response-headers policy with security headers (HSTS, a strict content security policy,
  ``nosniff``, ``DENY`` framing, no referrer), and standard access logs to ``CdnLogs`` (a bucket of
  its own: CloudFront's standard logs need ACLs, which the stack's access-log bucket does not
  allow). Optionally an alternate domain name with its ACM certificate (``us-east-1``):
  ``dashboard_domain`` and ``dashboard_certificate_arn``.

AWS China: CloudFront there serves content only on an ICP-recorded alternate domain with a
certificate from the IAM certificate store, and CloudFormation in the China regions offers no
origin access control (``AWS::CloudFront::OriginAccessControl`` is absent from cfn-lint's
``cn-north-1`` data, and deploying it there fails with "Unrecognized resource types"). So in
``aws-cn`` the construct creates the bucket and the deployment only; serving it is the
administrator's step after the ICP recordal (``docs/deploy.md``, "Hosting the dashboard").

What the page needs besides its files: it polls ``state.json`` next to itself
(``fetch("state.json")`` in ``dashboard.js``). The local platform serves that document
(``infra/local/dashboard_server.py``); the cloud stack does not yet, so the hosted page shows its
layout and "数据中断" until a state endpoint is added behind the same distribution.
"""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3deploy
from constructs import Construct

from infra.constructs import REPO_ROOT
from infra.constructs.buckets import private_bucket
from infra.nag import acknowledge

DASHBOARD_DIR = REPO_ROOT / "infra" / "local" / "dashboard"
"""The page as the local platform serves it; the same files are deployed unchanged."""

PARTITIONS_WITHOUT_CLOUDFRONT_OAC = frozenset({"aws-cn"})
"""No ``AWS::CloudFront::OriginAccessControl`` (and no default CloudFront domain) in AWS China."""

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)
"""The page loads only its own script and style sheet and fetches ``state.json`` from its origin."""


@dataclass(frozen=True)
class DashboardSiteSettings:
    with_cdn: bool
    """False in partitions without CloudFront origin access control (AWS China)."""
    domain: str = ""
    certificate_arn: str = ""
    access_log_expiry: cdk.Duration | None = None


class DashboardSite(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        access_logs: s3.IBucket,
        settings: DashboardSiteSettings,
    ) -> None:
        super().__init__(scope, construct_id)
        self._domain = settings.domain
        if bool(settings.domain) != bool(settings.certificate_arn):
            raise ValueError(
                "dashboard_domain and dashboard_certificate_arn go together: set both or neither"
            )
        if not (DASHBOARD_DIR / "index.html").is_file():
            raise ValueError(f"the dashboard's files are missing: {DASHBOARD_DIR}/index.html")

        self.bucket = private_bucket(
            self,
            "Bucket",
            versioned=True,
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix="dashboard/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-old-site-versions",
                    noncurrent_version_expiration=cdk.Duration.days(30),
                    abort_incomplete_multipart_upload_after=cdk.Duration.days(1),
                )
            ],
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )

        self.distribution: cloudfront.Distribution | None = None
        if settings.with_cdn:
            self.distribution = self._distribution(access_logs, settings)
        else:
            cdk.Annotations.of(self).add_info(
                "Dashboard site: bucket and deployment only (no CloudFront origin access control in "
                "this partition; serving needs an ICP-recorded domain): see docs/deploy.md."
            )

        self.deployment = s3deploy.BucketDeployment(
            self,
            "Deployment",
            sources=[s3deploy.Source.asset(str(DASHBOARD_DIR))],
            destination_bucket=self.bucket,
            prune=True,
            distribution=self.distribution,
            distribution_paths=["/*"] if self.distribution is not None else None,
        )
        self._acknowledge_deployment()

    @property
    def url(self) -> str | None:
        """The site's URL, or None where the stack creates no distribution (AWS China)."""
        if self.distribution is None:
            return None
        return f"https://{self._domain or self.distribution.distribution_domain_name}/"

    def _distribution(
        self, access_logs: s3.IBucket, settings: DashboardSiteSettings
    ) -> cloudfront.Distribution:
        expiry = settings.access_log_expiry or cdk.Duration.days(365)
        # CloudFront's standard logs are written with an ACL grant to the log-delivery account, so
        # they need a bucket with ACLs enabled (bucket owner preferred); the stack's access-log
        # bucket enforces bucket ownership (no ACLs). This one logs its own access there.
        self.cdn_logs = private_bucket(
            self,
            "CdnLogs",
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix="dashboard-cdn-logs/",
            lifecycle_rules=[s3.LifecycleRule(id="expire-cdn-logs", expiration=expiry)],
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        headers = cloudfront.ResponseHeadersPolicy(
            self,
            "SecurityHeaders",
            comment="SmartZone dashboard: security headers",
            security_headers_behavior=cloudfront.ResponseSecurityHeadersBehavior(
                content_security_policy=cloudfront.ResponseHeadersContentSecurityPolicy(
                    content_security_policy=CONTENT_SECURITY_POLICY, override=True
                ),
                content_type_options=cloudfront.ResponseHeadersContentTypeOptions(override=True),
                frame_options=cloudfront.ResponseHeadersFrameOptions(
                    frame_option=cloudfront.HeadersFrameOption.DENY, override=True
                ),
                referrer_policy=cloudfront.ResponseHeadersReferrerPolicy(
                    referrer_policy=cloudfront.HeadersReferrerPolicy.NO_REFERRER, override=True
                ),
                strict_transport_security=cloudfront.ResponseHeadersStrictTransportSecurity(
                    access_control_max_age=cdk.Duration.days(365),
                    include_subdomains=False,
                    override=True,
                ),
            ),
        )
        custom_domain = {}
        if settings.domain:
            custom_domain = {
                "domain_names": [settings.domain],
                "certificate": acm.Certificate.from_certificate_arn(
                    self, "Certificate", settings.certificate_arn
                ),
            }
        distribution = cloudfront.Distribution(
            self,
            "Cdn",
            comment="SmartZone command-centre dashboard",
            default_root_object="index.html",
            default_behavior=cloudfront.BehaviorOptions(
                origin=origins.S3BucketOrigin.with_origin_access_control(self.bucket),
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                allowed_methods=cloudfront.AllowedMethods.ALLOW_GET_HEAD,
                cache_policy=cloudfront.CachePolicy.CACHING_OPTIMIZED,
                response_headers_policy=headers,
                compress=True,
            ),
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            minimum_protocol_version=cloudfront.SecurityPolicyProtocol.TLS_V1_2_2021,
            enable_logging=True,
            log_bucket=self.cdn_logs,
            log_file_prefix="cdn/",
            **custom_domain,  # type: ignore[arg-type]
        )
        acknowledge(
            distribution,
            "AwsSolutions-CFR1",
            "No geo restriction: the dashboard is static files without data (its state is not served "
            "from here), and the district's screens and on-call staff may open it from any network.",
        )
        acknowledge(
            distribution,
            "AwsSolutions-CFR2",
            "No WAF web ACL: the distribution serves three static files read-only (GET/HEAD) from a "
            "private bucket; a CloudFront web ACL lives in us-east-1 and can be attached later.",
        )
        if not settings.domain:
            acknowledge(
                distribution,
                "AwsSolutions-CFR4",
                "Without dashboard_domain the distribution uses the default *.cloudfront.net "
                "certificate, whose TLS policy CloudFront fixes; set dashboard_domain and "
                "dashboard_certificate_arn to get TLSv1.2_2021.",
            )
        return distribution

    def _acknowledge_deployment(self) -> None:
        """Findings on CDK's BucketDeployment handler: one singleton function per stack, created
        by CDK at the stack's top level (``Custom::CDKBucketDeployment<uuid>``), with CDK's grants."""
        stack = cdk.Stack.of(self)
        qualifier = (
            stack.node.try_get_context("@aws-cdk/core:bootstrapQualifier")
            or cdk.DefaultStackSynthesizer.DEFAULT_QUALIFIER
        )
        assets = f"arn:<AWS::Partition>:s3:::cdk-{qualifier}-assets-<AWS::AccountId>-{stack.region}"
        site = stack.get_logical_id(self.bucket.node.default_child)  # type: ignore[arg-type]
        role_findings = {
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]": (
                "CDK's BucketDeployment handler role gets the AWS-managed basic execution policy (writing "
                "its own CloudWatch logs); the handler runs only while CloudFormation deploys the site."
            ),
            f"AwsSolutions-IAM5[Resource::{assets}/*]": (
                "The handler reads the dashboard's zipped asset (a generated object name) from the CDK "
                "bootstrap assets bucket of this account and region; CDK's grant, read-only."
            ),
            f"AwsSolutions-IAM5[Resource::<{site}.Arn>/*]": (
                "The handler copies the dashboard's files into the site bucket and prunes old ones; "
                "object-level ARNs of that one bucket need the wildcard."
            ),
        }
        for action in ("s3:GetBucket*", "s3:GetObject*", "s3:List*", "s3:Abort*", "s3:DeleteObject*"):
            role_findings[f"AwsSolutions-IAM5[Action::{action}]"] = (
                f"CDK's grantRead/grantReadWrite action group {action} for the handler, limited to the "
                "assets bucket (read) and the site bucket (read, write, prune)."
            )
        if self.distribution is not None:
            role_findings["AwsSolutions-IAM5[Resource::*]"] = (
                "cloudfront:CreateInvalidation and cloudfront:GetInvalidation, which CDK grants on * so "
                "that each deploy can invalidate the dashboard distribution's cache."
            )
        for handler in stack.node.children:
            if not handler.node.id.startswith("Custom::CDKBucketDeployment"):
                continue
            function = handler.node.try_find_child("Resource")
            role = handler.node.try_find_child("ServiceRole")
            if isinstance(function, cdk.CfnResource):
                # As for our own functions (functions.py): CDK makes the handler depend on its role,
                # which the Role GetAtt already implies (cfn-lint W3005); scoped to this resource.
                function.add_metadata("cfn-lint", {"config": {"ignore_checks": ["W3005"]}})
                acknowledge(
                    function,
                    "AwsSolutions-L1",
                    "CDK's BucketDeployment handler pins its own Python runtime (python3.13); it runs only "
                    "while CloudFormation deploys, to copy the dashboard's files into the site bucket.",
                )
            if role is not None:
                for finding, reason in role_findings.items():
                    acknowledge(role, finding, reason)
