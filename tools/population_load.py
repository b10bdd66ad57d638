"""Loads a local merge's output into the resident store: ``python -m tools.population_load``.

``python -m tools.population_merge --sources DIR --out OUT`` runs the merge engine on local files;
this command writes its ``OUT/golden.jsonl`` and ``OUT/reviews.jsonl`` into a table the way the
cloud workflow does (personal fields sealed, category memberships, counts), so that the query and
review API can be tried on the local platform::

    make run                                   # in one terminal
    python -m tools.population_load --out OUT --local

Every record is re-keyed with the TARGET's ID-HMAC key (the local merge may have used a
development key): ``id_key`` = HMAC of the record's normalised ID under the key the API uses.

Target: ``--local`` reads ``.local/session.json`` (the emulated AWS endpoint), takes the one
table there and the ID-HMAC secret the stack created; otherwise ``--table`` (or ``TABLE_NAME``)
and ``ID_HMAC_SECRET_ARN``/``ID_HMAC_SECRET`` with the usual AWS environment, and
``PERSONAL_DATA_KEY_ID`` (KMS) or ``PERSONAL_DATA_LOCAL_KEY``. Prints counts only, never a value.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from smartzone.domain import idnumbers
from smartzone.domain.residents import resident_from_golden
from smartzone.population.models import GoldenRecord, ReviewItem
from smartzone.repositories.clients import client, reset_clients
from smartzone.repositories.residents import ResidentRepository, counts_of

BATCH = 500
HMAC_SECRET_DESCRIPTION = "SmartZone population: key of the ID-number HMAC"


def _lines(path: Path) -> Iterator[dict[str, object]]:
    if not path.exists():
        return
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def use_local_platform(state_dir: Path) -> None:
    """Point boto3 at the running local platform and set the table and the HMAC secret from it."""
    session = json.loads((state_dir / "session.json").read_text(encoding="utf-8"))
    os.environ["AWS_ENDPOINT_URL"] = str(session["aws_endpoint_url"])
    for name, value in (("AWS_ACCESS_KEY_ID", "local"), ("AWS_SECRET_ACCESS_KEY", "local")):
        os.environ.setdefault(name, value)
    os.environ.setdefault("AWS_DEFAULT_REGION", "cn-north-1")
    from infra.local.platform import LOCAL_PERSONAL_DATA_KEY

    os.environ.setdefault("PERSONAL_DATA_LOCAL_KEY", LOCAL_PERSONAL_DATA_KEY)
    reset_clients()
    tables = client("dynamodb").list_tables()["TableNames"]
    if len(tables) != 1:
        raise SystemExit(f"expected one table on the local platform, found {len(tables)}")
    os.environ["TABLE_NAME"] = tables[0]
    secrets = [
        s["ARN"]
        for s in client("secretsmanager").list_secrets()["SecretList"]
        if str(s.get("Description", "")).startswith(HMAC_SECRET_DESCRIPTION)
    ]
    if len(secrets) != 1:
        raise SystemExit("the local platform has no ID-HMAC secret (is the population construct deployed?)")
    os.environ["ID_HMAC_SECRET_ARN"] = secrets[0]


def load(out: Path, table_name: str, secret: bytes, *, run_id: str = "local") -> dict[str, int]:
    """Write golden records and review items of a merge output; returns counts by kind."""
    repo = ResidentRepository(table_name)
    rekey: dict[str, str] = {}
    written_all = []
    batch = []
    from smartzone.domain.timeutil import now_ms, to_iso

    at = to_iso(now_ms())
    for data in _lines(out / "golden.jsonl"):
        record = GoldenRecord.model_validate(data)
        new_key = idnumbers.id_key(record.id_number, secret)
        rekey[record.id_key] = new_key
        batch.append(
            resident_from_golden(record.model_copy(update={"id_key": new_key}), run_id=run_id, at=at)
        )
        if len(batch) >= BATCH:
            written_all += repo.write_residents(batch)
            batch = []
    if batch:
        written_all += repo.write_residents(batch)
    repo.replace_counts(dict(counts_of(written_all)))
    reviews = []
    for data in _lines(out / "reviews.jsonl"):
        item = ReviewItem.model_validate(data)
        if item.id_key is not None:
            item = item.model_copy(update={"id_key": rekey.get(item.id_key, item.id_key)})
        reviews.append(item)
    outcome = repo.write_reviews(reviews, at)
    return {"residents": len(written_all), "skipped_erased": len(rekey) - len(written_all), **outcome}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Load a population merge output into the resident store.")
    parser.add_argument(
        "--out", type=Path, required=True, help="the output directory of tools.population_merge"
    )
    parser.add_argument(
        "--local", action="store_true", help="load into the running local platform (make run)"
    )
    parser.add_argument("--state-dir", type=Path, default=Path(".local"))
    parser.add_argument("--table", default=os.environ.get("TABLE_NAME", ""))
    parser.add_argument("--run-id", default="local")
    args = parser.parse_args(argv)
    if args.local:
        use_local_platform(args.state_dir)
        args.table = os.environ["TABLE_NAME"]
    if not args.table:
        parser.error("--table (or TABLE_NAME) is required without --local")
    from smartzone.repositories.personal_data import id_hmac_key
    from smartzone.settings import get_settings

    get_settings.cache_clear()
    counts = load(args.out, args.table, id_hmac_key(), run_id=args.run_id)
    print(json.dumps(counts, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
