"""The pipeline end to end: upload -> EventBridge -> SQS -> workers -> DynamoDB -> stream ->
notifier -> SNS -> the app events queue, on the stack that `make up` builds."""

from __future__ import annotations

import io
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from media_pipeline.model import media_id
from PIL import Image

from tests.e2e.conftest import wait_until
from tests.support import record_latency, s3_event

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"
SCHEMA = json.loads((ROOT / "docs" / "schemas" / "media-event.v1.json").read_text())
GRACE_SECONDS = 4  # how long to keep listening for a second notification that must not come


def upload_and_wait(pipeline, sample: str, *, key: str | None = None, data: bytes | None = None):
    data = data if data is not None else (SAMPLES / sample).read_bytes()
    uploaded = pipeline.upload(data, Path(sample).name, key=key)
    notification = pipeline.wait_for([uploaded.id], timeout=90)[uploaded.id]
    record_latency(notification.received_at - uploaded.uploaded_at)
    return uploaded, notification


def test_an_upload_ends_ready_with_upright_renditions_and_exactly_one_notification(pipeline):
    # GIVEN a real photo stored sideways, with EXIF orientation 6
    # WHEN an app uploads it
    uploaded, notification = upload_and_wait(pipeline, "landscape-exif-rotated.jpg")

    # THEN one image.ready of the documented schema arrives, with filterable attributes
    body = notification.body
    Draft202012Validator(SCHEMA).validate(body)
    assert body["type"] == "image.ready"
    assert notification.attributes == {"type": "image.ready", "content_type": "image/jpeg"}
    assert body["image"]["etag"] == uploaded.etag

    # AND every rendition exists, upright (landscape), JPEG, without EXIF
    renditions = body["image"]["renditions"]
    assert {name: (r["width"], r["height"]) for name, r in renditions.items()} == {
        "large": (1024, 683),
        "medium": (512, 341),
        "small": (128, 85),
        "square": (256, 256),  # cropped (envs/local.tfvars)
    }
    for rendition in renditions.values():
        with Image.open(io.BytesIO(pipeline.download(rendition))) as image:
            assert image.format == "JPEG"
            assert image.size == (rendition["width"], rendition["height"])
            assert not image.getexif()

    # AND the media item is READY with its metadata
    item = pipeline.item(uploaded.id)
    assert item["status"] == "READY"
    assert (item["metadata"]["width"], item["metadata"]["height"]) == (1800, 1200)
    assert item["metadata"]["orientation"] == 6

    # AND no second notification follows
    pipeline.drain(GRACE_SECONDS)
    assert len(pipeline.notifications[uploaded.id]) == 1


JOB_QUEUES = ("thumbnail_jobs", "metadata_jobs")


def job_queues_empty(pipeline, outputs) -> bool:
    """No job waits or is in flight on either queue: every message taken was deleted, i.e. its
    handler succeeded with it (a failed one stays in flight for the visibility timeout)."""
    return all(pipeline.in_queue(outputs["queues"][q]) == 0 for q in JOB_QUEUES)


def redelivery_bound(pipeline, outputs) -> float:
    """The earliest a job queue can deliver a message again (its visibility timeout)."""
    return min(pipeline.visibility_timeout(outputs["queues"][q]) for q in JOB_QUEUES)


def test_the_same_s3_event_twice_does_no_second_render_and_no_second_notification(
    pipeline, outputs
):
    # GIVEN an image that is READY, its renditions written, and the job queues idle
    uploaded, _ = upload_and_wait(pipeline, "flower.webp")
    before = pipeline.item(uploaded.id)
    assert len(before["renditions"]) == 4

    def last_modified() -> dict[str, datetime]:
        return {
            name: pipeline.s3.head_object(Bucket=r["bucket"], Key=r["key"])["LastModified"]
            for name, r in before["renditions"].items()
        }

    written = last_modified()
    wait_until(lambda: job_queues_empty(pipeline, outputs), 60, "the job queues never emptied")
    # S3 keeps LastModified to the second: once a second has passed, a rewrite would show
    newest = max(written.values())
    wait_until(lambda: datetime.now(UTC) - newest > timedelta(seconds=1.5), 5, "clock stalled")

    # WHEN S3/EventBridge deliver its event again, as new messages on both queues
    event = s3_event(
        bucket=outputs["uploads_bucket"],
        key=uploaded.key,
        etag=uploaded.etag,
        size=before["size"],
        sequencer=before["sequencer"],
        etag_field="eTag",
    )
    for queue in JOB_QUEUES:
        pipeline.sqs.send_message(QueueUrl=outputs["queues"][queue], MessageBody=json.dumps(event))

    # THEN both workers take the messages and succeed (each is deleted, none is left in flight)
    wait_until(
        lambda: job_queues_empty(pipeline, outputs), 30, "the duplicate messages were not handled"
    )
    # ... without writing any rendition again or touching the item
    assert last_modified() == written
    assert pipeline.item(uploaded.id)["updated_at"] == before["updated_at"]
    pipeline.drain(GRACE_SECONDS)
    assert len(pipeline.notifications[uploaded.id]) == 1


def test_new_content_under_the_same_key_is_processed_again_and_replaces_the_old(pipeline):
    # GIVEN a key holding a landscape photo, READY
    key = pipeline.new_key("profile.jpg")
    first, first_note = upload_and_wait(pipeline, "landscape-exif-rotated.jpg", key=key)
    old_renditions = first_note.body["image"]["renditions"]

    # WHEN a portrait photo is uploaded under the same key
    second = pipeline.upload(
        (SAMPLES / "portrait-exif-rotated.jpg").read_bytes(), "profile.jpg", key=key
    )
    notes = pipeline.wait_for_count(second.id, 2)

    # THEN the item and a second notification describe the new content
    assert first.id == second.id
    assert first.etag != second.etag
    assert notes[1].body["image"]["etag"] == second.etag
    large = notes[1].body["image"]["renditions"]["large"]
    assert large["height"] > large["width"]  # portrait now
    item = pipeline.item(second.id)
    assert (item["status"], item["etag"]) == ("READY", second.etag)
    # AND the old version's renditions are gone
    for rendition in old_renditions.values():
        with pytest.raises(pipeline.s3.exceptions.ClientError):
            pipeline.s3.head_object(Bucket=rendition["bucket"], Key=rendition["key"])
    pipeline.drain(GRACE_SECONDS)
    assert len(pipeline.notifications[second.id]) == 2


def test_a_corrupt_file_ends_failed_with_its_reason_and_is_not_retried(pipeline, outputs):
    uploaded, notification = upload_and_wait(pipeline, "broken.jpg")

    assert notification.body["type"] == "image.failed"
    assert notification.attributes["type"] == "image.failed"
    assert notification.body["failure"]["reason"] == "corrupt"
    item = pipeline.item(uploaded.id)
    assert item["status"] == "FAILED"
    assert item["failure"]["reason"] == "corrupt"
    assert not item["failure"]["retryable"]

    # Each worker dealt with the object on its first delivery and its message was deleted: the
    # failure was announced, and both job queues emptied, before any message could have been
    # delivered a second time (the visibility timeout after the upload).
    bound = redelivery_bound(pipeline, outputs)
    assert notification.received_at - uploaded.uploaded_at < bound
    wait_until(
        lambda: job_queues_empty(pipeline, outputs),
        bound - (time.monotonic() - uploaded.uploaded_at),
        "a job of the corrupt file was still queued or in flight",
    )
    pipeline.drain(GRACE_SECONDS)
    assert len(pipeline.notifications[uploaded.id]) == 1


@pytest.mark.parametrize(
    "filename",
    ["my holiday photo.jpg", "a+b=c.jpg", "café ☕ 東京.jpg", "100% real%20name.jpg"],
    ids=["space", "plus", "unicode", "percent"],
)
def test_keys_with_spaces_plus_and_non_ascii_characters_work(pipeline, outputs, filename):
    uploaded, notification = upload_and_wait(pipeline, "cmyk.jpg", key=pipeline.new_key(filename))

    assert notification.body["type"] == "image.ready"
    assert notification.body["image"]["key"] == uploaded.key
    assert uploaded.id == media_id(outputs["uploads_bucket"], uploaded.key)


@pytest.mark.embedded_only("reads which batch held the poison from its invocation journal")
def test_one_poison_record_in_a_batch_leaves_the_others_unharmed(
    pipeline, outputs, local_stack, journal
):
    lam = pipeline.client("lambda")
    by_function = {
        m["FunctionArn"].rsplit(":", 1)[-1]: m
        for m in lam.list_event_source_mappings()["EventSourceMappings"]
    }
    # The metadata worker takes batches (the thumbnail worker one image per invocation).
    metadata_mapping = by_function[outputs["functions"]["metadata"]]
    mappings = {metadata_mapping["UUID"], by_function[outputs["functions"]["thumbnail"]]["UUID"]}
    batch_size = metadata_mapping["BatchSize"]
    assert batch_size > 1, "the metadata worker must take batches for this test to mean anything"

    def pollers_running(expected: bool) -> bool:
        status = local_stack.control("status")
        if expected:
            return all(
                key in status["mappings"] and status["mappings"][key]["running"] for key in mappings
            )
        return not mappings & (set(status["mappings"]) | set(status["stopping"]))

    # GIVEN the workers paused, and one batch worth of messages waiting: good uploads, then poison
    for uuid_ in mappings:
        lam.update_event_source_mapping(UUID=uuid_, Enabled=False)
    try:
        wait_until(lambda: pollers_running(False), 30, "the paused mappings were still polled")
        good = [
            pipeline.upload((SAMPLES / "flower.webp").read_bytes(), f"good-{i}.webp")
            for i in range(batch_size - 1)
        ]
        poison = pipeline.sqs.send_message(
            QueueUrl=outputs["queues"]["metadata_jobs"],
            MessageBody=json.dumps({"not": "an S3 event"}),
        )["MessageId"]
    finally:
        # WHEN the workers resume
        for uuid_ in mappings:
            lam.update_event_source_mapping(UUID=uuid_, Enabled=True)

    # THEN every good upload ends READY ...
    notes = pipeline.wait_for([u.id for u in good], timeout=90)
    assert {n.body["type"] for n in notes.values()} == {"image.ready"}
    # ... they were in the poison's batch, and only the poison was reported as failed
    batch = wait_until(
        lambda: next((e for e in journal() if poison in e["items"]), None),
        10,
        "no batch held the poison",
    )
    assert len(batch["items"]) == batch_size
    assert batch["error"] is None
    assert batch["failed_items"] == [poison]


@pytest.mark.embedded_only("makes S3 throttle with its fault API")
def test_a_transient_failure_is_retried_and_lands_in_the_dlq_after_max_receive_count(
    pipeline, outputs, faults
):
    # GIVEN the renditions bucket refusing writes for one image (S3 throttling: a transient error)
    key = pipeline.new_key(f"throttled-{uuid.uuid4().hex[:6]}.jpg")
    image_id = media_id(outputs["uploads_bucket"], key)
    faults(
        service="s3",
        method="PUT",
        path=f"^/{outputs['renditions_bucket']}/{image_id}/",
        status=503,
        code="SlowDown",
    )

    # WHEN it is uploaded
    pipeline.upload((SAMPLES / "cmyk.jpg").read_bytes(), "throttled.jpg", key=key)

    # THEN after max_receive_count attempts the upload ends FAILED, as a retryable processing error
    notification = pipeline.wait_for([image_id], timeout=outputs["job_retry_window_seconds"] + 60)[
        image_id
    ]
    failure = notification.body["failure"]
    assert (failure["stage"], failure["reason"]) == ("thumbnail", "processing_error")
    assert "SlowDown" in failure["message"]
    item = pipeline.item(image_id)
    assert item["failure"]["retryable"] is True

    # AND its message waits in the thumbnail DLQ, delivered exactly max_receive_count times
    def in_dlq() -> dict[str, Any] | None:
        response = pipeline.sqs.receive_message(
            QueueUrl=outputs["queues"]["thumbnail_dlq"],
            MaxNumberOfMessages=10,
            WaitTimeSeconds=1,
            VisibilityTimeout=0,
            MessageSystemAttributeNames=["ApproximateReceiveCount"],
        )
        for message in response.get("Messages", []):
            if json.loads(message["Body"]).get("detail", {}).get("object", {}).get("key") == key:
                return message
        return None

    message = wait_until(in_dlq, 60, "the failed job never reached the thumbnail DLQ")
    # moved on the receive after the last failed attempt, which counts once more
    assert int(message["Attributes"]["ApproximateReceiveCount"]) >= outputs["max_receive_count"]


@pytest.mark.embedded_only("LocalStack serves plain HTTP and does not enforce bucket policies")
def test_the_buckets_refuse_requests_that_do_not_use_tls(pipeline, local_stack, outputs):
    # The same emulator, over plain HTTP: the buckets' TLS-only policy (aws:SecureTransport) denies.
    plain = pipeline.session.client("s3", endpoint_url=local_stack.http_endpoint)
    for bucket in (outputs["uploads_bucket"], outputs["renditions_bucket"]):
        with pytest.raises(plain.exceptions.ClientError) as refused:
            plain.put_object(Bucket=bucket, Key="tls-check/plain.txt", Body=b"x")
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    # ... while the same request over TLS goes through
    pipeline.s3.put_object(Bucket=outputs["renditions_bucket"], Key="tls-check/tls.txt", Body=b"x")
    pipeline.s3.delete_object(Bucket=outputs["renditions_bucket"], Key="tls-check/tls.txt")
