"""Delivers source tables to the cloud merge workflow and starts it: ``python -m tools.population_upload``.

    python -m tools.population_upload --bucket <PopulationBucketName> --batch 2026-11-29 \
        --sources DIR [--start <PopulationWorkflowArn>]

Uploads the mappings (``events/population/sources/*.json`` or ``--mappings``), the rules, the
classification rules and the district's grid polygons under ``config/``, every ``.csv``/``.xlsx``
of ``--sources`` under ``incoming/<batch>/``, and with ``--start`` starts an execution named
``<batch>-<time>`` with input ``{"batch": ...}``. Object names are the files' names (source
tables are named by their source, never by a person). AWS credentials from the environment.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

from smartzone.repositories.clients import client

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "events" / "population"
BATCH = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def upload(bucket: str, batch: str, sources: Path, mappings: Path = EVENTS / "sources") -> list[str]:
    if not BATCH.match(batch):
        raise ValueError("batch: 1-64 letters, digits, '.', '_' or '-'")
    s3 = client("s3")
    keys = []
    plan = [(p, f"config/sources/{p.name}") for p in sorted(mappings.glob("*.json"))]
    plan += [
        (EVENTS / "rules.json", "config/rules.json"),
        (EVENTS / "classification.json", "config/classification.json"),
        (ROOT / "events" / "seed" / "district.json", "config/district.json"),
    ]
    plan += [
        (p, f"incoming/{batch}/{p.name}") for p in sorted(sources.iterdir()) if p.suffix in (".csv", ".xlsx")
    ]
    for path, key in plan:
        s3.upload_file(str(path), bucket, key)
        keys.append(key)
    return keys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Upload population source tables and start the merge workflow."
    )
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--batch", required=True)
    parser.add_argument("--sources", type=Path, required=True)
    parser.add_argument("--mappings", type=Path, default=EVENTS / "sources")
    parser.add_argument("--start", metavar="STATE_MACHINE_ARN")
    args = parser.parse_args(argv)
    keys = upload(args.bucket, args.batch, args.sources, args.mappings)
    print(f"uploaded {len(keys)} objects")
    if args.start:
        name = f"{args.batch}-{time.strftime('%Y%m%dT%H%M%S')}"
        answer = client("stepfunctions").start_execution(
            stateMachineArn=args.start, name=name, input=json.dumps({"batch": args.batch})
        )
        print(f"started {answer['executionArn']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
