"""Every upload ends READY or FAILED, whatever order of crashes, kills and timeouts the workers
meet: READY is derived from what is stored, and a worker gives back what it cannot finish."""

from __future__ import annotations

import json
from dataclasses import dataclass

from botocore.exceptions import ClientError
from media_pipeline.model import media_id
from media_pipeline.pipeline.sqs import suspects_last

from tests.integration.conftest import MEDIA_TABLE, count_calls
from tests.integration.test_workers import PHOTO, event_for, invoke, item
from tests.support import sqs_record

KEY = "uploads/a/photo.jpg"


def record_half_without_ready(aws, key: str, attribute: str, etag: str) -> None:
    """What a worker killed between recording its half and marking READY leaves behind."""
    aws.dynamodb.update_item(
        TableName=MEDIA_TABLE,
        Key={"id": {"S": media_id("uploads-bucket", key)}},
        UpdateExpression="SET #half = :value, #half_etag = :etag",
        ExpressionAttributeNames={"#half": attribute, "#half_etag": f"{attribute}_etag"},
        ExpressionAttributeValues={":value": {"M": {}}, ":etag": {"S": etag}},
    )


def test_a_redelivery_finishes_a_version_whose_worker_died_before_ready(
    aws, load_handler, lambda_context
):
    # GIVEN the renditions half done, and the metadata worker killed after writing its half
    thumbnail, metadata = load_handler("thumbnail"), load_handler("metadata")
    etag = aws.put_upload(KEY, PHOTO)
    event = event_for(aws, KEY, etag)
    invoke(thumbnail, lambda_context, event)
    record_half_without_ready(aws, KEY, "metadata", etag)
    assert item(aws, KEY)["status"] == "PROCESSING"

    # WHEN its message comes back (the invocation died, so it was never deleted)
    assert invoke(metadata, lambda_context, event, receive_count=2) == {"batchItemFailures": []}

    # THEN the version is READY, without the half being done again
    assert item(aws, KEY)["status"] == "READY"
    assert item(aws, KEY)["metadata"] == {}


def test_the_last_half_and_ready_are_one_write(aws, load_handler, lambda_context):
    # the usual order: the metadata half first, then the renditions half
    thumbnail, metadata = load_handler("thumbnail"), load_handler("metadata")
    etag = aws.put_upload(KEY, PHOTO)
    event = event_for(aws, KEY, etag)
    invoke(metadata, lambda_context, event)
    updates = count_calls(thumbnail.worker._table._client, "UpdateItem")

    invoke(thumbnail, lambda_context, event)

    (write,) = updates  # the half, its ETag and READY: one conditional write
    names = set(write["ExpressionAttributeNames"].values())
    assert {"renditions", "renditions_etag", "status", "ready_at"} <= names
    assert {"S": "READY"} in write["ExpressionAttributeValues"].values()
    assert item(aws, KEY)["status"] == "READY"


def test_a_half_that_finds_the_other_in_first_decides_again_from_what_its_write_returns(
    aws, load_handler, lambda_context
):
    # the unusual order: the metadata half writes as if it were first, and is not
    thumbnail, metadata = load_handler("thumbnail"), load_handler("metadata")
    etag = aws.put_upload(KEY, PHOTO)
    event = event_for(aws, KEY, etag)
    invoke(thumbnail, lambda_context, event)
    updates = count_calls(metadata.worker._table._client, "UpdateItem")
    reads = count_calls(metadata.worker._table._client, "GetItem")

    invoke(metadata, lambda_context, event)

    assert reads == []  # a first delivery of the cheap half does not read the item first
    guessed, decided = updates  # the guess fails and returns the item; the half and READY
    assert {"S": "READY"} not in guessed["ExpressionAttributeValues"].values()
    assert {"S": "READY"} in decided["ExpressionAttributeValues"].values()
    assert item(aws, KEY)["status"] == "READY"


@dataclass
class ShrinkingContext:
    """A Lambda context whose remaining time runs down by ``step_ms`` at every look."""

    remaining_ms: int
    step_ms: int
    function_name: str = "thumbnail"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:thumbnail"
    aws_request_id: str = "request"

    def get_remaining_time_in_millis(self) -> int:
        self.remaining_ms = max(0, self.remaining_ms - self.step_ms)
        return self.remaining_ms


def test_records_that_would_outlive_the_invocation_are_given_back_untouched(aws, load_handler):
    thumbnail = load_handler("thumbnail")
    keys = [f"uploads/{n}/photo.jpg" for n in range(3)]
    records = [sqs_record(event_for(aws, k, aws.put_upload(k, PHOTO))) for k in keys]

    # 1.5 s left when the second record would start: less than the 2 s minimum
    response = thumbnail.lambda_handler(
        {"Records": records}, ShrinkingContext(remaining_ms=3000, step_ms=1500)
    )

    given_back = {f["itemIdentifier"] for f in response["batchItemFailures"]}
    assert given_back == {records[1]["messageId"], records[2]["messageId"]}
    assert item(aws, keys[0])["renditions_etag"]
    assert aws.media_item(media_id("uploads-bucket", keys[1])) is None  # not even started
    assert aws.media_item(media_id("uploads-bucket", keys[2])) is None


def test_a_last_delivery_is_tried_however_little_time_is_left(aws, load_handler):
    thumbnail = load_handler("thumbnail")
    keys = [f"uploads/{n}/photo.jpg" for n in range(2)]
    records = [
        sqs_record(event_for(aws, k, aws.put_upload(k, PHOTO)), receive_count=3) for k in keys
    ]

    response = thumbnail.lambda_handler(
        {"Records": records}, ShrinkingContext(remaining_ms=2000, step_ms=500)
    )

    assert response == {"batchItemFailures": []}
    assert all(item(aws, k)["renditions_etag"] for k in keys)


def test_records_that_came_back_are_processed_after_the_fresh_ones():
    fresh, again, fresh_too, third_time = (
        sqs_record("a", receive_count=1),
        sqs_record("b", receive_count=2),
        sqs_record("c", receive_count=1),
        sqs_record("d", receive_count=3),
    )
    ordered = suspects_last([third_time, fresh, again, fresh_too])
    assert [r["body"] for r in ordered] == ["a", "c", "b", "d"]


def delivered(aws, queue: str, body: dict, *, times: int) -> dict:
    """``body`` sent to ``queue`` and received ``times`` times: the record Lambda would hand
    over on that delivery, with a real receipt handle."""
    url = queue_url(aws, queue)
    aws.sqs.send_message(QueueUrl=url, MessageBody=json.dumps(body))
    for n in range(1, times + 1):  # hidden for long after the last one, as while Lambda works
        (message,) = aws.sqs.receive_message(
            QueueUrl=url, VisibilityTimeout=0 if n < times else 900, MaxNumberOfMessages=1
        )["Messages"]
    record = sqs_record(body, receive_count=times, message_id=message["MessageId"])
    return {**record, "receiptHandle": message["ReceiptHandle"]}


def queue_url(aws, queue: str) -> str:
    return aws.sqs.get_queue_url(QueueName=queue)["QueueUrl"]


def visible_now(aws, queue: str) -> int:
    response = aws.sqs.receive_message(QueueUrl=queue_url(aws, queue), MaxNumberOfMessages=10)
    return len(response.get("Messages", []))


def throttle_renditions(thumbnail) -> None:
    def refuse(**_):
        raise ClientError({"Error": {"Code": "SlowDown", "Message": "slow down"}}, "PutObject")

    thumbnail.s3.meta.events.register("before-call.s3.PutObject", refuse)


def test_a_transient_failure_comes_back_after_a_backoff_not_the_visibility_timeout(
    aws, load_handler, lambda_context, monkeypatch
):
    monkeypatch.setenv(
        "JOBS_QUEUE_URL", aws.sqs.get_queue_url(QueueName="thumbnail-jobs")["QueueUrl"]
    )
    monkeypatch.setenv("RETRY_BASE_SECONDS", "600")
    thumbnail = load_handler("thumbnail")
    throttle_renditions(thumbnail)
    record = delivered(
        aws, "thumbnail-jobs", event_for(aws, KEY, aws.put_upload(KEY, PHOTO)), times=1
    )
    calls = count_calls(thumbnail.sqs, "ChangeMessageVisibility")

    response = thumbnail.lambda_handler({"Records": [record]}, lambda_context)

    assert response == {"batchItemFailures": [{"itemIdentifier": record["messageId"]}]}
    (call,) = calls
    assert 300 <= call["VisibilityTimeout"] <= 600  # about the base on a first delivery
    assert visible_now(aws, "thumbnail-jobs") == 0


def test_a_last_failed_delivery_and_a_record_given_back_come_back_at_once(
    aws, load_handler, monkeypatch
):
    monkeypatch.setenv(
        "JOBS_QUEUE_URL", aws.sqs.get_queue_url(QueueName="thumbnail-jobs")["QueueUrl"]
    )
    monkeypatch.setenv("RETRY_BASE_SECONDS", "600")
    thumbnail = load_handler("thumbnail")
    keys = [f"uploads/{n}/photo.jpg" for n in range(2)]
    bodies = [event_for(aws, k, aws.put_upload(k, PHOTO)) for k in keys]
    fresh = delivered(aws, "thumbnail-jobs", bodies[0], times=1)
    given_back = delivered(aws, "thumbnail-jobs", bodies[1], times=1)

    # the second record is given back for lack of time: it is due again right away
    response = thumbnail.lambda_handler(
        {"Records": [fresh, given_back]}, ShrinkingContext(remaining_ms=3000, step_ms=1500)
    )
    assert response == {"batchItemFailures": [{"itemIdentifier": given_back["messageId"]}]}
    assert visible_now(aws, "thumbnail-jobs") == 1

    # a last delivery that fails goes on to its DLQ without waiting out a backoff
    throttle_renditions(thumbnail)
    last = delivered(aws, "thumbnail-jobs", bodies[1], times=3)
    calls = count_calls(thumbnail.sqs, "ChangeMessageVisibility")
    thumbnail.lambda_handler({"Records": [last]}, ShrinkingContext(remaining_ms=60_000, step_ms=0))
    assert [c["VisibilityTimeout"] for c in calls] == [0]


def test_a_refused_visibility_change_leaves_the_queue_to_decide(
    aws, load_handler, lambda_context, monkeypatch
):
    monkeypatch.setenv(
        "JOBS_QUEUE_URL", aws.sqs.get_queue_url(QueueName="thumbnail-jobs")["QueueUrl"]
    )
    thumbnail = load_handler("thumbnail")
    throttle_renditions(thumbnail)
    record = sqs_record(event_for(aws, KEY, aws.put_upload(KEY, PHOTO)))  # a stale receipt handle

    response = thumbnail.lambda_handler({"Records": [record]}, lambda_context)

    assert response == {"batchItemFailures": [{"itemIdentifier": record["messageId"]}]}
