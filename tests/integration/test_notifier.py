"""The notifier handler: media table stream records -> one SNS message per transition."""

from __future__ import annotations

import json
import uuid

from boto3.dynamodb.types import TypeSerializer
from media_pipeline.notifications import SCHEMA_VERSION

from tests.integration.conftest import count_calls

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
    publish_batch = notifier.sns.publish_batch
    calls = []

    def first_entry_refused(**kwargs):
        calls.append(kwargs)
        entries = kwargs["PublishBatchRequestEntries"]
        if len(calls) > 1:
            return publish_batch(**kwargs)
        response = publish_batch(**{**kwargs, "PublishBatchRequestEntries": entries[1:]})
        failed = {"Id": entries[0]["Id"], "Code": "InternalError", "SenderFault": False}
        return {**response, "Failed": [failed]}

    monkeypatch.setattr(notifier.sns, "publish_batch", first_entry_refused)
    records = [stream_record(PROCESSING, READY, 1), stream_record(PROCESSING, failed, 2)]

    # the first record's publish is refused: the stream is to resume from it, and the second
    # record's notification goes out all the same
    response = notifier.lambda_handler({"Records": records}, lambda_context)
    assert response == {"batchItemFailures": [{"itemIdentifier": "1"}]}
    [published] = aws.notifications()
    assert json.loads(published["Body"])["failure"]["reason"] == "unsupported"

    # the retry (from the first record, so both again) publishes only what was not yet out
    assert notifier.lambda_handler({"Records": records}, lambda_context) == {
        "batchItemFailures": []
    }
    [again] = aws.notifications()
    assert json.loads(again["Body"])["type"] == "image.ready"
    sent = [e["Message"] for c in calls for e in c["PublishBatchRequestEntries"]]
    assert len(sent) == 3  # two in the first request, the refused one again in the second


def test_a_batch_is_announced_with_a_few_requests_whatever_its_size(
    aws, load_handler, lambda_context
):
    notifier = load_handler("notifier")
    records = []
    for n in range(25):
        base = {**BASE, "id": f"img{n}"}
        records.append(
            stream_record(
                image(**base, status="PROCESSING", renditions_etag="e1"),
                image(**base, status="READY", renditions_etag="e1", metadata_etag="e1"),
                n + 1,
            )
        )
    calls = {
        operation: count_calls(client, operation)
        for client, operation in (
            (notifier.sns, "PublishBatch"),
            (notifier.sns, "Publish"),
            (notifier.announcer._dynamodb, "BatchGetItem"),
            (notifier.announcer._dynamodb, "BatchWriteItem"),
            (notifier.announcer._dynamodb, "PutItem"),
            (notifier.announcer._dynamodb, "UpdateItem"),
        )
    }

    assert notifier.lambda_handler({"Records": records}, lambda_context) == {
        "batchItemFailures": []
    }
    assert {op: len(c) for op, c in calls.items()} == {
        "PublishBatch": 3,  # 10 + 10 + 5
        "Publish": 0,
        "BatchGetItem": 1,
        "BatchWriteItem": 1,
        "PutItem": 0,
        "UpdateItem": 0,
    }
    assert len(aws.notifications()) == 25
