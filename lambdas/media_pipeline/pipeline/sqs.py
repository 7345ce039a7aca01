"""One SQS record of an S3 upload event -> one call of ``flow.process_object``.

Shared by the renditions and metadata handlers. Idempotency is keyed on the object version, not on
the SQS message: S3 and EventBridge may deliver the same event twice as two different messages,
and the flow recognises the second from the media item, which records per half the ETag and the
settings it was made for (the same version made with other settings, ``scripts/reprocess.py``,
is new work). The renditions worker also receives S3 "Object Deleted" events
(``lifecycle.object_deleted``), idempotent by their conditional writes too.

Each record's :class:`~media_pipeline.pipeline.flow.Result` is logged and counted.
"""

from __future__ import annotations

import random
import time
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import BotoCoreError, ClientError

from media_pipeline import lifecycle
from media_pipeline.config.workers import WorkerSettings
from media_pipeline.duplicates_index import DuplicatesIndex
from media_pipeline.events import ObjectDeleted, parse_job
from media_pipeline.media_store import MediaTable
from media_pipeline.model import DELETED_RETENTION_SECONDS
from media_pipeline.pipeline.flow import HalfWork, Outcome, process_object

# One count per outcome, every outcome its own (tests/unit/test_outcomes.py).
METRIC_NAMES = {
    Outcome.READY: "ImagesReady",
    Outcome.REFRESHED: "ImagesRefreshed",
    Outcome.PARTIAL: "HalvesCompleted",
    Outcome.REJECTED: "ImagesRejected",
    Outcome.DUPLICATE: "DuplicateEvents",
    Outcome.STALE: "StaleEvents",
    Outcome.SUPERSEDED: "SupersededEvents",
    Outcome.ABANDONED: "AbandonedEvents",
    Outcome.DELETED: "DeletedEvents",
}
_DELETION_METRIC = "ImagesDeleted"


class NotEnoughTime(Exception):
    """Too little of the invocation is left to process this record: it is given back to SQS
    untouched (a partial batch failure) instead of being cut off when Lambda kills the worker."""


def suspects_last(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The batch with its records in order of receive count, fewest first (stable).

    A record that has come back may be the one that took its last batch down (a timeout or a
    crash kills the whole invocation); processing the fresh records first means such an image
    cannot take the others down with it again.
    """
    return sorted(
        records, key=lambda r: int((r.get("attributes") or {}).get("ApproximateReceiveCount", 1))
    )


def retry_delay_seconds(receive_count: int, base: int, ceiling: int, rng: random.Random) -> int:
    """When a record that failed on its ``receive_count``-th delivery is delivered again.

    Exponential backoff with "equal jitter": about ``base`` after the first delivery, doubling
    with each one, never more than ``ceiling`` (the queue's visibility timeout, which is what
    would apply anyway); half of it is random, so records that failed together (throttling) do
    not all come back at the same instant.
    """
    delay = min(ceiling, base * 2 ** max(receive_count - 1, 0))
    return delay // 2 + rng.randint(0, delay - delay // 2)


class SqsWorker:
    def __init__(
        self,
        *,
        work: HalfWork,
        settings: WorkerSettings,
        s3: Any,
        dynamodb: Any,
        logger: Logger,
        metrics: Metrics,
        tracer: Tracer,
        sqs: Any = None,
        renditions_bucket: str | None = None,
        deleted_ttl_seconds: int = DELETED_RETENTION_SECONDS,
        forget: lifecycle.Forget | None = None,
        duplicates: DuplicatesIndex | None = None,
    ) -> None:
        self._work = work
        self._duplicates = duplicates  # a deleted image leaves the app's duplicates index
        self._renditions_bucket = renditions_bucket  # where deletions remove renditions
        self._forget = forget  # what else lets go of a deleted image (the CDN's caches)
        self._deleted_ttl_seconds = deleted_ttl_seconds
        self._settings = settings
        self._s3 = s3
        self._sqs = sqs
        self._rng = random.Random()  # noqa: S311 (retry jitter, not a secret)
        self._table = MediaTable(dynamodb, settings.media_table)
        self._logger = logger
        self._metrics = metrics
        # A batch whose every record failed is reported item by item, like any other: the
        # messages are retried the same way, and the invocation is not counted as an error.
        self._processor = BatchProcessor(
            event_type=EventType.SQS, raise_on_entire_batch_failure=False
        )
        self._traced_handle = tracer.capture_method(self.handle)
        self._context: LambdaContext | None = None
        self._slowest_ms = 0.0
        self._deferred: set[str] = set()
        self._current_message_id = ""

    def process_batch(self, event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        """A handler's whole job: every record of the SQS batch, failures reported one by one.

        Records are processed fresh ones first (:func:`suspects_last`), and a record is only
        started while enough of the invocation is left for it (:meth:`_check_time`); the ones
        given back return to the queue after their visibility timeout, untouched.
        """
        self._context = context
        self._slowest_ms = 0.0
        self._deferred = set()
        event = {**event, "Records": suspects_last(list(event.get("Records") or []))}
        response = process_partial_response(
            event=event,
            record_handler=self._traced_handle,
            processor=self._processor,
            context=context,
        )
        self._schedule_retries(event["Records"], response)
        return response

    def _schedule_retries(self, records: list[dict[str, Any]], response: dict[str, Any]) -> None:
        """Bring each failed record back when it is worth trying again, not after the queue's
        whole visibility timeout (6x the function's timeout): a record given back for lack of
        time at once, a last delivery at once (to its DLQ), a transient failure after an
        exponential backoff (:func:`retry_delay_seconds`).

        Best effort: if the change is refused, the visibility timeout applies, as it would
        have anyway.
        """
        if self._sqs is None or not self._settings.jobs_queue_url:
            return
        failed = {f["itemIdentifier"] for f in response.get("batchItemFailures") or []}
        for record in records:
            if record.get("messageId") not in failed:
                continue
            count = int((record.get("attributes") or {}).get("ApproximateReceiveCount", 1))
            if record["messageId"] in self._deferred or count >= self._settings.max_receive_count:
                delay = 0
            else:
                delay = retry_delay_seconds(
                    count,
                    self._settings.retry_base_seconds,
                    self._settings.retry_max_seconds,
                    self._rng,
                )
            try:
                self._sqs.change_message_visibility(
                    QueueUrl=self._settings.jobs_queue_url,
                    ReceiptHandle=record["receiptHandle"],
                    VisibilityTimeout=delay,
                )
            except (ClientError, BotoCoreError) as error:
                self._logger.warning(
                    "could not schedule the retry; the visibility timeout applies",
                    message_id=record["messageId"],
                    error=str(error),
                )
            else:
                self._logger.info(
                    "retry scheduled", message_id=record["messageId"], delay_seconds=delay
                )

    def _check_time(self) -> None:
        """Refuse to start a record that would likely outlive the invocation.

        The reserve is twice the slowest record of this invocation so far, and at least the
        configured minimum (``MIN_REMAINING_TIME_MS``); the first record always starts.
        """
        if self._context is None or self._slowest_ms == 0.0:
            return
        remaining = self._context.get_remaining_time_in_millis()
        reserve = max(self._settings.min_remaining_time_ms, 2 * self._slowest_ms)
        if remaining < reserve:
            self._metrics.add_metric(name="RecordsDeferred", unit=MetricUnit.Count, value=1)
            self._deferred.add(self._current_message_id)
            raise NotEnoughTime(
                f"{remaining} ms left, {reserve:.0f} ms reserved: given back to the queue"
            )

    def handle(self, record: SQSRecord) -> dict[str, Any]:
        receive_count = int(record.attributes.approximate_receive_count or 1)
        self._current_message_id = record.message_id
        if receive_count < self._settings.max_receive_count:
            # A last delivery is always tried: giving it back would send it to the DLQ.
            self._check_time()
        started = time.monotonic()
        try:
            return self._handle(record)
        finally:
            self._slowest_ms = max(self._slowest_ms, (time.monotonic() - started) * 1000)

    def _handle(self, record: SQSRecord) -> dict[str, Any]:
        job = parse_job(record.body)
        if isinstance(job, ObjectDeleted):
            return self._deleted(job)
        receive_count = int(record.attributes.approximate_receive_count or 1)
        context = {"bucket": job.bucket, "key": job.raw_key, "etag": job.etag}
        if job.reprocess_run:
            context["reprocess_run"] = job.reprocess_run
        with self._logger.append_context_keys(**context, receive_count=receive_count):
            result = process_object(
                job,
                work=self._work,
                s3=self._s3,
                table=self._table,
                limits=self._settings.limits,
                final_attempt=receive_count >= self._settings.max_receive_count,
                # A redelivery, or a job sent again on purpose, may well find its work done.
                read_first=self._work.reads_first or receive_count > 1 or job.from_operator,
            )
            self._logger.info("object processed", **result.to_dict())
        self._metrics.add_metric(name=METRIC_NAMES[result.outcome], unit=MetricUnit.Count, value=1)
        return result.to_dict()

    def _deleted(self, event: ObjectDeleted) -> dict[str, Any]:
        with self._logger.append_context_keys(bucket=event.bucket, key=event.raw_key):
            if self._renditions_bucket is None:
                self._logger.warning("object deletion ignored: this worker keeps no renditions")
                return {"outcome": "ignored", "image_id": None, "detail": {}}
            result = lifecycle.object_deleted(
                self._table,
                self._s3,
                event,
                renditions_bucket=self._renditions_bucket,
                retention_seconds=self._deleted_ttl_seconds,
                forget=self._forget,
                duplicates=self._duplicates,
            ).to_dict()
            self._logger.info("object deleted", **result)
        if result["outcome"] == "deleted":
            self._metrics.add_metric(name=_DELETION_METRIC, unit=MetricUnit.Count, value=1)
        return result
