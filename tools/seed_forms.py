"""Loads the seeded form definitions: ``python -m tools.seed_forms [--dir events/seed/forms]``.

Each ``events/seed/forms/*.json`` holds one form: ``form_id``, ``department_id`` and a form draft
(title, assignment, fields bound to facts; see :class:`smartzone.domain.forms.FormDraft`). A form
not yet stored is created (version 1); a stored one whose draft differs gets a new version; an
unchanged one is left alone, so re-running is safe. Every file is validated before anything is
written. :func:`tools.seed.load_district` calls :func:`load_forms` so ``make run`` has them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from smartzone.domain.forms import FormDefinition, FormDraft
from smartzone.domain.timeutil import now_ms, to_iso
from smartzone.repositories.forms import FormRepository

DEFAULT_DIR = Path(__file__).resolve().parent.parent / "events" / "seed" / "forms"
SEED_USER = "seed"


def read_forms(directory: Path = DEFAULT_DIR) -> list[tuple[str, str, FormDraft]]:
    """(form_id, department_id, draft) of every file; ``ValueError`` naming the bad file."""
    found: list[tuple[str, str, FormDraft]] = []
    for path in sorted(directory.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        try:
            form_id = str(data.pop("form_id"))
            department = str(data.pop("department_id"))
            found.append((form_id, department, FormDraft.model_validate(data)))
        except (KeyError, ValidationError) as exc:
            raise ValueError(f"{path.name}: {exc}") from exc
    return found


def load_forms(table_name: str, directory: Path = DEFAULT_DIR) -> dict[str, str]:
    """Store the seeded forms; ``created`` / ``new_version`` / ``unchanged`` by form id."""
    repository = FormRepository(table_name)
    outcome: dict[str, str] = {}
    for form_id, department, draft in read_forms(directory):
        current = repository.get(form_id)
        wanted = draft.model_dump(by_alias=True)
        if (
            current is not None
            and FormDraft.model_validate(
                current.model_dump(by_alias=True, include=set(FormDraft.model_fields))
            ).model_dump(by_alias=True)
            == wanted
        ):
            outcome[form_id] = "unchanged"
            continue
        form = FormDefinition(
            **wanted,
            form_id=form_id,
            version=1 if current is None else current.version + 1,
            department_id=department if current is None else current.department_id,
            created_at=to_iso(now_ms()),
            created_by=SEED_USER,
        )
        if current is None:
            repository.create(form)
            outcome[form_id] = "created"
        else:
            repository.add_version(form, current)
            outcome[form_id] = "new_version"
    return outcome


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--table", default=os.environ.get("TABLE_NAME", ""))
    args = parser.parse_args(argv)
    if not args.table:
        print("--table or TABLE_NAME is required", file=sys.stderr)
        return 2
    for form_id, result in load_forms(args.table, args.dir).items():
        print(f"{form_id}: {result}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
