"""Shared by the test tiers: the image corpus and its manifest, and builders of AWS events."""

from __future__ import annotations

import csv
import functools
import json
import uuid
from dataclasses import dataclass
from pathlib import Path

# The shared corpus sits beside the checkout, as in CI.
CORPUS = (Path(__file__).resolve().parents[1] / ".." / "shared" / "corpus").resolve()
CORPUS_MISSING = f"the shared image corpus is not at {CORPUS} (expected ../shared/corpus)"

# The environment of a function as Lambda would set it, for tests that import handlers in a fresh
# interpreter.
# upload -> notification latencies by kind of load, reported at the end of the run
# (tests/conftest.py; under pytest-xdist each worker hands its own to the controller)
LATENCIES: dict[str, list[float]] = {}
# What each embedded stack of this process recorded of IAM (GET /_devstack/iam, with "tests":
# the decision sequence number at which each test began), taken before the stack stops; the
# root conftest compares what was used with what each role is granted (devstack/iam_report.py).
IAM_SNAPSHOTS: list[dict] = []


def record_latency(seconds: float, load: str = "one upload at a time") -> None:
    LATENCIES.setdefault(load, []).append(seconds)


LAMBDA_ENV = {
    "AWS_REGION": "eu-west-1",
    "AWS_DEFAULT_REGION": "eu-west-1",
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_LAMBDA_FUNCTION_NAME": "cold-start",
    "POWERTOOLS_SERVICE_NAME": "cold-start",
    "POWERTOOLS_METRICS_NAMESPACE": "media-pipeline",
    "MEDIA_TABLE": "media",
    "IDEMPOTENCY_TABLE": "idempotency",
    "RENDITIONS_BUCKET": "renditions",
    "UPLOADS_BUCKET": "uploads",
    "UPLOAD_PREFIX": "uploads/",
    "EVENTS_TOPIC_ARN": "arn:aws:sns:eu-west-1:123456789012:media-events",
    "THUMBNAIL_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/thumbnail-jobs",
    "THUMBNAIL_DLQ_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/thumbnail-dlq",
    "METADATA_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/metadata-jobs",
    "METADATA_DLQ_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/metadata-dlq",
}


@dataclass(frozen=True)
class ManifestRow:
    file: str
    expect: str  # "render" or "reject:<reason>"
    why: str

    @property
    def reason(self) -> str | None:
        """The rejection reason the manifest expects; None when it expects renditions."""
        return None if self.expect == "render" else self.expect.removeprefix("reject:")


@functools.cache
def manifest() -> tuple[ManifestRow, ...]:
    """The corpus manifest; empty when the corpus is absent."""
    path = CORPUS / "manifest.csv"
    if not path.is_file():
        return ()
    with path.open(newline="") as handle:
        return tuple(
            ManifestRow(row["file"], row["expect"], row["why"]) for row in csv.DictReader(handle)
        )


def s3_event(
    *,
    bucket: str,
    key: str,
    etag: str,
    size: int,
    sequencer: str = "0055AED6DCD90281E5",
    etag_field: str = "etag",
    version_id: str | None = None,
) -> dict:
    """An S3 Object Created event as EventBridge delivers it (AWS's shape unless told)."""
    obj = {"key": key, "size": size, etag_field: etag, "sequencer": sequencer}
    return _s3_envelope(
        "Object Created",
        bucket,
        obj,
        version_id,
        time="2026-11-23T10:00:00Z",
        detail={"request-id": "N4N7GDK58NMKJ12R", "reason": "PutObject"},
    )


def s3_deleted_event(
    *, bucket: str, key: str, sequencer: str, version_id: str | None = None
) -> dict:
    """An S3 Object Deleted event as EventBridge delivers it (AWS's shape)."""
    return _s3_envelope(
        "Object Deleted",
        bucket,
        {"key": key, "sequencer": sequencer},
        version_id,
        time="2026-11-23T10:05:00Z",
        detail={
            "request-id": "N4N7GDK58NMKJ12S",
            "reason": "DeleteObject",
            "deletion-type": "Permanently Deleted",
        },
    )


def _s3_envelope(
    detail_type: str,
    bucket: str,
    obj: dict,
    version_id: str | None,
    *,
    time: str,
    detail: dict,
) -> dict:
    """The EventBridge envelope of an S3 event: ``obj`` is its ``detail.object`` (the version id
    added when there is one), ``detail`` what the event type adds to its ``detail``."""
    if version_id:
        obj = {**obj, "version-id": version_id}
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": "aws.s3",
        "account": "123456789012",
        "time": time,
        "region": "us-east-1",
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": obj,
            "requester": "123456789012",
            **detail,
        },
    }


def sqs_record(body: dict | str, *, receive_count: int = 1, message_id: str | None = None) -> dict:
    """One record of the SQS event Lambda delivers."""
    return {
        "messageId": message_id or str(uuid.uuid4()),
        "receiptHandle": "handle",
        "body": body if isinstance(body, str) else json.dumps(body),
        "attributes": {
            "ApproximateReceiveCount": str(receive_count),
            "SentTimestamp": "1795399073340",
            "SenderId": "AIDAIENQZJOLO23YVJ4VO",
            "ApproximateFirstReceiveTimestamp": "1795399073340",
        },
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:jobs",
        "awsRegion": "us-east-1",
    }
