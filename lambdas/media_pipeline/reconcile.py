"""Settle what the event flow gave up on, and re-enqueue what it lost.

The event flow (S3 -> EventBridge -> SQS -> workers) is at-least-once, but a job can still end
outside it: its last delivery dies with the worker (a timeout, out of memory, a crash) and the
message moves to the dead-letter queue with the item still PROCESSING; or an event never arrives
(a rule disabled during a deployment, a queue purged). Three sweeps put every item back on the
road to READY or FAILED. Each is safe to run at any time, any number of times, concurrently with
the workers: every write is one of the media table's conditional writes.

* :meth:`Reconciler.dead_letters` reads each worker's DLQ without removing anything (the messages
  stay for the alarm and for a redrive) and settles the item of every job found there: READY if
  both halves are in after all (the worker died after its write), else FAILED
  ``processing_error`` (retryable), which the notifier announces once. A redrive later reopens it.
* :meth:`Reconciler.stuck` finds items PROCESSING or AWAITING_UPLOAD (with the object present)
  for longer than a bound, from the sparse, sharded ``waiting`` index: READY if both halves are
  in; else the missing halves' jobs are sent again (at most ``max_requeues`` times), then
  FAILED. An upload request whose presigned POST expired unused leaves the index (it stays
  AWAITING_UPLOAD until its TTL), so abandoned requests are looked at once, not at every run.
* :meth:`Reconciler.orphans` (an operator's command: it lists the bucket) finds objects under the
  upload prefix with no item, or whose item describes older content, and enqueues them.

Re-enqueued jobs are the event EventBridge would have delivered, so the workers treat them like
any other (idempotent on bucket, key, ETag and version).
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from media_pipeline import objects
from media_pipeline.events import (
    OBJECT_CREATED,
    OPERATOR_REQUESTER,
    SEQUENCER_WIDTH,
    InvalidEvent,
    normalise_sequencer,
    parse_object_created,
    strip_etag,
)
from media_pipeline.media_store import MediaTable
from media_pipeline.model import Failure, Half, ObjectVersion, Status, media_id
from media_pipeline.values import iso

REQUESTER = OPERATOR_REQUESTER
PEEK_SECONDS = 30  # how long a DLQ message is hidden at most while the reconciler reads the queue


@dataclass(frozen=True)
class HalfQueues:
    """A worker's job queue and its dead-letter queue (URLs)."""

    jobs: str
    dead_letters: str


@dataclass
class Report:
    """What a run looked at and what it did, by sweep and action (for logs, metrics, the CLI)."""

    actions: Counter[str] = field(default_factory=Counter)
    examined: Counter[str] = field(default_factory=Counter)
    images: dict[str, list[str]] = field(default_factory=dict)

    def add(self, action: str, image_id: str | None = None) -> None:
        self.actions[action] += 1
        if image_id is not None:
            self.images.setdefault(action, []).append(image_id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "examined": dict(self.examined),
            "actions": dict(self.actions),
            "images": self.images,
        }


def peek_messages(sqs: Any, queue_url: str, limit: int = 1000) -> list[dict[str, Any]]:
    """Up to ``limit`` messages of a queue, each once, left in the queue: each is hidden only
    while the queue is read to its end, then made visible again at once (for a DLQ's alarm, a
    redrive and the next reader)."""
    seen: dict[str, dict[str, Any]] = {}
    try:
        while len(seen) < limit:
            received = sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=min(10, limit - len(seen)),
                VisibilityTimeout=PEEK_SECONDS,
                WaitTimeSeconds=0,
            ).get("Messages", [])
            fresh = [m for m in received if m["MessageId"] not in seen]
            if not fresh:
                break
            seen |= {m["MessageId"]: m for m in fresh}
    finally:
        messages = list(seen.values())
        for start in range(0, len(messages), 10):
            sqs.change_message_visibility_batch(
                QueueUrl=queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                    for i, m in enumerate(messages[start : start + 10])
                ],
            )
    return messages


def job_event(
    *,
    bucket: str,
    key: str,
    etag: str,
    size: int,
    sequencer: str,
    version_id: str | None,
    reprocess_run: str | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    """An S3 "Object Created" event as EventBridge delivers it to a job queue; a reprocess job
    also names its run (``detail.reprocess.run``, docs/operations.md). ``reason``: why else it
    was sent (``Reframe``: the app set an image's framing)."""
    obj: dict[str, Any] = {"key": key, "size": size, "etag": etag, "sequencer": sequencer}
    if version_id:
        obj["version-id"] = version_id
    reason = reason or ("Reprocess" if reprocess_run else "Reconcile")
    detail: dict[str, Any] = {
        "version": "0",
        "bucket": {"name": bucket},
        "object": obj,
        "request-id": "reconciler" if reason == "Reconcile" else reason.lower(),
        "requester": REQUESTER,
        "reason": reason,
    }
    if reprocess_run:
        detail["reprocess"] = {"run": reprocess_run}
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": OBJECT_CREATED,
        "source": "aws.s3",
        "time": iso(datetime.now(UTC).timestamp()),
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": detail,
    }


def next_sequencer(sequencer: str | None) -> str:
    """A sequencer just after ``sequencer`` (or the first one): for content S3 holds now that is
    newer than what the item records, so the workers' ordering lets it take the item over."""
    value = int(sequencer, 16) + 1 if sequencer else 0
    return normalise_sequencer(f"{value:0{SEQUENCER_WIDTH}X}")


class Reconciler:
    def __init__(
        self,
        *,
        s3: Any,
        sqs: Any,
        table: MediaTable,
        queues: dict[Half, HalfQueues],
        stuck_after: timedelta,
        max_requeues: int,
        dry_run: bool = False,
    ) -> None:
        self._s3 = s3
        self._sqs = sqs
        self._table = table
        self._queues = queues
        self._stuck_after = stuck_after
        self._max_requeues = max_requeues
        self._dry_run = dry_run

    # -- dead letters ---------------------------------------------------------------------------

    def dead_letters(self, report: Report, *, max_messages: int = 1000) -> None:
        """Settle the item of every job in a worker's DLQ (messages are left where they are)."""
        for half, queues in self._queues.items():
            for message in peek_messages(self._sqs, queues.dead_letters, max_messages):
                report.examined["dead_letters"] += 1
                self._settle_dead_letter(half, message["Body"], report)

    def _settle_dead_letter(self, half: Half, body: str, report: Report) -> None:
        try:
            event = parse_object_created(body)
            version = objects.locate(self._s3, event)
        except InvalidEvent:
            report.add("dead_letter_not_a_job")
            return
        except objects.ObjectSuperseded:
            report.add("dead_letter_superseded")
            return
        item = self._table.get(version.id)
        if item is not None and Status(item["status"]).settled and item.get("etag") == version.etag:
            report.add("dead_letter_already_settled", version.id)
            return
        if self._dry_run:
            report.add("would_settle", version.id)
            return
        if item is not None and item.get(half.etag_attribute) == version.etag:
            # The half is in: the worker died after its write. READY if the other half is too;
            # otherwise the other half's own job decides.
            if self._table.finish(version.id, version.etag):
                report.add("ready", version.id)
            else:
                report.add("dead_letter_half_done", version.id)
            return
        failure = Failure(
            stage=half.stage,
            reason="processing_error",
            message=(
                f"the {half.stage} job reached its dead-letter queue: every delivery failed or"
                " was cut off (timeout, out of memory, crash); a redrive retries it"
            ),
            retryable=True,
        )
        # No item yet (a direct upload whose every job died), or an upload request: the failure
        # records the version too. An item about newer content is left alone (STALE).
        if self._table.fail(version, failure, half=half, seen=item):
            report.add("failed", version.id)
        else:
            report.add("dead_letter_superseded", version.id)

    # -- stuck items ------------------------------------------------------------------------

    def stuck(self, report: Report, *, now: datetime, max_items: int = 500) -> None:
        """Settle or re-enqueue the items that have waited longer than the bound."""
        before = iso((now - self._stuck_after).timestamp(), "milliseconds")
        for count, image_id in enumerate(self._table.waiting(before)):
            if count >= max_items:
                report.add("stuck_left_for_next_run")
                break
            item = self._table.get(image_id)
            status = Status((item or {}).get("status", Status.READY))
            if item is None or status.settled:
                continue  # settled since the index was read
            report.examined[f"stuck_{status.value.lower()}"] += 1
            if status is Status.PROCESSING:
                if str(item.get("updated_at", "")) < before:  # no worker wrote since the bound
                    self._settle_processing(item, report)
            else:
                self._settle_awaiting(item, report, now=now, before=before)

    def _settle_processing(self, item: dict[str, Any], report: Report) -> None:
        image_id, etag = item["id"], item["etag"]
        missing = [h for h in Half if item.get(h.etag_attribute) != etag]
        if self._dry_run:
            report.add("would_settle" if not missing else "would_requeue", image_id)
            return
        if not missing:
            if self._table.finish(image_id, etag):
                report.add("ready", image_id)
            return
        attempt = int(item.get("reconciled") or 0) + 1
        if attempt > self._max_requeues:
            failure = Failure(
                stage=missing[0].stage,
                reason="processing_error",
                message=(
                    f"no worker finished the {' and '.join(h.stage for h in missing)} half within"
                    f" {self._stuck_after.total_seconds():.0f} s, after {self._max_requeues}"
                    " re-enqueue(s)"
                ),
                retryable=True,
            )
            if self._table.fail(_version_of(item), failure, half=missing[0], seen=item):
                report.add("failed", image_id)
            return
        if self._table.mark_reconciled(image_id, etag, Status.PROCESSING, attempt):
            event = job_event(
                bucket=item["bucket"],
                key=item["key"],
                etag=etag,
                size=int(item.get("size") or 0),
                sequencer=item["sequencer"],
                version_id=item.get("version_id"),
            )
            self._enqueue(event, missing)
            report.add("requeued", image_id)

    def _settle_awaiting(
        self, item: dict[str, Any], report: Report, *, now: datetime, before: str
    ) -> None:
        """An upload request: its object arrived without its event reaching the workers, or it
        was never used."""
        head = self._head(item["bucket"], item["key"])
        if head is None:
            # Not uploaded (yet). Once the presigned POST has expired, it never will be: the
            # request leaves the waiting index and expires by TTL.
            expired = str(item.get("upload_expires_at") or "") < iso(now.timestamp())
            if expired and str(item.get("updated_at", "")) < before:
                if self._dry_run:
                    report.add("would_stop_waiting", item["id"])
                elif self._table.stop_waiting(item["id"]):
                    report.add("abandoned_request", item["id"])
            return
        last_modified = head.get("LastModified")
        if last_modified is not None and iso(last_modified.timestamp(), "milliseconds") >= before:
            return  # uploaded within the bound: its event may still be on its way
        if str(item.get("updated_at", "")) >= before:
            return  # re-enqueued within the bound already
        attempt = int(item.get("reconciled") or 0) + 1
        if attempt > self._max_requeues:
            report.add("awaiting_given_up", item["id"])
            return
        if self._dry_run:
            report.add("would_requeue", item["id"])
            return
        if self._table.mark_reconciled(item["id"], None, Status.AWAITING_UPLOAD, attempt):
            self._enqueue(self._event_for(item["bucket"], item["key"], head, None), list(Half))
            report.add("requeued", item["id"])

    # -- orphans ----------------------------------------------------------------------------

    def orphans(
        self, report: Report, *, bucket: str, prefix: str, max_objects: int = 100_000
    ) -> None:
        """Enqueue objects under ``prefix`` that have no item, or whose item is about older
        content and is not being processed now."""
        paginator = self._s3.get_paginator("list_objects_v2")
        listed = 0
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                listed += 1
                if listed > max_objects:
                    report.add("orphans_left_for_next_run")
                    return
                report.examined["objects"] += 1
                self._check_object(bucket, obj, report)

    def _check_object(self, bucket: str, obj: dict[str, Any], report: Report) -> None:
        key, etag = obj["Key"], strip_etag(obj["ETag"])
        image_id = media_id(bucket, key)
        item = self._table.get(image_id)
        if item is not None and item.get("key") != key:
            return  # an id taken by another key: not this object's item
        if item is not None and item.get("etag") == etag:
            return  # known content: the other sweeps look after it
        if item is not None and item.get("status") == Status.DELETED:
            return  # the image was deleted: what is left under its key is not to be processed
        if item is not None and item.get("status") == Status.PROCESSING:
            return  # a newer upload's event may be on its way; the stuck sweep will see it
        if self._dry_run:
            report.add("would_requeue", image_id)
            return
        head = self._head(bucket, key)
        if head is None:
            return
        sequencer = next_sequencer(item.get("sequencer") if item else None)
        self._enqueue(self._event_for(bucket, key, head, sequencer), list(Half))
        report.add("requeued_orphan", image_id)

    # -- helpers ------------------------------------------------------------------------------

    def _head(self, bucket: str, key: str) -> dict[str, Any] | None:
        try:
            return self._s3.head_object(Bucket=bucket, Key=key)
        except ClientError as error:
            if objects.is_not_found(error):
                return None
            raise

    @staticmethod
    def _event_for(
        bucket: str, key: str, head: dict[str, Any], sequencer: str | None
    ) -> dict[str, Any]:
        return job_event(
            bucket=bucket,
            key=key,
            etag=strip_etag(head["ETag"]),
            size=int(head["ContentLength"]),
            sequencer=sequencer or next_sequencer(None),
            version_id=head.get("VersionId"),
        )

    def _enqueue(self, event: dict[str, Any], halves: list[Half]) -> None:
        for half in halves:
            self._sqs.send_message(QueueUrl=self._queues[half].jobs, MessageBody=json.dumps(event))


def _version_of(item: dict[str, Any]) -> ObjectVersion:
    return ObjectVersion(
        bucket=item["bucket"],
        key=item["key"],
        etag=item["etag"],
        size=int(item.get("size") or 0),
        content_type=item.get("content_type") or "",
        sequencer=item.get("sequencer") or "",
        version_id=item.get("version_id"),
    )
