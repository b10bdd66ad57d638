"""Erases one resident's personal data on request (issue 9.5): ``python -m tools.erase_resident``.

    python -m tools.erase_resident --reason "本人申请 2026-11-29 #17" --operator ops-li   # asks for the ID
    python -m tools.erase_resident --resident-key <64 hex> --reason ... --operator ...
    python -m tools.erase_resident --preemptive --reason ... --operator ...   # not (yet) stored

An unknown resident is an error (exit status 1, nothing written) unless ``--preemptive``: then a
tombstone is written so that later merge runs never store the person.

The ID number is read from the terminal without echo (or from stdin when piped), never from the
command line (shell history, process lists). What is done, and the audit entry (operator as
``tool:<operator>``, role ``admin``, the reason; never the ID): :mod:`smartzone.repositories.erasure`.
Table and keys from the environment (``TABLE_NAME``, ``ID_HMAC_SECRET_ARN`` or ``ID_HMAC_SECRET``,
``PERSONAL_DATA_KEY_ID``); prints what was erased, by kind.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import re
import sys
from collections.abc import Callable

from smartzone.domain import idnumbers

KEY = re.compile(r"^[0-9a-f]{64}$")


def resident_key_of(raw: str, secret: bytes) -> str:
    parsed = idnumbers.parse(raw)
    if not parsed.ok or parsed.normalised is None:
        raise SystemExit("not a valid ID number (" + ", ".join(p.code.value for p in parsed.problems) + ")")
    return idnumbers.id_key(parsed.normalised, secret)


def read_id_number(prompt: str) -> str:
    """From the terminal without echo, or one line of stdin when piped."""
    return getpass.getpass(prompt) if sys.stdin.isatty() else sys.stdin.readline()


def main(argv: list[str] | None = None, *, read_id: Callable[[str], str] = read_id_number) -> int:
    parser = argparse.ArgumentParser(description="Erase a resident's personal data (audited).")
    parser.add_argument("--resident-key", help="the resident's key instead of the ID number")
    parser.add_argument("--reason", required=True, help="the request being fulfilled (ticket, date)")
    parser.add_argument("--operator", required=True, help="who runs this (recorded in the audit log)")
    parser.add_argument(
        "--preemptive", action="store_true", help="erase even if no resident has this key (yet)"
    )
    parser.add_argument("--table", default=os.environ.get("TABLE_NAME", ""))
    args = parser.parse_args(argv)
    if not args.table:
        parser.error("--table (or TABLE_NAME) is required")
    from smartzone.repositories.erasure import UnknownResident, erase_resident
    from smartzone.repositories.personal_data import id_hmac_key

    if args.resident_key:
        if not KEY.match(args.resident_key):
            parser.error("--resident-key: 64 lower-case hex characters")
        key = args.resident_key
    else:
        reader = (
            read_id if callable(read_id) else (getpass.getpass if sys.stdin.isatty() else sys.stdin.readline)
        )
        key = resident_key_of(str(reader("ID number: ")).strip(), id_hmac_key())
    try:
        result = erase_resident(
            args.table,
            key,
            actor=f"tool:{args.operator}",
            role="admin",
            reason=args.reason,
            preemptive=args.preemptive,
        )
    except UnknownResident:
        print("no such resident (nothing erased; --preemptive erases ahead of the data)", file=sys.stderr)
        return 1
    print(json.dumps({"resident_key": key, "erased": result.erased, "audit_entry": result.audit_entry_id}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
