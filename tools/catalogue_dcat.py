"""Catalogue ⇄ DCAT (JSON-LD): ``python -m tools.catalogue_dcat export|import|roundtrip``.

- ``export [--in events/seed/catalogue.json] [--out catalogue.jsonld]``: the catalogue file as one
  ``dcat:Catalog`` document (department names from ``events/seed/district.json``);
- ``import --in catalogue.jsonld [--out catalogue.json]``: a DCAT document back to catalogue records
  (validated by the model and the catalogue-wide rules);
- ``roundtrip [--in events/seed/catalogue.json]``: export then import every entry and compare;
  exit 1 naming the entries that differ.

The mapping is in :mod:`smartzone.domain.dcat` (see ``docs/catalogue.md``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from smartzone.domain.catalogue import Resource, check_catalogue
from smartzone.domain.dcat import DcatError, export_catalogue, import_catalogue
from tools.catalogue_seed import DEFAULT_PATH, DISTRICT_PATH


def read_catalogue(path: Path) -> list[Resource]:
    data = json.loads(path.read_text(encoding="utf-8"))
    records = data["resources"] if isinstance(data, dict) else data
    return [Resource.model_validate(r) for r in records]


def department_names(path: Path = DISTRICT_PATH) -> dict[str, str]:
    if not path.exists():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return {d["department_id"]: d["name"] for d in data.get("departments", [])}


def export_text(resources: list[Resource]) -> str:
    document = export_catalogue(resources, department_names=department_names())
    return json.dumps(document, ensure_ascii=False, indent=1) + "\n"


def roundtrip(resources: list[Resource]) -> list[str]:
    """Codes of the entries that do not come back unchanged through DCAT (empty: all do)."""
    back = import_catalogue(json.loads(export_text(resources)))
    if len(back) != len(resources):
        return [f"{len(resources)} entries exported, {len(back)} imported"]
    return [a.code for a, b in zip(resources, back, strict=True) if a != b]


def _write(text: str, out: Path | None) -> None:
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.catalogue_dcat", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("export", "import", "roundtrip"):
        command = sub.add_parser(name)
        command.add_argument(
            "--in", dest="source", type=Path, default=None if name == "import" else DEFAULT_PATH
        )
        if name != "roundtrip":
            command.add_argument("--out", type=Path, default=None, help="default: standard output")
    args = parser.parse_args(argv)
    try:
        if args.command == "export":
            _write(export_text(read_catalogue(args.source)), args.out)
            return 0
        if args.command == "import":
            if args.source is None:
                parser.error("import needs --in")
            resources = import_catalogue(json.loads(args.source.read_text(encoding="utf-8")))
            problems = check_catalogue(resources)
            if problems:
                print("\n".join(p.message for p in problems), file=sys.stderr)
                return 1
            records: list[dict[str, Any]] = [r.model_dump(mode="json", exclude_none=True) for r in resources]
            _write(json.dumps({"resources": records}, ensure_ascii=False, indent=1) + "\n", args.out)
            print(f"imported {len(records)} resources", file=sys.stderr)
            return 0
        resources = read_catalogue(args.source)
        differing = roundtrip(resources)
        if differing:
            print("not round-tripped: " + ", ".join(differing), file=sys.stderr)
            return 1
        print(f"{len(resources)} resources round-trip through DCAT unchanged", file=sys.stderr)
        return 0
    except (DcatError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
