"""The flow both SQS workers share: locate, claim, check limits, read, produce, record.

A worker is this flow plus a :class:`HalfWork` that says how to produce its half (renditions or
metadata) from the object's bytes and how to store it. Outcomes:

* permanent problems (corrupt, unsupported, too large) mark the version FAILED with a reason and
  return normally, so the message is deleted and never retried;
* anything else raises, so SQS retries the message. On the last attempt the version is marked
  FAILED with reason ``processing_error`` (retryable) before raising again, so the upload ends
  FAILED while its message lands in the DLQ; a redrive can still complete it.

What an event came to is a :class:`Result`, its kind an :class:`Outcome`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from media_pipeline import objects
from media_pipeline.events import ObjectCreated
from media_pipeline.imaging import Limits, Rejected, Rendered
from media_pipeline.media_store import Completion, MediaTable
from media_pipeline.model import Decision, Failure, Half, Upload


class HalfWork(Protocol):
    half: Half
    hash_while_reading: bool
    """Download with the SHA-256 taken on the way in (``produce`` gets ``objects.Downloaded``)."""
    settings: str | None  # fingerprint of the settings the half is made with (None: none)

    def produce(self, data: bytes) -> Rendered | Rejected:
        """Decode the bytes and produce this half (renditions or metadata), or reject them."""

    def store(self, upload: Upload, result: Rendered, existing: Any = None) -> Any:
        """Persist what ``produce`` made, outside the media table; return the item's value.
        ``existing`` is the item's current value of this half when it is being refreshed."""

    def attributes(self, result: Rendered) -> dict[str, Any]:
        """Further item attributes this half records, in the same write as its value."""

    def discard(self, upload: Upload, value: Any) -> None:
        """Undo ``store`` when a newer upload took the item over while this one worked."""

    def retire(self, previous: Any, current: Any) -> None:
        """Clean up what an older version of the same key left behind."""


class Outcome(StrEnum):
    """What one event came to, for this half. The values are stored (idempotency records) and
    logged, so they do not change."""

    READY = "ready"  # this half completed the version and marked it READY
    PARTIAL = "partial"  # this half is recorded; the other one is still to come
    REFRESHED = "refreshed"  # READY, this half made again with the current settings (reprocess)
    REJECTED = "rejected"  # the bytes are refused for good (corrupt, unsupported, too large)
    DUPLICATE = "duplicate"  # this half was done before: nothing to do
    STALE = "stale"  # a newer upload of the key owns the item
    SUPERSEDED = "superseded"  # the version left S3, or a newer upload or a delete took the item
    ABANDONED = "abandoned"  # the version had already FAILED permanently
    DELETED = "deleted"  # the image was deleted after (or while) this version was uploaded


# The claims that leave nothing to do, and what the event then came to (``MediaTable.claim``
# settles UNORDERED itself, as STALE, DELETED or a take-over).
_SKIPPED = {
    Decision.DUPLICATE: Outcome.DUPLICATE,
    Decision.STALE: Outcome.STALE,
    Decision.ABANDONED: Outcome.ABANDONED,
    Decision.DELETED: Outcome.DELETED,
}


@dataclass(frozen=True)
class Result:
    """What happened to one event; the idempotency layer stores it for duplicates.

    Stored as :meth:`to_dict` (``{"outcome", "image_id", "detail"}``, plain JSON) and given
    back to a duplicate as a ``Result`` again by :meth:`from_dict` (``pipeline.sqs``).
    """

    outcome: Outcome
    image_id: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"outcome": self.outcome.value, "image_id": self.image_id, "detail": self.detail}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Result:
        return cls(Outcome(data["outcome"]), data.get("image_id"), data.get("detail") or {})


def process_object(
    event: ObjectCreated,
    *,
    work: HalfWork,
    s3: Any,
    table: MediaTable,
    limits: Limits,
    final_attempt: bool,
) -> Result:
    try:
        upload = objects.locate(s3, event)
    except objects.ObjectSuperseded as gone:
        return Result(Outcome.SUPERSEDED, detail={"message": str(gone)})

    try:
        return _process_located(upload, work=work, s3=s3, table=table, limits=limits)
    except Exception as error:
        if final_attempt:
            table.fail(
                upload,
                Failure(
                    stage=work.half.stage,
                    reason="processing_error",
                    message=f"gave up after the last retry: {type(error).__name__}: {error}",
                    retryable=True,
                ),
            )
        raise


def _process_located(
    upload: Upload, *, work: HalfWork, s3: Any, table: MediaTable, limits: Limits
) -> Result:
    decision = table.claim(
        upload, work.half, work.settings, is_current=lambda: objects.is_current(s3, upload)
    )
    if decision is Decision.FINISH:
        # This half was recorded by a worker that may have died before READY: settle it now.
        finished = table.finish(upload.id, upload.etag)
        return Result(Outcome.READY if finished else Outcome.DUPLICATE, upload.id)
    if decision not in (Decision.WORK, Decision.REOPEN_AND_WORK, Decision.REFRESH):
        return Result(_SKIPPED[decision], upload.id)
    existing = None
    if decision is Decision.REFRESH:
        # READY, made with other settings (a reprocess): what is unchanged is kept as it is.
        existing = (table.get(upload.id) or {}).get(work.half.attribute)

    if upload.size > limits.max_bytes:
        produced: Rendered | Rejected = Rejected(
            "too_large", f"object is {upload.size} bytes, the limit is {limits.max_bytes} bytes"
        )
    else:
        try:
            data = objects.read(s3, upload, sha256=work.hash_while_reading)
        except objects.ObjectSuperseded as gone:
            return Result(Outcome.SUPERSEDED, upload.id, {"message": str(gone)})
        produced = work.produce(data)

    if isinstance(produced, Rejected):
        if decision is Decision.REFRESH:  # the same bytes rendered before: settings refused
            raise RuntimeError(f"{upload.id}: the new settings refuse an image made before")
        table.fail(upload, Failure(work.half.stage, produced.reason, produced.message))
        return Result(
            Outcome.REJECTED, upload.id, {"reason": produced.reason, "message": produced.message}
        )

    value = work.store(upload, produced, existing)
    completed = table.complete(upload, work.half, value, work.settings, work.attributes(produced))
    if completed.outcome is Completion.SUPERSEDED:
        # A newer upload took the item over, or the image was deleted meanwhile.
        work.discard(upload, value)
        return Result(Outcome.SUPERSEDED, upload.id)
    if completed.previous:
        work.retire(completed.previous, value)
    if decision is Decision.REFRESH:
        return Result(Outcome.REFRESHED, upload.id)
    ready = completed.outcome is Completion.READY
    return Result(Outcome.READY if ready else Outcome.PARTIAL, upload.id)
