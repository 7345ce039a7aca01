"""The reconciler against moto (in process): what the event flow gave up on or lost ends READY
or FAILED, and nothing it does twice changes anything."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
from media_pipeline.model import WAITING_ATTRIBUTES, media_id, waiting_attributes
from media_pipeline.values import now_iso

from tests.integration.conftest import MEDIA_TABLE, UPLOADS
from tests.integration.test_reliability import KEY, record_half_without_ready
from tests.integration.test_workers import PHOTO, event_for, invoke, item


@pytest.fixture
def stack(aws, load_handler):
    return load_handler("thumbnail"), load_handler("metadata"), load_handler("reconciler")


def operator_script(name: str) -> Any:
    """A module of scripts/ (operator commands are scripts, not part of the package)."""
    path = Path(__file__).resolve().parents[2] / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def queue_url(aws, name: str) -> str:
    return aws.sqs.get_queue_url(QueueName=name)["QueueUrl"]


def depth(aws, name: str) -> int:
    attributes = aws.sqs.get_queue_attributes(
        QueueUrl=queue_url(aws, name),
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(v) for v in attributes.values())


def take(aws, name: str) -> list[dict]:
    """Every job waiting in a queue (removed), as the events the workers would receive."""
    url, bodies = queue_url(aws, name), []
    while messages := aws.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get(
        "Messages", []
    ):
        for message in messages:
            bodies.append(json.loads(message["Body"]))
            aws.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return bodies


def reconcile(reconciler, lambda_context, **options) -> dict:
    return reconciler.lambda_handler(options, lambda_context)


def test_a_job_in_a_dead_letter_queue_ends_its_item_failed_and_stays_for_the_redrive(
    aws, stack, lambda_context
):
    # GIVEN the renditions half done and the metadata job dead-lettered without a word (killed)
    thumbnail, metadata, reconciler = stack
    etag = aws.put_upload(KEY, PHOTO)
    event = event_for(aws, KEY, etag)
    invoke(thumbnail, lambda_context, event)
    aws.sqs.send_message(QueueUrl=queue_url(aws, "metadata-dlq"), MessageBody=json.dumps(event))

    # WHEN the reconciler runs (twice)
    first = reconcile(reconciler, lambda_context)
    second = reconcile(reconciler, lambda_context, sweeps=["dead_letters"])

    # THEN the item is FAILED processing_error (retryable) once, and the job is still there
    record = item(aws, KEY)
    assert record["status"] == "FAILED"
    assert record["failure"]["reason"] == "processing_error"
    assert record["failure"]["stage"] == "metadata"
    assert record["failure"]["retryable"] is True
    assert not set(WAITING_ATTRIBUTES) & set(record)  # out of the waiting index
    assert first["actions"] == {"failed": 1}
    assert second["actions"] == {"dead_letter_already_settled": 1}  # and nothing written
    assert item(aws, KEY) == record
    assert depth(aws, "metadata-dlq") == 1

    # AND a redrive of the job completes the version
    assert invoke(metadata, lambda_context, event) == {"batchItemFailures": []}
    assert item(aws, KEY)["status"] == "READY"


def test_a_dead_letter_whose_halves_are_both_in_ends_ready(aws, stack, lambda_context):
    thumbnail, _, reconciler = stack
    etag = aws.put_upload(KEY, PHOTO)
    event = event_for(aws, KEY, etag)
    invoke(thumbnail, lambda_context, event)
    record_half_without_ready(aws, KEY, "metadata", etag)  # killed after its write, every time
    aws.sqs.send_message(QueueUrl=queue_url(aws, "metadata-dlq"), MessageBody=json.dumps(event))

    assert reconcile(reconciler, lambda_context)["actions"] == {"ready": 1}
    assert item(aws, KEY)["status"] == "READY"


def test_a_dead_letter_of_a_done_half_does_not_fail_the_other_half_still_at_work(
    aws, stack, lambda_context
):
    thumbnail, _, reconciler = stack
    event = event_for(aws, KEY, aws.put_upload(KEY, PHOTO))
    invoke(thumbnail, lambda_context, event)  # done, but its message was dead-lettered anyway
    aws.sqs.send_message(QueueUrl=queue_url(aws, "thumbnail-dlq"), MessageBody=json.dumps(event))

    reconcile(reconciler, lambda_context, sweeps=["dead_letters"])

    assert item(aws, KEY)["status"] == "PROCESSING"  # the metadata job may still be retried


def test_a_stuck_item_gets_its_missing_half_again_then_fails(aws, stack, lambda_context):
    # GIVEN a version whose metadata event never arrived
    thumbnail, metadata, reconciler = stack
    event = event_for(aws, KEY, aws.put_upload(KEY, PHOTO))
    invoke(thumbnail, lambda_context, event)

    # WHEN the reconciler finds it stuck: its missing half is sent again, up to MAX_REQUEUES (2)
    for attempt in (1, 2):
        assert reconcile(reconciler, lambda_context, stuck_after_seconds=0)["actions"] == {
            "requeued": 1
        }
        assert item(aws, KEY)["reconciled"] == attempt
    assert depth(aws, "thumbnail-jobs") == 0
    jobs = take(aws, "metadata-jobs")
    assert len(jobs) == 2

    # THEN the re-sent job completes it, like the original event would have
    assert invoke(metadata, lambda_context, *jobs) == {"batchItemFailures": []}
    assert item(aws, KEY)["status"] == "READY"
    assert reconcile(reconciler, lambda_context, stuck_after_seconds=0)["actions"] == {}


def test_a_stuck_item_fails_once_its_requeues_are_spent(aws, stack, lambda_context):
    thumbnail, _, reconciler = stack
    invoke(thumbnail, lambda_context, event_for(aws, KEY, aws.put_upload(KEY, PHOTO)))
    for _ in range(2):
        reconcile(reconciler, lambda_context, stuck_after_seconds=0)

    assert reconcile(reconciler, lambda_context, stuck_after_seconds=0)["actions"] == {"failed": 1}
    failure = item(aws, KEY)["failure"]
    assert (failure["reason"], failure["stage"], failure["retryable"]) == (
        "processing_error",
        "metadata",
        True,
    )


def test_an_upload_whose_event_never_came_is_found_and_processed(aws, stack, lambda_context):
    # GIVEN an upload request (AWAITING_UPLOAD) whose object arrived without an event
    thumbnail, metadata, reconciler = stack
    image_id = "a" * 26
    key = f"uploads/{image_id}/cat.jpg"
    aws.dynamodb.put_item(
        TableName=MEDIA_TABLE,
        Item={
            "id": {"S": image_id},
            "status": {"S": "AWAITING_UPLOAD"},
            **{k: {"S": v} for k, v in waiting_attributes(image_id, now_iso()).items()},
            "bucket": {"S": UPLOADS},
            "key": {"S": key},
            "created_at": {"S": now_iso()},
            "updated_at": {"S": now_iso()},
        },
    )
    aws.put_upload(key, PHOTO)

    # WHEN the reconciler runs, THEN both halves get the job and the image ends READY
    assert reconcile(reconciler, lambda_context, stuck_after_seconds=0)["actions"] == {
        "requeued": 1
    }
    invoke(thumbnail, lambda_context, *take(aws, "thumbnail-jobs"))
    invoke(metadata, lambda_context, *take(aws, "metadata-jobs"))
    assert item(aws, key)["status"] == "READY"


def test_orphans_are_enqueued_until_they_have_an_item(aws, stack, lambda_context):
    thumbnail, metadata, reconciler = stack
    aws.put_upload(KEY, PHOTO)  # no event ever, no item

    report = reconcile(reconciler, lambda_context, sweeps=["orphans"])
    assert report["actions"] == {"requeued_orphan": 1}
    invoke(thumbnail, lambda_context, *take(aws, "thumbnail-jobs"))
    invoke(metadata, lambda_context, *take(aws, "metadata-jobs"))
    assert item(aws, KEY)["status"] == "READY"

    assert reconcile(reconciler, lambda_context, sweeps=["orphans"])["actions"] == {}


def test_new_content_without_its_event_replaces_the_old(aws, stack, lambda_context):
    thumbnail, metadata, reconciler = stack
    first = event_for(aws, KEY, aws.put_upload(KEY, PHOTO))
    invoke(thumbnail, lambda_context, first)
    invoke(metadata, lambda_context, first)
    newer = aws.put_upload(KEY, PHOTO + b"\0")  # its event is lost

    reconcile(reconciler, lambda_context, sweeps=["orphans"])
    invoke(thumbnail, lambda_context, *take(aws, "thumbnail-jobs"))
    invoke(metadata, lambda_context, *take(aws, "metadata-jobs"))

    assert (item(aws, KEY)["status"], item(aws, KEY)["etag"]) == ("READY", newer)


def test_a_dry_run_changes_nothing(aws, stack, lambda_context):
    thumbnail, _, reconciler = stack
    invoke(thumbnail, lambda_context, event_for(aws, KEY, aws.put_upload(KEY, PHOTO)))

    report = reconcile(reconciler, lambda_context, stuck_after_seconds=0, dry_run=True)

    assert report["actions"] == {"would_requeue": 1}
    assert report["images"] == {"would_requeue": [media_id(UPLOADS, KEY)]}
    assert "reconciled" not in item(aws, KEY)
    assert depth(aws, "metadata-jobs") == 0


def test_bad_options_are_refused_with_their_reason(stack, lambda_context):
    *_, reconciler = stack
    with pytest.raises(ValueError, match="unknown sweeps"):
        reconcile(reconciler, lambda_context, sweeps=["everything"])
    with pytest.raises(ValueError, match="stuck_after_seconds"):
        reconcile(reconciler, lambda_context, stuck_after_seconds="soon")


def test_a_redrive_moves_dead_letters_back_and_completes_the_image(aws, stack, lambda_context):
    # GIVEN a job dead-lettered and its item FAILED by the reconciler
    redrive = operator_script("recover").redrive

    thumbnail, metadata, reconciler = stack
    event = event_for(aws, KEY, aws.put_upload(KEY, PHOTO))
    invoke(thumbnail, lambda_context, event)
    aws.sqs.send_message(QueueUrl=queue_url(aws, "metadata-dlq"), MessageBody=json.dumps(event))
    reconcile(reconciler, lambda_context)
    assert item(aws, KEY)["status"] == "FAILED"

    # WHEN it is redriven (moto has no message move tasks: moved by receive/send/delete)
    result = redrive(aws.sqs, queue_url(aws, "metadata-dlq"), queue_url(aws, "metadata-jobs"))

    # THEN the DLQ is empty, and the job, processed again, reopens and completes the image
    assert "moved 1 message" in result
    assert depth(aws, "metadata-dlq") == 0
    assert invoke(metadata, lambda_context, *take(aws, "metadata-jobs")) == {
        "batchItemFailures": []
    }
    assert item(aws, KEY)["status"] == "READY"
