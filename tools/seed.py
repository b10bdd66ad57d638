"""Loads the demo district into the table: ``python -m tools.seed [--file PATH] [--subscribe]``.

Every grid, device, camera and person is validated through the registry's pydantic models before anything is
written (an invalid record stops the load with an error naming it), then written in batches:
grids and new devices with BatchWriteItem, changed devices with UpdateItem of their registry
attributes only. Grid boundaries are stored on the grid items (routing by location reads them).
Cameras (the river bank's ``cameras`` and the ``site_cameras``) go to the camera registry: new or
changed ones with BatchWriteItem, unchanged ones not at all. Re-running is safe: a device's hot state (``state``, ``version``: watermark,
open alarms) is never overwritten, and unchanged devices are not written at all.

The user registry is written too (only new or changed users): ``admin``, the command centre's
dispatchers and the technicians (username = their ``user_id``), and every grid worker (username =
``worker_id``, role ``grid_worker``, ``grid_ids`` = the grids they are listed in). The file is the
source of truth for them: a re-run restores a seeded person's roles and grids.

``--subscribe`` also subscribes every grid worker's e-mail (``email``) and webhook (``https``) to
the notifications topic with the filter policy ``{"grid_id": [<grid>]}``; endpoints already
subscribed for their grid are left alone.

Table and topic come from ``--table``/``--topic-arn`` or the environment (``TABLE_NAME``,
``NOTIFICATIONS_TOPIC_ARN``); AWS credentials and endpoint from the usual boto3 environment.
Tests, the demo and the benchmarks call :func:`load_district`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from smartzone.domain import geo
from smartzone.domain.cameras import Camera
from smartzone.domain.identity import Role
from smartzone.domain.registry import Device, Grid
from smartzone.domain.users import UserProfile
from smartzone.repositories.cameras import CameraRepository
from smartzone.repositories.devices import DeviceRepository
from smartzone.repositories.grid_areas import GridAreaRepository
from smartzone.repositories.subscriptions import SubscriptionOutcome, TopicSubscriptions, subscribe_worker
from smartzone.repositories.users import UserRepository
from tools.catalogue_seed import load_catalogue
from tools.seed_data import DEFAULT_PATH
from tools.seed_forms import load_forms

MAX_LISTED_PROBLEMS = 20
ADMIN = UserProfile(username="admin", name="系统管理员", roles=[Role.ADMIN])
"""The platform administrator every seeded district has."""
M = TypeVar("M", bound=BaseModel)


class SeedDataError(ValueError):
    """The seed file has invalid records; nothing was written."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        listed = problems[:MAX_LISTED_PROBLEMS]
        more = len(problems) - len(listed)
        lines = [f"{source}: {len(problems)} problem(s), nothing was loaded:", *(f"  - {p}" for p in listed)]
        if more:
            lines.append(f"  … and {more} more")
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class District:
    """A validated seed file."""

    source: str
    version: int | None
    seed: int | None
    grids: list[Grid]
    devices: list[Device]
    boundaries: dict[str, dict[str, Any]]
    cameras: int
    users: list[UserProfile] = field(default_factory=list)
    camera_records: list[Camera] = field(default_factory=list)
    """River cameras (``cameras``) and site/enterprise cameras (``site_cameras``) for the registry."""


@dataclass
class SeedReport:
    """What a load did."""

    source: str
    version: int | None
    seed: int | None
    grids: int
    devices_created: int
    devices_updated: int
    devices_unchanged: int
    cameras_in_file: int
    subscriptions: list[SubscriptionOutcome] = field(default_factory=list)
    users_created: int = 0
    users_updated: int = 0
    users_unchanged: int = 0
    cameras_created: int = 0
    cameras_updated: int = 0
    cameras_unchanged: int = 0
    elapsed_s: float = 0.0

    @property
    def devices(self) -> int:
        return self.devices_created + self.devices_updated + self.devices_unchanged

    def subscription_counts(self) -> dict[str, int]:
        return dict(Counter(outcome.status for outcome in self.subscriptions))

    def summary(self) -> str:
        text = (
            f"{self.source} (version {self.version}, seed {self.seed}): {self.grids} grids, "
            f"{self.devices} devices ({self.devices_created} created, {self.devices_updated} updated, "
            f"{self.devices_unchanged} unchanged)"
        )
        users = self.users_created + self.users_updated + self.users_unchanged
        if users:
            text += (
                f", {users} users ({self.users_created} created, {self.users_updated} updated, "
                f"{self.users_unchanged} unchanged)"
            )
        cameras = self.cameras_created + self.cameras_updated + self.cameras_unchanged
        if cameras:
            text += (
                f", {cameras} cameras ({self.cameras_created} created, {self.cameras_updated} updated, "
                f"{self.cameras_unchanged} unchanged)"
            )
        if self.subscriptions:
            counts = ", ".join(f"{n} {status}" for status, n in sorted(self.subscription_counts().items()))
            text += f", {len(self.subscriptions)} subscriptions ({counts})"
        return f"{text} in {self.elapsed_s:.2f} s"


# --- reading and validating -----------------------------------------------------------------------


def _describe(error: ValidationError) -> str:
    parts = []
    for err in error.errors():
        where = ".".join(str(p) for p in err["loc"]) or "record"
        value = err.get("input")
        shown = f" (got {value!r})" if isinstance(value, int | float) or value is None else ""
        parts.append(f"{where}: {err['msg']}{shown}")
    return "; ".join(parts)


def _label(section: str, index: int, raw: object, id_field: str) -> str:
    record_id = raw.get(id_field) if isinstance(raw, dict) else None
    return f"{section}[{index}] ({record_id})" if isinstance(record_id, str) else f"{section}[{index}]"


def _validate_all(
    model: type[M], section: str, raws: object, id_field: str, problems: list[str]
) -> list[tuple[str, M]]:
    if not isinstance(raws, list):
        problems.append(f"{section}: must be a list")
        return []
    valid: list[tuple[str, M]] = []
    seen: set[str] = set()
    for index, raw in enumerate(raws):
        label = _label(section, index, raw, id_field)
        try:
            record = model.model_validate(raw)
        except ValidationError as error:
            problems.append(f"{label}: {_describe(error)}")
            continue
        record_id = getattr(record, id_field)
        if record_id in seen:
            problems.append(f"{label}: duplicate {id_field} {record_id}")
            continue
        seen.add(record_id)
        valid.append((label, record))
    return valid


def validate_district(data: object, source: str = "<data>") -> District:
    """Validate a parsed seed file; raise :class:`SeedDataError` listing every invalid record."""
    if not isinstance(data, dict):
        raise SeedDataError(source, ["the file must hold a JSON object"])
    problems: list[str] = []
    grids = _validate_all(Grid, "grids", data.get("grids"), "grid_id", problems)
    devices = _validate_all(Device, "devices", data.get("devices"), "device_id", problems)
    grid_ids = {grid.grid_id for _, grid in grids}

    raw_boundaries = data.get("boundaries") or {}
    boundaries: dict[str, dict[str, Any]] = {}
    if not isinstance(raw_boundaries, dict):
        problems.append("boundaries: must be an object of GeoJSON polygons by grid id")
        raw_boundaries = {}
    for grid_id, geometry in raw_boundaries.items():
        if grid_id not in grid_ids:
            problems.append(f"boundaries.{grid_id}: not a grid in this file")
            continue
        try:
            geo.validate_polygon(geometry)
        except geo.GeometryError as error:
            problems.append(f"boundaries.{grid_id}: {error}")
            continue
        boundaries[grid_id] = geometry

    for label, device in devices:
        device_position = (device.lon, device.lat)
        if device.grid_id not in grid_ids:
            problems.append(f"{label}: grid_id {device.grid_id} is not a grid in this file")
        elif device.grid_id in boundaries and not geo.contains(boundaries[device.grid_id], *device_position):
            problems.append(f"{label}: position {list(device_position)} is outside grid {device.grid_id}")
    users = _district_users(data, [grid for _, grid in grids], problems)
    camera_records = _district_cameras(data, grid_ids, boundaries, problems)
    if problems:
        raise SeedDataError(source, problems)
    return District(
        source=source,
        version=data.get("version"),
        seed=data.get("seed"),
        grids=[grid for _, grid in grids],
        devices=[device for _, device in devices],
        boundaries=boundaries,
        cameras=len(camera_records),
        users=users,
        camera_records=camera_records,
    )


CAMERA_SECTIONS = ("cameras", "site_cameras")
"""Sections of the seed file holding cameras (river bank; construction sites and enterprises)."""


def _district_cameras(
    data: dict[str, Any], grid_ids: set[str], boundaries: dict[str, dict[str, Any]], problems: list[str]
) -> list[Camera]:
    """Every camera of the file as a registry record. Descriptive fields that the registry does not
    keep (``chainage_m``, ``heading_deg``) stay in the file only."""
    cameras: list[Camera] = []
    seen: set[str] = set()
    for section in CAMERA_SECTIONS:
        raws = data.get(section) or []
        if not isinstance(raws, list):
            problems.append(f"{section}: must be a list")
            continue
        for index, raw in enumerate(raws):
            label = _label(section, index, raw, "camera_id")
            if not isinstance(raw, dict):
                problems.append(f"{label}: must be an object")
                continue
            try:
                camera = Camera.model_validate({k: v for k, v in raw.items() if k in Camera.model_fields})
            except ValidationError as error:
                problems.append(f"{label}: {_describe(error)}")
                continue
            if camera.camera_id in seen:
                problems.append(f"{label}: duplicate camera_id {camera.camera_id}")
                continue
            seen.add(camera.camera_id)
            if camera.grid_id not in grid_ids:
                problems.append(f"{label}: grid_id {camera.grid_id} is not a grid in this file")
            elif camera.grid_id in boundaries and not geo.contains(
                boundaries[camera.grid_id], camera.lon, camera.lat
            ):
                problems.append(
                    f"{label}: position {[camera.lon, camera.lat]} is outside grid {camera.grid_id}"
                )
            cameras.append(camera)
    return cameras


def _department_users(data: dict[str, Any], users: dict[str, UserProfile], problems: list[str]) -> None:
    """Each department's liaison (role ``department``) and the population data stewards."""
    accounts: list[tuple[str, object, Role, str | None]] = []
    for i, department in enumerate(data.get("departments") or []):
        if not isinstance(department, dict):
            problems.append(f"departments[{i}]: must be an object")
            continue
        accounts.append(
            (
                f"departments[{i}].liaison",
                department.get("liaison"),
                Role.DEPARTMENT,
                department.get("department_id"),
            )
        )
    for i, steward in enumerate(data.get("data_stewards") or []):
        accounts.append((f"data_stewards[{i}]", steward, Role.DATA_STEWARD, None))
    for label, raw, role, department_id in accounts:
        if not isinstance(raw, dict):
            problems.append(f"{label}: must be an object")
            continue
        try:
            user = UserProfile(
                username=raw.get("user_id"),
                name=raw.get("name"),
                phone=raw.get("phone"),
                email=raw.get("email"),
                roles=[role],
                department_id=department_id,
            )
        except ValidationError as error:
            problems.append(f"{label}: {_describe(error)}")
            continue
        if user.username in users:
            problems.append(f"{label}: duplicate user_id {user.username}")
            continue
        users[user.username] = user


def _district_users(data: dict[str, Any], grids: list[Grid], problems: list[str]) -> list[UserProfile]:
    """The people of the district as user registry records (see the module doc)."""
    users: dict[str, UserProfile] = {ADMIN.username: ADMIN}
    centre = data.get("command_centre")
    contacts: list[tuple[str, object, Role]] = []
    if isinstance(centre, dict):
        dispatchers = centre.get("dispatchers") or []
        if isinstance(dispatchers, list):
            contacts += [
                (f"command_centre.dispatchers[{i}]", d, Role.DISPATCHER) for i, d in enumerate(dispatchers)
            ]
        else:
            problems.append("command_centre.dispatchers: must be a list")
    technicians = data.get("technicians") or []
    if isinstance(technicians, list):
        contacts += [(f"technicians[{i}]", t, Role.TECHNICIAN) for i, t in enumerate(technicians)]
    else:
        problems.append("technicians: must be a list")
    for label, raw, role in contacts:
        if not isinstance(raw, dict):
            problems.append(f"{label}: must be an object")
            continue
        try:
            user = UserProfile(
                username=raw.get("user_id"),
                name=raw.get("name"),
                phone=raw.get("phone"),
                email=raw.get("email"),
                roles=[role],
            )
        except ValidationError as error:
            problems.append(f"{label}: {_describe(error)}")
            continue
        if user.username in users:
            problems.append(f"{label}: duplicate user_id {user.username}")
            continue
        users[user.username] = user
    _department_users(data, users, problems)
    for grid in grids:
        for worker in grid.workers:
            known = users.get(worker.worker_id)
            if known is not None and Role.GRID_WORKER in known.roles:
                users[worker.worker_id] = known.model_copy(
                    update={"grid_ids": [*known.grid_ids, grid.grid_id]}
                )
                continue
            if known is not None:
                problems.append(
                    f"grids ({grid.grid_id}): worker_id {worker.worker_id} is another person's user id"
                )
                continue
            try:
                users[worker.worker_id] = UserProfile(
                    username=worker.worker_id,
                    name=worker.name,
                    phone=worker.phone,
                    email=worker.email,
                    webhook_url=worker.webhook_url,
                    roles=[Role.GRID_WORKER],
                    grid_ids=[grid.grid_id],
                )
            except ValidationError as error:
                problems.append(f"grids ({grid.grid_id}) worker {worker.worker_id}: {_describe(error)}")
    return list(users.values())


def read_district(path: str | Path) -> District:
    """Read and validate a seed file."""
    source = str(path)
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SeedDataError(source, ["file not found"]) from None
    except json.JSONDecodeError as error:
        raise SeedDataError(source, [f"not valid JSON: {error}"]) from None
    return validate_district(data, source)


# --- loading ------------------------------------------------------------------------------------


def load_district(
    path: str | Path,
    table_name: str,
    topic_arn: str | None = None,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> SeedReport:
    """Load a seed file into ``table_name``; with ``topic_arn``, also subscribe the grid workers.

    Raises :class:`SeedDataError` (before writing anything) when a record is invalid.
    """
    started = time.perf_counter()
    district = read_district(path)
    # Forms first: each new form is one transaction, and the emulator (moto) copies the whole
    # table per transaction, so they are cheapest while the table is still small.
    load_forms(table_name)  # issue 6: the seeded form definitions (events/seed/forms/*.json)
    written = DeviceRepository(table_name).put_many(
        district.devices, district.grids, boundaries=district.boundaries, progress=progress
    )
    report = SeedReport(
        source=district.source,
        version=district.version,
        seed=district.seed,
        grids=written.grids,
        devices_created=written.created,
        devices_updated=written.updated,
        devices_unchanged=written.unchanged,
        cameras_in_file=district.cameras,
    )
    GridAreaRepository(table_name).invalidate()  # boundaries may have changed
    for camera_outcome in CameraRepository(table_name).put_many(district.camera_records).values():
        if camera_outcome == "created":
            report.cameras_created += 1
        elif camera_outcome == "updated":
            report.cameras_updated += 1
        else:
            report.cameras_unchanged += 1
    people = UserRepository(table_name).put_many(district.users)
    load_catalogue(table_name)  # issue 8: the data catalogue (events/seed/catalogue.json)
    for outcome in people.values():
        if outcome == "created":
            report.users_created += 1
        elif outcome == "updated":
            report.users_updated += 1
        else:
            report.users_unchanged += 1
    if topic_arn:
        existing = TopicSubscriptions(topic_arn)
        for grid in district.grids:
            for worker in grid.workers:
                report.subscriptions += subscribe_worker(topic_arn, worker, grid.grid_id, existing=existing)
    report.elapsed_s = time.perf_counter() - started
    return report


def _stderr_progress(done: int, total: int) -> None:
    end = "\n" if done >= total else ""
    print(f"\rwriting devices: {done}/{total}", end=end, file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    from smartzone.settings import get_settings

    parser = argparse.ArgumentParser(
        prog="python -m tools.seed",
        description="Load the demo district (grids, devices, cameras, users) into the table.",
    )
    parser.add_argument("--file", type=Path, default=DEFAULT_PATH, help="seed file (default: %(default)s)")
    parser.add_argument("--subscribe", action="store_true", help="subscribe grid workers to the topic")
    parser.add_argument("--table", help="table name (default: $TABLE_NAME)")
    parser.add_argument("--topic-arn", help="notifications topic (default: $NOTIFICATIONS_TOPIC_ARN)")
    args = parser.parse_args(argv)
    settings = get_settings()
    table = args.table or settings.table_name
    topic = (args.topic_arn or settings.notifications_topic_arn) if args.subscribe else None
    if args.subscribe and not topic:
        print("--subscribe needs --topic-arn or NOTIFICATIONS_TOPIC_ARN", file=sys.stderr)
        return 2
    try:
        report = load_district(args.file, table, topic, progress=_stderr_progress)
    except SeedDataError as error:
        print(error, file=sys.stderr)
        return 1
    print(report.summary(), file=sys.stderr)
    for outcome in report.subscriptions:
        if outcome.status == "conflict":
            print(f"  subscription conflict for {outcome.grid_id}: {outcome.detail}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
