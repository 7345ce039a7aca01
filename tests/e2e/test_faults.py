"""Every upload ends READY or FAILED, announced once, when workers die, hang or see events twice
and out of order: the fault tests of the reliability promise (README, "Guarantees")."""

from __future__ import annotations

import json
import random
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from media_pipeline.model import media_id
from media_pipeline.reconcile import peek_messages

from tests.e2e.conftest import wait_until
from tests.support import s3_event

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
PHOTO = (SAMPLES / "landscape-exif-rotated.jpg").read_bytes()
OTHER_PHOTO = (SAMPLES / "cmyk.jpg").read_bytes()
GRACE_SECONDS = 4  # how long to keep listening for a second notification that must not come


def dead_letters(pipeline, outputs, queue: str) -> list[dict[str, Any]]:
    """The events waiting in a DLQ, read without removing them."""
    return [json.loads(m["Body"]) for m in peek_messages(pipeline.sqs, outputs["queues"][queue])]


def dead_lettered_keys(pipeline, outputs, queue: str) -> set[str]:
    return {
        e.get("detail", {}).get("object", {}).get("key")
        for e in dead_letters(pipeline, outputs, queue)
    }


@pytest.mark.embedded_only("injects a fault into DynamoDB (its fault API)")
def test_a_worker_that_dies_at_the_ready_write_still_ends_the_image_ready_once(
    pipeline, outputs, faults
):
    # GIVEN every write that would mark an image READY failing, twice (the SDK's retry included):
    # the worker dies at that instruction and its message comes back
    faults(service="dynamodb", operation="UpdateItem", body='"READY"', times=2)

    # WHEN an image is uploaded
    uploaded = pipeline.upload(PHOTO, "ready-write.jpg")

    # THEN the redelivery finds both halves in and marks it READY, announced exactly once
    notification = pipeline.wait_for([uploaded.id], timeout=outputs["job_retry_window_seconds"])[
        uploaded.id
    ]
    assert notification.body["type"] == "image.ready"
    item = pipeline.item(uploaded.id)
    assert item["status"] == "READY"
    assert item["renditions_etag"] == item["metadata_etag"] == uploaded.etag
    pipeline.drain(GRACE_SECONDS)
    assert len(pipeline.notifications[uploaded.id]) == 1


@pytest.mark.slow
@pytest.mark.embedded_only("delays S3 reads with its fault API")
def test_an_image_whose_worker_is_cut_off_on_every_delivery_ends_failed_once_and_harms_no_other(
    pipeline, outputs, faults
):
    # GIVEN one image whose renditions take longer to write than the thumbnail worker may run,
    # so Lambda's timeout kills its worker on every delivery, before the handler can say why
    slow_key = pipeline.new_key(f"slow-{uuid.uuid4().hex[:6]}.jpg")
    slow_id = media_id(outputs["uploads_bucket"], slow_key)
    faults(
        service="s3",
        method="PUT",
        path=f"^/{outputs['renditions_bucket']}/{slow_id}/",
        delay=60,
        status=503,
        code="SlowDown",
    )

    # WHEN it is uploaded in a burst with others
    slow = pipeline.upload(PHOTO, "slow.jpg", key=slow_key)
    others = [pipeline.upload(OTHER_PHOTO, f"other-{i}.jpg") for i in range(3)]

    # THEN the others end READY, and none of their jobs reaches a DLQ
    ready = pipeline.wait_for([o.id for o in others], timeout=180)
    assert {n.body["type"] for n in ready.values()} == {"image.ready"}

    # AND once its job reaches the DLQ, the reconciler ends the slow image FAILED, retryable,
    # announced once
    bound = outputs["job_retry_window_seconds"] + 2 * 60 + 120  # the DLQ, two reconciler periods
    failed = pipeline.wait_for([slow.id], timeout=bound)[slow.id]
    assert failed.body["type"] == "image.failed"
    failure = failed.body["failure"]
    assert (failure["stage"], failure["reason"]) == ("thumbnail", "processing_error")
    assert "dead-letter queue" in failure["message"]
    assert pipeline.item(slow.id)["failure"]["retryable"] is True
    assert slow_key in dead_lettered_keys(pipeline, outputs, "thumbnail_dlq")
    assert not {o.key for o in others} & (
        dead_lettered_keys(pipeline, outputs, "thumbnail_dlq")
        | dead_lettered_keys(pipeline, outputs, "metadata_dlq")
    )
    pipeline.drain(GRACE_SECONDS)
    assert len(pipeline.notifications[slow.id]) == 1


@pytest.mark.slow
@pytest.mark.embedded_only("kills busy Lambda environments (its kill API)")
def test_workers_killed_at_random_during_a_burst_leave_every_image_settled_and_announced_once(
    pipeline, outputs, kill
):
    # GIVEN a burst of uploads
    uploads = [pipeline.upload(PHOTO if i % 2 else OTHER_PHOTO, f"burst-{i}.jpg") for i in range(8)]

    # WHEN both workers are killed, mid-invocation, over and over while they work on it
    stop = threading.Event()
    kills: list[int] = []

    def chaos() -> None:
        rng = random.Random(9)
        while not stop.is_set() and len(kills) < 12:
            function = outputs["functions"][rng.choice(["thumbnail", "metadata"])]
            kills.append(kill(function))
            stop.wait(rng.uniform(0.2, 1.0))

    with ThreadPoolExecutor(1) as pool:
        pool.submit(chaos)
        try:
            # THEN every image still ends READY or FAILED, each announced exactly once
            bound = 2 * outputs["job_retry_window_seconds"] + 2 * 60
            notes = pipeline.wait_for([u.id for u in uploads], timeout=bound)
        finally:
            stop.set()
    assert sum(kills) > 0, "no worker was caught at work: the test proved nothing"
    for upload in uploads:
        item = pipeline.item(upload.id)
        assert item["status"] in ("READY", "FAILED"), item
        if item["status"] == "FAILED":  # a kill on the last delivery: said why, retryable
            assert item["failure"]["reason"] == "processing_error"
        assert notes[upload.id].body["type"] == f"image.{item['status'].lower()}"
    pipeline.drain(GRACE_SECONDS)
    assert all(len(pipeline.notifications[u.id]) == 1 for u in uploads)


def test_duplicate_and_out_of_order_events_in_parallel_settle_on_the_newest_content(
    pipeline, outputs
):
    # GIVEN two versions of one key, each with its S3 event, the newer with the later sequencer
    key = pipeline.new_key("versions.jpg")
    first = pipeline.upload(PHOTO, "versions.jpg", key=key)
    first_item = wait_until(
        lambda: pipeline.item(first.id), 60, "the first version was never recorded"
    )
    second = pipeline.upload(OTHER_PHOTO, "versions.jpg", key=key)
    events = [
        s3_event(
            bucket=outputs["uploads_bucket"],
            key=key,
            etag=version.etag,
            size=size,
            sequencer=sequencer,
        )
        for version, size, sequencer in (
            (first, len(PHOTO), first_item["sequencer"].lstrip("0") or "0"),
            (second, len(OTHER_PHOTO), "F" * 20),
        )
    ]

    # WHEN both events arrive again, three times each, shuffled, on both queues at once
    deliveries = [
        (queue, event) for event in events * 3 for queue in ("thumbnail_jobs", "metadata_jobs")
    ]
    random.Random(3).shuffle(deliveries)
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda d: pipeline.sqs.send_message(
                    QueueUrl=outputs["queues"][d[0]], MessageBody=json.dumps(d[1])
                ),
                deliveries,
            )
        )

    # THEN the item ends READY with the newer content, announced once for it
    def settled_on_second() -> dict[str, Any] | None:
        pipeline.poll_notifications(wait_seconds=0)
        item = pipeline.item(second.id)
        return item if item["etag"] == second.etag and item["status"] == "READY" else None

    item = wait_until(settled_on_second, 120, "the newer content never ended READY")
    assert item["renditions_etag"] == item["metadata_etag"] == second.etag
    pipeline.drain(GRACE_SECONDS * 2)
    ready_for_second = [
        n
        for n in pipeline.notifications[second.id]
        if n.body["type"] == "image.ready" and n.body["image"]["etag"] == second.etag
    ]
    assert len(ready_for_second) == 1
    # ... and at most one notification per version and type, whatever the older one did
    seen = [(n.body["image"]["etag"], n.body["type"]) for n in pipeline.notifications[second.id]]
    assert len(seen) == len(set(seen))
