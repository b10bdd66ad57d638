"""Writes the API's OpenAPI document: ``python -m tools.openapi [--check] [--out PATH]``.

The document is generated from the API's routes (``functions.api.app.openapi_document``) and
committed as ``docs/openapi.json`` (pretty, keys sorted, UTF-8), so that the contract's changes
show in review. ``--check`` writes nothing and exits 1 when the committed file is missing or stale.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

DEFAULT_PATH = Path(__file__).resolve().parent.parent / "docs" / "openapi.json"


def render() -> str:
    """The document as committed: 2-space indent, sorted keys, non-ASCII kept, final newline."""
    from functions.api.app import openapi_document

    return json.dumps(openapi_document(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def is_current(path: Path = DEFAULT_PATH) -> bool:
    return path.is_file() and path.read_text(encoding="utf-8") == render()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.openapi", description="Write or check docs/openapi.json"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_PATH, help="where the document goes")
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is not current")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if args.out.is_file() and args.out.read_text(encoding="utf-8") == text:
            print(f"{args.out} is current")
            return 0
        print(f"{args.out} is stale: run `python -m tools.openapi`", file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    paths = json.loads(text).get("paths", {})
    print(f"wrote {args.out} ({sum(len(v) for v in paths.values())} operations)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
