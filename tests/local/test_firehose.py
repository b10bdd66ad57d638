"""The local Firehose delivery writes the archive the way the cloud stream does."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime

from infra.local.firehose import FirehoseToS3, render_prefix
from infra.local.template import DeliveryStreamSpec
from smartzone.repositories.clients import client

PREFIX = "raw/manhole/year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/"


def spec(**over: object) -> DeliveryStreamSpec:
    values: dict[str, object] = {
        "logical_id": "Stream",
        "name": None,
        "bucket_id": "Bucket",
        "prefix": PREFIX,
        "error_prefix": "errors/",
        "compression": "GZIP",
        "buffer_interval_s": 60,
        "buffer_size_mb": 5,
        **over,
    }
    return DeliveryStreamSpec(**values)  # type: ignore[arg-type]


def test_given_the_archive_prefix_when_rendered_then_date_partitions_in_utc() -> None:
    at = datetime(2026, 11, 29, 16, 5, tzinfo=UTC)
    assert render_prefix(PREFIX, at) == "raw/manhole/year=2026/month=11/day=29/"


def test_given_records_when_the_buffer_interval_passes_then_one_gzip_object_under_the_date_prefix(
    aws: None,
) -> None:
    s3 = client("s3")
    s3.create_bucket(Bucket="archive", CreateBucketConfiguration={"LocationConstraint": "cn-north-1"})
    now = [datetime(2026, 11, 29, 16, 5, tzinfo=UTC).timestamp()]
    delivery = FirehoseToS3(spec(), "SmartZone-Raw", "archive", s3, clock=lambda: now[0])
    delivery.put_record(b'{"tilt_deg": 2.5}\n')
    delivery.put_record(b'{"tilt_deg": 3.0}\n')
    delivery.flush_if_due()
    assert s3.list_objects_v2(Bucket="archive").get("KeyCount") == 0, "still buffering"

    now[0] += 61
    delivery.flush_if_due()

    (obj,) = s3.list_objects_v2(Bucket="archive")["Contents"]
    assert obj["Key"].startswith("raw/manhole/year=2026/month=11/day=29/SmartZone-Raw-1-2026-11-29-16-06-")
    body = gzip.decompress(s3.get_object(Bucket="archive", Key=obj["Key"])["Body"].read())
    assert body == b'{"tilt_deg": 2.5}\n{"tilt_deg": 3.0}\n'
