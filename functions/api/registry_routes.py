"""What the device and camera registry routes share: partitioned lists and bulk imports.

- A registry list reads one index partition per grid the caller may see (or the all-items
  partition for a caller who sees everything), in order; its signed cursor carries the position
  in that list of partitions and DynamoDB's key within the current one.
- A bulk import answers one result per row: each row is checked to be an object, validated and
  checked for a duplicate id; later checks (e.g. an unknown grid) turn a row into an error; what
  the store wrote sets the status of the rows left.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar, cast

from pydantic import BaseModel, ValidationError

from smartzone.repositories.cursor import InvalidCursor, decode_cursor, encode_cursor

from .context import cursor_secret
from .errors import NotFoundError

P = TypeVar("P", bound=BaseModel)
T = TypeVar("T")

RowStatus = Literal["created", "updated", "unchanged", "error"]


# -- partitioned lists ---------------------------------------------------------------------------------
def list_partitions(grid_id: str | None, grids: frozenset[str] | None) -> list[str | None]:
    """The partitions a list reads: the grid asked for (404 when out of reach), all (``None``) for a
    caller who sees every grid (``grids`` None), otherwise the caller's grids in id order."""
    if grid_id is not None:
        if grids is not None and grid_id not in grids:
            raise NotFoundError("grid not found")
        return [grid_id]
    if grids is None:
        return [None]
    return list(sorted(grids))


def partition_scope(name: str, partitions: list[str | None], filter_value: str) -> str:
    """The cursor scope of a list: its name, its partitions and its filter."""
    return f"{name}|{','.join(p or '*' for p in partitions)}|{filter_value}"


def read_partition_cursor(
    cursor: str | None, scope: str, partitions: int
) -> tuple[int, dict[str, Any] | None]:
    """Where a list resumes: the partition's position and the key within it (start: 0, None)."""
    if cursor is None:
        return 0, None
    value = decode_cursor(cursor, scope, cursor_secret())
    position, key = value.get("p"), value.get("k")
    if not isinstance(position, int) or not 0 <= position < partitions:
        raise InvalidCursor("cursor is not valid")
    if key is not None and not isinstance(key, dict):
        raise InvalidCursor("cursor is not valid")
    return position, key


def partition_cursor(position: int, key: dict[str, Any] | None, scope: str, partitions: int) -> str | None:
    """The next cursor, or None when every partition has been read."""
    return encode_cursor({"p": position, "k": key}, scope, cursor_secret()) if position < partitions else None


# -- bulk imports --------------------------------------------------------------------------------------
class FieldError(BaseModel):
    field: str
    message: str


def field_errors(error: ValidationError) -> list[FieldError]:
    return [
        FieldError(field=".".join(str(p) for p in err["loc"]) or "row", message=err["msg"])
        for err in error.errors()
    ]


@dataclass(slots=True)
class RowVerdict:
    """One row's result: its position, the id shown for it, its status and its errors."""

    row: int
    key: str | None
    status: RowStatus
    errors: list[FieldError] = field(default_factory=list)


class RowImport(Generic[P]):
    """The rows of a bulk import, validated with ``model``; ``id_field`` names a row's id.

    ``parsed``: the valid rows (first of each id) by position; ``verdicts``: one result per row."""

    def __init__(self, rows: list[Any], model: type[P], id_field: str, *, duplicate_suffix: str = "") -> None:
        self.verdicts: list[RowVerdict] = []
        self.parsed: list[tuple[int, P]] = []
        seen: dict[str, int] = {}
        for index, raw in enumerate(rows):
            shown = raw.get(id_field) if isinstance(raw, dict) else None
            shown_id = shown if isinstance(shown, str) and len(shown) <= 32 else None
            if not isinstance(raw, dict):
                self.fail(index, None, FieldError(field="row", message="must be an object"))
                continue
            try:
                parsed = model.model_validate(raw)
            except ValidationError as error:
                self.verdicts.append(RowVerdict(index, shown_id, "error", field_errors(error)))
                continue
            key: str = getattr(parsed, id_field)
            if key in seen:
                message = f"duplicate of row {seen[key]}{duplicate_suffix}"
                self.fail(index, key, FieldError(field=id_field, message=message))
                continue
            seen[key] = index
            self.parsed.append((index, parsed))
            self.verdicts.append(RowVerdict(index, key, "unchanged"))

    def fail(self, index: int, key: str | None, error: FieldError) -> None:
        """Row ``index`` is an error (set, or appended while the rows are being read)."""
        verdict = RowVerdict(index, key, "error", [error])
        if index < len(self.verdicts):
            self.verdicts[index] = verdict
        else:
            self.verdicts.append(verdict)

    def in_known_grids(
        self,
        entries: list[tuple[int, T]],
        known: Container[str],
        key_of: Callable[[T], str],
        grid_of: Callable[[T], str],
    ) -> list[T]:
        """The entries whose grid exists; the others' rows become ``grid <id> does not exist``."""
        writable: list[T] = []
        for index, entry in entries:
            if grid_of(entry) in known:
                writable.append(entry)
            else:
                message = f"grid {grid_of(entry)} does not exist"
                self.fail(index, key_of(entry), FieldError(field="grid_id", message=message))
        return writable

    def apply(self, outcome: Mapping[str, str]) -> None:
        """Each row not in error takes the status the store reported for its id."""
        for verdict in self.verdicts:
            if verdict.status != "error" and verdict.key is not None and verdict.key in outcome:
                verdict.status = cast(RowStatus, outcome[verdict.key])

    def counts(self) -> dict[str, int]:
        counts = {status: 0 for status in ("created", "updated", "unchanged", "error")}
        for verdict in self.verdicts:
            counts[verdict.status] += 1
        return counts
