"""An S3 bucket the way SmartZone needs every bucket: private (all public access blocked), TLS-only
(``aws:SecureTransport`` deny), encrypted (SSE-S3 unless a KMS key is given), ACLs off unless asked."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct


def private_bucket(scope: Construct, construct_id: str, **props: Any) -> s3.Bucket:
    """``s3.Bucket`` with the baseline above; ``props`` add to it (``encryption``/``object_ownership``
    may be overridden, e.g. KMS for personal data, ACLs for CloudFront's standard logs)."""
    props.setdefault("encryption", s3.BucketEncryption.S3_MANAGED)
    props.setdefault("object_ownership", s3.ObjectOwnership.BUCKET_OWNER_ENFORCED)
    return s3.Bucket(
        scope, construct_id, enforce_ssl=True, block_public_access=s3.BlockPublicAccess.BLOCK_ALL, **props
    )


def data_bucket(
    scope: Construct,
    construct_id: str,
    *,
    key: kms.IKey,
    access_logs: s3.IBucket,
    logs_prefix: str,
    **props: Any,
) -> s3.Bucket:
    """:func:`private_bucket` for the platform's data: SSE-KMS with ``key`` (bucket key on), server
    access logs to ``access_logs`` under ``logs_prefix``, retained when the stack is deleted."""
    return private_bucket(
        scope,
        construct_id,
        encryption=s3.BucketEncryption.KMS,
        encryption_key=key,
        bucket_key_enabled=True,
        server_access_logs_bucket=access_logs,
        server_access_logs_prefix=logs_prefix,
        removal_policy=cdk.RemovalPolicy.RETAIN,
        **props,
    )
