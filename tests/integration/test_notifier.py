"""The notifier handler: media table stream records -> one SNS message per transition."""

from __future__ import annotations

import json
import uuid

from boto3.dynamodb.types import TypeSerializer
from media_pipeline.notifications import SCHEMA_VERSION

serializer = TypeSerializer()
TABLE_ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/media"
STREAM_LABEL = "2026-11-23T00:00:00.000"


def image(**fields) -> dict:
    return {k: serializer.serialize(v) for k, v in fields.items()}


def stream_record(old: dict | None, new: dict | None, sequence: int) -> dict:
    record = {
        "eventID": uuid.uuid4().hex,
        "eventName": "MODIFY" if old and new else "INSERT" if new else "REMOVE",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {
            "ApproximateCreationDateTime": 1795399073,
            "Keys": {"id": {"S": "img1"}},
            "SequenceNumber": str(sequence),
            "SizeBytes": 100,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        },
        "eventSourceARN": f"{TABLE_ARN}/stream/{STREAM_LABEL}",
    }
    if old:
        record["dynamodb"]["OldImage"] = old
    if new:
        record["dynamodb"]["NewImage"] = new
    return record


BASE = {
    "id": "img1",
    "bucket": "uploads-bucket",
    "key": "uploads/a/cat.jpg",
    "etag": "e1",
    "size": 10,
    "content_type": "image/png",
}
PROCESSING = image(**BASE, status="PROCESSING", renditions_etag="e1")
READY = image(
    **BASE,
    status="READY",
    ready_at="2026-11-23T10:00:00.000Z",
    renditions_etag="e1",
    metadata_etag="e1",
    renditions={
        "small": {
            "bucket": "r",
            "key": "img1/e1/small.webp",
            "width": 128,
            "height": 96,
            "format": "WEBP",
            "content_type": "image/webp",
            "bytes": 1234,
        }
    },
    metadata={"width": 640, "height": 480, "format": "PNG"},
)


def test_a_transition_to_ready_publishes_one_documented_message(aws, load_handler, lambda_context):
    notifier = load_handler("notifier")
    response = notifier.lambda_handler(
        {"Records": [stream_record(PROCESSING, READY, 1)]}, lambda_context
    )

    assert response == {"batchItemFailures": []}
    [message] = aws.notifications()
    body = json.loads(message["Body"])
    assert body["schema_version"] == SCHEMA_VERSION
    assert body["type"] == "image.ready"
    assert body["image"]["renditions"]["small"]["width"] == 128
    assert {k: v["StringValue"] for k, v in message["MessageAttributes"].items()} == {
        "type": "image.ready",
        "content_type": "image/png",
    }


def test_redelivered_stream_records_do_not_publish_twice(aws, load_handler, lambda_context):
    notifier = load_handler("notifier")
    record = stream_record(PROCESSING, READY, 1)
    notifier.lambda_handler({"Records": [record]}, lambda_context)
    notifier.lambda_handler(
        {"Records": [record, stream_record(PROCESSING, READY, 2)]}, lambda_context
    )

    assert len(aws.notifications()) == 1


def test_changes_that_are_not_transitions_publish_nothing(aws, load_handler, lambda_context):
    notifier = load_handler("notifier")
    records = [
        stream_record(None, PROCESSING, 1),
        stream_record(READY, READY, 2),
        stream_record(READY, None, 3),
    ]

    assert notifier.lambda_handler({"Records": records}, lambda_context) == {
        "batchItemFailures": []
    }
    assert aws.notifications() == []


def test_a_publish_failure_fails_that_record_only(aws, load_handler, lambda_context, monkeypatch):
    notifier = load_handler("notifier")
    failed = image(
        **{**BASE, "id": "img2"},
        status="FAILED",
        failed_at="2026-11-23T10:00:00.000Z",
        failure={
            "stage": "metadata",
            "reason": "unsupported",
            "message": "PDF",
            "retryable": False,
        },
    )
    calls = []

    def flaky_publish(**kwargs):
        calls.append(kwargs)
        if len(calls) == 1:
            raise RuntimeError("network blip")
        return {"MessageId": "m"}

    monkeypatch.setattr(notifier.sns, "publish", flaky_publish)
    records = [stream_record(PROCESSING, READY, 1), stream_record(PROCESSING, failed, 2)]

    response = notifier.lambda_handler({"Records": records}, lambda_context)

    assert response == {"batchItemFailures": [{"itemIdentifier": "1"}]}
    assert json.loads(calls[1]["Message"])["failure"]["reason"] == "unsupported"
