"""The flow both SQS workers share: open, decide, check limits, read, produce, record.

A worker is this flow plus a :class:`HalfWork` that says how to produce its half (renditions or
metadata) from the object's bytes and how to store it. Per event: one GET opens the object
version (its headers name it; the body is read only if there is work), one read of the media
item decides what to do (``model.decide``: a duplicate, an older event or a deleted image costs
nothing more), and one conditional write records the half (``MediaTable.record``). Outcomes:

* permanent problems (corrupt, unsupported, too large) mark the version FAILED with a reason and
  return normally, so the message is deleted and never retried;
* anything else raises, so SQS retries the message. On the last attempt the version is marked
  FAILED with reason ``processing_error`` (retryable) before raising again, so the upload ends
  FAILED while its message lands in the DLQ; a redrive can still complete it.

Duplicates are recognised from the media item, which is keyed on the object (the id comes from
the key) and records, per half, the ETag and settings it was made for: that is the idempotency
record, so no other table is written. Two deliveries of one event that run at the same moment
may both do the work; only one is recorded, the other finds it there and keeps its objects only
where the item names the same keys.

What an event came to is a :class:`Result`, its kind an :class:`Outcome`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from media_pipeline import objects
from media_pipeline.events import ObjectCreated
from media_pipeline.imaging import Limits, Produced, Rejected, Rendered
from media_pipeline.item_writes import Completion
from media_pipeline.media_store import MediaTable
from media_pipeline.model import Decision, Failure, Half, ObjectVersion, resolve


class HalfWork(Protocol):
    half: Half
    hash_while_reading: bool
    """Download with the SHA-256 taken on the way in (``produce`` gets ``objects.Downloaded``)."""
    reads_first: bool
    """Read the item before every event's work (``process_object``), not only before a
    redelivery's: where the work is costly or leaves objects behind."""
    settings: str | None  # fingerprint of the settings the half is made with (None: none)

    def produce(self, data: bytes) -> Produced:
        """Decode the bytes and produce this half (renditions or metadata), or reject them."""

    def store(self, version: ObjectVersion, result: Rendered, existing: Any = None) -> Any:
        """Persist what ``produce`` made, outside the media table; return the item's value.
        ``existing`` is the item's current value of this half when it is being refreshed."""

    def attributes(self, result: Rendered) -> dict[str, Any]:
        """Further item attributes this half records, in the same write as its value."""

    def for_item(self, item: dict[str, Any] | None) -> HalfWork:
        """This half for one image, as its item (None: not read, or none yet) asks it made."""

    def discard(self, version: ObjectVersion, value: Any, recorded: Any) -> None:
        """Undo ``store`` when its value was not recorded (a newer upload or a delete took the
        item over while this one worked, or a duplicate delivery got there first), keeping
        what the item's ``recorded`` value of this half still names."""

    def retire(self, previous: Any, current: Any) -> None:
        """Clean up what an older version of the same key left behind."""

    def relate(
        self, version: ObjectVersion, result: Rendered, seen: dict[str, Any] | None
    ) -> Related | None:
        """What the image is to the app's other images (its duplicates: ``duplicates_index``),
        before anything is stored (None: nothing); ``seen`` is the item as read."""


def _nothing() -> None:
    """Nothing to do."""


@dataclass(frozen=True)
class Related:
    """What :meth:`HalfWork.relate` found: ``attributes`` recorded with the half, or a
    ``failure`` that refuses the image for good (a duplicate, by the deployment's policy);
    ``undo`` when the half is not recorded after all (a delete or a newer upload took the item
    over), ``recorded`` once it is."""

    attributes: dict[str, Any] = field(default_factory=dict)
    failure: Failure | None = None
    undo: Callable[[], None] = _nothing
    recorded: Callable[[], None] = _nothing


UNRELATED = Related()


class Outcome(StrEnum):
    """What one event came to, for this half. The values are logged (queries and dashboards
    select on them) and each has its metric, so they do not change.

    Four share their word with the :class:`~media_pipeline.model.Decision` that leads to them
    (DUPLICATE, STALE, ABANDONED, DELETED: ``_SKIPPED``), on purpose: a decision is what a worker
    does with the item as it stands, an outcome what the event came to in the end (a decision
    to work may still end SUPERSEDED). ``Status.DELETED`` is the item's state, and
    ``media_store.Removal`` what a delete itself came to."""

    READY = "ready"  # this half completed the version and marked it READY
    PARTIAL = "partial"  # this half is recorded; the other one is still to come
    REFRESHED = "refreshed"  # READY, this half made again with the current settings (reprocess)
    REJECTED = "rejected"  # the bytes are refused for good (corrupt, unsupported, too large)
    DUPLICATE = "duplicate"  # this half was done before: nothing to do
    STALE = "stale"  # a newer upload of the key owns the item
    SUPERSEDED = "superseded"  # the version left S3, or a newer upload or a delete took the item
    ABANDONED = "abandoned"  # the version had already FAILED permanently
    DELETED = "deleted"  # the image was deleted after (or while) this version was uploaded


# The decisions that leave nothing to do, and what the event then came to (``model.resolve``
# settles UNORDERED itself, as STALE, DELETED or a take-over).
_SKIPPED = {
    Decision.DUPLICATE: Outcome.DUPLICATE,
    Decision.STALE: Outcome.STALE,
    Decision.ABANDONED: Outcome.ABANDONED,
    Decision.DELETED: Outcome.DELETED,
}


@dataclass(frozen=True)
class Result:
    """What happened to one event: logged as :meth:`to_dict` (``{"outcome", "image_id",
    "detail"}``, plain JSON) and counted (``pipeline.sqs``)."""

    outcome: Outcome
    image_id: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"outcome": self.outcome.value, "image_id": self.image_id, "detail": self.detail}


def process_object(
    event: ObjectCreated,
    *,
    work: HalfWork,
    s3: Any,
    table: MediaTable,
    limits: Limits,
    final_attempt: bool,
    read_first: bool = True,
) -> Result:
    """Do this half for the event's object version.

    ``read_first``: read the item before the work, so that a duplicate, an older event or a
    deleted image costs no work. Without it (a first delivery of S3's event, to a half whose
    work is cheap and leaves nothing outside the item: ``HalfWork.reads_first``), the half is
    made and its write built as if nothing of this version were recorded yet, as is usual for
    the half that finishes first; if that is wrong, the write's condition fails and returns the
    item as it is, and the write is decided again from that (a duplicate is recognised there).
    """
    try:
        source = objects.open_version(s3, event)
    except objects.ObjectSuperseded as gone:
        return Result(Outcome.SUPERSEDED, detail={"message": str(gone)})

    with source:
        version = source.version
        try:
            return _process(
                source, work=work, s3=s3, table=table, limits=limits, read_first=read_first
            )
        except Exception as error:
            if final_attempt:
                table.fail(
                    version,
                    Failure(
                        stage=work.half.stage,
                        reason="processing_error",
                        message=f"gave up after the last retry: {type(error).__name__}: {error}",
                        retryable=True,
                    ),
                    half=work.half,
                )
            raise


def _process(
    source: objects.Source,
    *,
    work: HalfWork,
    s3: Any,
    table: MediaTable,
    limits: Limits,
    read_first: bool,
) -> Result:
    version = source.version
    half = work.half

    @functools.cache
    def is_current() -> bool:  # asked at most once per event (a constant sequencer: backends)
        return objects.is_current(s3, version)

    seen = table.get(version.id) if read_first else None
    work = work.for_item(seen)  # an image's own framing of its cropped renditions
    decision = resolve(seen, version, half, work.settings, is_current)
    if decision is Decision.FINISH:
        # Both halves were recorded (by code that wrote READY separately) but not READY.
        finished = table.finish(version.id, version.etag)
        return Result(Outcome.READY if finished else Outcome.DUPLICATE, version.id)
    if not decision.works:
        return Result(_SKIPPED[decision], version.id)
    existing = None
    if decision is Decision.REFRESH:
        # READY, made with other settings (a reprocess): what is unchanged is kept as it is.
        existing = (seen or {}).get(half.attribute)

    if version.size > limits.max_bytes:
        produced: Produced = Rejected(
            "too_large", f"object is {version.size} bytes, the limit is {limits.max_bytes} bytes"
        )
    else:
        try:
            data = source.read(sha256=work.hash_while_reading)
        except objects.ObjectSuperseded as gone:
            return Result(Outcome.SUPERSEDED, version.id, {"message": str(gone)})
        produced = work.produce(data)

    if isinstance(produced, Rejected):
        if decision is Decision.REFRESH:  # the same bytes rendered before: settings refused
            raise RuntimeError(f"{version.id}: the new settings refuse an image made before")
        failure = Failure(half.stage, produced.reason, produced.message)
        table.fail(version, failure, half=half, seen=seen, is_current=is_current)
        return Result(
            Outcome.REJECTED, version.id, {"reason": produced.reason, "message": produced.message}
        )

    # A reprocess keeps what the image was found to be (its picture has not changed).
    related = None if decision is Decision.REFRESH else work.relate(version, produced, seen)
    related = related or UNRELATED
    if related.failure is not None:
        table.fail(version, related.failure, half=half, seen=seen, is_current=is_current)
        related.undo()
        return Result(
            Outcome.REJECTED,
            version.id,
            {"reason": related.failure.reason, "message": related.failure.message},
        )
    return _record(
        version,
        produced,
        existing,
        work=work,
        table=table,
        is_current=is_current,
        seen=seen,
        related=related,
    )


def _record(
    version: ObjectVersion,
    produced: Rendered,
    existing: Any,
    *,
    work: HalfWork,
    table: MediaTable,
    is_current: Callable[[], bool],
    seen: dict[str, Any] | None,
    related: Related = UNRELATED,
) -> Result:
    """Store what the half made and record it on the item; undo the store if it is not."""
    half = work.half
    value = work.store(version, produced, existing)
    recorded = table.record(
        version,
        half,
        value,
        seen=seen,
        settings=work.settings,
        attributes={**work.attributes(produced), **related.attributes},
        is_current=is_current,
    )
    if recorded.completion is Completion.SKIPPED:
        # Taken over meanwhile: a newer upload, a delete, or a duplicate that got there first.
        work.discard(version, value, (recorded.item or {}).get(half.attribute))
        if recorded.decision not in (Decision.DUPLICATE, Decision.FINISH):
            related.undo()  # a delivery that got there first wrote (and keeps) the same
        if recorded.decision is Decision.FINISH:
            finished = table.finish(version.id, version.etag)
            return Result(Outcome.READY if finished else Outcome.DUPLICATE, version.id)
        outcome = _SKIPPED.get(recorded.decision, Outcome.SUPERSEDED)
        if outcome in (Outcome.STALE, Outcome.DELETED):
            outcome = Outcome.SUPERSEDED
        return Result(outcome, version.id)
    related.recorded()
    if recorded.previous:
        work.retire(recorded.previous, value)
    if recorded.completion is Completion.REFRESHED:
        return Result(Outcome.REFRESHED, version.id)
    ready = recorded.completion is Completion.READY
    return Result(Outcome.READY if ready else Outcome.PARTIAL, version.id)
