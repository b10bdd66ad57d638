"""An S3 bucket the way SmartZone needs every bucket: private (all public access blocked), TLS-only
(``aws:SecureTransport`` deny), encrypted (SSE-S3 unless a KMS key is given), ACLs off unless asked."""

from __future__ import annotations

from typing import Any

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
