"""Merge population source tables locally: ``python -m tools.population_merge --sources DIR --out DIR``.

Reads the mappings in ``events/population/sources/`` (or ``--mappings``), the files they name in
``--sources``, the rules (``events/population/rules.json``) and classification
(``events/population/classification.json``), optional steward decisions (``--decisions``: a JSON
list or JSON lines of StewardDecision), and writes golden records, review items, rejects and the
report to ``--out`` with a progress bar. With ``--truth`` (a generated ``truth.json``) it adds the
accuracy report. The HMAC key comes from ``SMARTZONE_ID_HMAC_KEY`` (hex) or ``--key-file``; without
either a fixed development key is used and the report says so.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import date
from pathlib import Path

from tqdm import tqdm

from smartzone.population.accuracy import evaluate
from smartzone.population.classify import Classifier, grids_from_district, load_config
from smartzone.population.models import StewardDecision
from smartzone.population.pipeline import read_jsonl, run_merge, write_report
from smartzone.population.rules import load_rules
from smartzone.population.sources import find_file, load_specs

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events" / "population"
DEV_KEY = b"smartzone-local-development-id-key"
PLAIN_DATA_WARNING = (
    "注意: {out}/golden.jsonl 与 reviews.jsonl 含明文个人信息, 仅限本地使用, 用后删除 "
    "(golden.jsonl and reviews.jsonl hold PLAIN personal data: local use only, delete after use)"
)


def load_decisions(path: Path | None) -> list[StewardDecision]:
    if path is None:
        return []
    text = path.read_text(encoding="utf-8").strip()
    if text.startswith("["):
        return [StewardDecision.model_validate(d) for d in json.loads(text)]
    return [StewardDecision.model_validate_json(line) for line in text.splitlines() if line.strip()]


def secret_of(key_file: Path | None) -> tuple[bytes, bool]:
    if key_file is not None:
        return key_file.read_bytes().strip(), False
    if os.environ.get("SMARTZONE_ID_HMAC_KEY"):
        return bytes.fromhex(os.environ["SMARTZONE_ID_HMAC_KEY"]), False
    return DEV_KEY, True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Merge population source tables into golden records.")
    parser.add_argument("--sources", type=Path, required=True, help="directory with the source files")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--mappings", type=Path, default=EVENTS / "sources")
    parser.add_argument("--rules", type=Path, default=EVENTS / "rules.json")
    parser.add_argument("--classification", type=Path, default=EVENTS / "classification.json")
    parser.add_argument("--district", type=Path, default=ROOT / "events" / "seed" / "district.json")
    parser.add_argument("--decisions", type=Path)
    parser.add_argument("--truth", type=Path, help="truth.json of generated data: adds the accuracy report")
    parser.add_argument("--key-file", type=Path)
    parser.add_argument("--as-of", type=date.fromisoformat, default=date.today())
    parser.add_argument(
        "--prefix", type=int, default=2, help="hex characters per partition (16**n partitions)"
    )
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    specs = load_specs(args.mappings)
    secret, dev_key = secret_of(args.key_file)
    district = json.loads(args.district.read_text(encoding="utf-8"))
    classifier = Classifier(load_config(args.classification), args.as_of, grids_from_district(district))
    total = 0
    for spec in specs:
        path = find_file(spec, args.sources)
        if path is not None:
            total += path.stat().st_size
    bar = tqdm(total=None, unit=" rows", disable=args.no_progress, file=sys.stderr, desc="import")
    report = run_merge(
        specs,
        args.sources,
        args.out,
        load_rules(args.rules),
        secret,
        decisions=load_decisions(args.decisions),
        classifier=classifier,
        prefix=args.prefix,
        today=args.as_of,
        progress=bar.update,
    )
    bar.close()
    if args.truth is not None:
        truth = json.loads(args.truth.read_text(encoding="utf-8"))
        reviews = read_jsonl(args.out / "reviews.jsonl")
        queued = [(r["source"], r["row"]) for r in reviews if r["reason"] == "invalid_id"]
        rejects = [(r["source"], r["row"]) for r in read_jsonl(args.out / "rejects.jsonl")]
        with (args.out / "golden.jsonl").open(encoding="utf-8") as handle:
            golden = (json.loads(line) for line in handle)
            report.accuracy = evaluate(truth, golden, queued, rejects)
        write_report(report, args.out)
    print((args.out / "summary.txt").read_text(encoding="utf-8"), end="")
    print(PLAIN_DATA_WARNING.format(out=args.out), file=sys.stderr)
    if dev_key:
        print("注意: 使用开发用 HMAC 密钥 (development HMAC key; set SMARTZONE_ID_HMAC_KEY)", file=sys.stderr)
    return 0 if report.balanced else 1


if __name__ == "__main__":
    raise SystemExit(main())
