"""SmartZone's CDK constructs, one per concern; ``infra.stack`` composes them.

| module            | concern                                                                    |
|-------------------|----------------------------------------------------------------------------|
| ``functions``     | the factory every Lambda goes through (role, log group, JSON logs, arm64)  |
| ``layers``        | the shared-code layer and the third-party dependency layer (local bundling)|
| ``queues``        | an encrypted, TLS-only SQS queue with its dead-letter queue                |
| ``buckets``       | a private, TLS-only, encrypted S3 bucket (the baseline of every bucket)    |
| ``storage``       | the data key, the single table, the archive and uploads buckets            |
| ``ingest``        | IoT rule → SQS buffer → telemetry function; Firehose → S3 archive          |
| ``notifications`` | table stream → outbox function → SNS topic; retry and failure queues       |
| ``device_policy`` | the IoT policy every device certificate gets                               |
| ``identity``      | who may call the API: Cognito (global) or the OIDC TOKEN authorizer (China)|
| ``api``           | the regional REST API, the API function, the cursor secret, API logging    |
| ``sweeper``       | the SLA/offline sweeper function on an EventBridge schedule                |
| ``dashboard_site``| optional: the command-centre page on S3 (+ CloudFront with OAC, global)    |
"""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
"""The repository root: asset paths are resolved from here, whatever the working directory."""
