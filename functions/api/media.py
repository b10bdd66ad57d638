"""Short-lived links to an order's detection media (camera snapshots, drone before/after images).

The order keeps S3 keys (``snapshots/…`` in the private snapshots bucket); ``GET /v1/workorders/{id}``
answers presigned GET links valid for ``snapshot_link_ttl_s`` (15 minutes): computed locally, no
call to S3, and never stored. Without a snapshots bucket configured, no links are given.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from smartzone.domain.timeutil import now_ms, to_iso
from smartzone.domain.workorders import WorkOrder
from smartzone.repositories.vendor_webhook import SnapshotStore
from smartzone.settings import get_settings


class MediaLink(BaseModel):
    kind: Literal["snapshot", "before", "after"]
    key: str
    url: str
    expires_at: str


def media_links(order: WorkOrder) -> list[MediaLink]:
    settings = get_settings()
    summary = order.detection
    if summary is None or not settings.snapshots_bucket:
        return []
    wanted: list[tuple[Literal["snapshot", "before", "after"], str]] = [
        ("snapshot", k) for k in summary.snapshots
    ]
    if summary.before_image:
        wanted.append(("before", summary.before_image))
    if summary.after_image:
        wanted.append(("after", summary.after_image))
    store = SnapshotStore(settings.snapshots_bucket)
    ttl = settings.snapshot_link_ttl_s
    expires = to_iso(now_ms() + ttl * 1000)
    return [
        MediaLink(kind=kind, key=key, url=store.link(key, ttl), expires_at=expires) for kind, key in wanted
    ]
