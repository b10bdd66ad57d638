"""Add, rotate or remove a detections-webhook vendor's HMAC key (and, optionally, its API key).

The keys live in ONE Secrets Manager secret (stack output ``VendorKeysSecretArn``): a JSON map
vendor id → key. The webhook re-reads it at most every 5 minutes, so a rotated key is in force
within minutes (tell the vendor first; during those minutes either key may be refused)::

    python -m tools.vendor_keys add hikvision --secret-arn ARN [--usage-plan-id ID]
    python -m tools.vendor_keys rotate hikvision --secret-arn ARN
    python -m tools.vendor_keys remove hikvision --secret-arn ARN
    python -m tools.vendor_keys list --secret-arn ARN

``add`` and ``rotate`` print the new 64-character key ONCE (hand it to the vendor over a secure
channel); ``list`` prints vendor ids only. With ``--usage-plan-id`` (stack output
``VendorUsagePlanId``), ``add`` also creates the vendor's API key (``x-api-key`` header: rate
limits only) and attaches it to the usage plan, and prints it. ``--secret-arn`` defaults to
``VENDOR_KEYS_SECRET_ARN``; locally set ``AWS_ENDPOINT_URL`` to the platform's moto server.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from collections.abc import Sequence

from smartzone.domain.webhook_auth import VENDOR_ID_RE
from smartzone.repositories.clients import client
from smartzone.repositories.vendor_webhook import put_vendor_key


def new_key() -> str:
    return secrets.token_hex(32)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.vendor_keys", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["add", "rotate", "remove", "list"])
    parser.add_argument("vendor", nargs="?", help="vendor id, e.g. hikvision")
    parser.add_argument("--secret-arn", default=os.environ.get("VENDOR_KEYS_SECRET_ARN", ""))
    parser.add_argument("--usage-plan-id", default="", help="with add: also create the vendor's API key")
    args = parser.parse_args(argv)
    if not args.secret_arn:
        parser.error("--secret-arn (or VENDOR_KEYS_SECRET_ARN) is required")
    if args.command == "list":
        raw = client("secretsmanager").get_secret_value(SecretId=args.secret_arn)["SecretString"]
        vendors = sorted(k for k in json.loads(raw) if not k.startswith("_"))
        print("\n".join(vendors) if vendors else "(no vendors)")
        return 0
    if not args.vendor or not VENDOR_ID_RE.match(args.vendor):
        parser.error("a vendor id like 'hikvision' (lower case, 2-32 characters) is required")
    if args.command == "remove":
        put_vendor_key(args.secret_arn, args.vendor, None)
        print(f"removed {args.vendor}")
        return 0
    key = new_key()
    put_vendor_key(args.secret_arn, args.vendor, key)
    print(f"vendor {args.vendor}: HMAC key (shown once) {key}")
    if args.command == "add" and args.usage_plan_id:
        apigw = client("apigateway")
        api_key = apigw.create_api_key(name=f"detections-{args.vendor}", enabled=True)
        apigw.create_usage_plan_key(usagePlanId=args.usage_plan_id, keyId=api_key["id"], keyType="API_KEY")
        print(f"vendor {args.vendor}: API key (x-api-key, rate limits only) {api_key['value']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
