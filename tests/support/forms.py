"""Shared set-up of the forms tests: department people, two grids with communities, the seeded
forms, the exports bucket and queue, and the ID-number HMAC key."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from smartzone.domain.identity import Caller
from smartzone.domain.users import UserProfile

EXPORTS_BUCKET = "smartzone-exports-test"
ID_HMAC_SECRET = "test-id-hmac-secret"
RESIDENT_ID = "11010519491231002X"
"""A valid GB 11643 number (the standard's own example)."""


@dataclass(frozen=True)
class FormPeople:
    civil: Caller
    health: Caller
    fire: Caller
    gw_g03: Caller
    gw_g04: Caller
    gw_g06: Caller
    gw_g07: Caller
    tech: Caller
    admin: Caller
    dispatcher: Caller


FORM_PEOPLE = FormPeople(
    civil=Caller.of("sub-civil", "dept-civil-affairs", ["department"]),
    health=Caller.of("sub-health", "dept-health", ["department"]),
    fire=Caller.of("sub-fire", "dept-fire-rescue", ["department"]),
    gw_g03=Caller.of("sub-gw-g03", "gw-g03-01", ["grid_worker"]),
    gw_g04=Caller.of("sub-gw-g04", "gw-g04-01", ["grid_worker"]),
    gw_g06=Caller.of("sub-gw-g06", "gw-g06-01", ["grid_worker"]),
    gw_g07=Caller.of("sub-gw-g07", "gw-g07-01", ["grid_worker"]),
    tech=Caller.of("sub-tech", "tech-07", ["technician"]),
    admin=Caller.of("sub-admin", "admin-01", ["admin"]),
    dispatcher=Caller.of("sub-disp", "disp-01", ["dispatcher"]),
)

FORM_PROFILES = [
    UserProfile(
        username="dept-civil-affairs",
        name="民政局联络员",
        roles=["department"],
        department_id="civil-affairs",
    ),
    UserProfile(username="dept-health", name="卫健委联络员", roles=["department"], department_id="health"),
    UserProfile(username="gw-g06-01", name="周敏", roles=["grid_worker"], grid_ids=["G06"]),
    UserProfile(username="gw-g07-01", name="吴刚", roles=["grid_worker"], grid_ids=["G07"]),
    UserProfile(
        username="dept-fire-rescue", name="消防救援联络员", roles=["department"], department_id="fire-rescue"
    ),
]

GRIDS = [
    ("G03", "临江社区第三网格", "临江社区"),
    ("G04", "临江社区第四网格", "临江社区"),
    ("G06", "科创社区第六网格", "科创社区"),
    ("G07", "科创社区第七网格", "科创社区"),
]


def setup_forms(table_name: str) -> dict[str, Any]:
    """Write people, grids and the seeded forms; create the exports bucket and queue."""
    from smartzone.domain.registry import Grid
    from smartzone.repositories.clients import client
    from smartzone.repositories.devices import DeviceRepository
    from smartzone.repositories.users import UserRepository
    from tools.seed_forms import load_forms

    users = UserRepository(table_name)
    for profile in FORM_PROFILES:
        users.put(profile)
    devices = DeviceRepository(table_name)
    for grid_id, name, community in GRIDS:
        devices.put_grid(Grid(grid_id=grid_id, name=name, community=community))
    client("s3").create_bucket(
        Bucket=EXPORTS_BUCKET, CreateBucketConfiguration={"LocationConstraint": "cn-north-1"}
    )
    queue = client("sqs").create_queue(QueueName="smartzone-export-jobs")["QueueUrl"]
    return {"forms": load_forms(table_name), "queue_url": queue}
