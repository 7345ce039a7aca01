"""The media table: reads of media items, and the item's state machine sent as conditional writes.

A worker reads the item once, decides (``model.resolve``), does its half, and records it in ONE
conditional write built from the item it read (``item_writes``): a newer upload's first half
installs the version, the last half sets READY in the same write, and a permanent failure
settles it FAILED. If the item changed meanwhile (the other half, a newer upload, a delete), the
condition fails, DynamoDB hands back the item as it now is, and the write is decided again from
that. So an older event never overwrites a newer upload's record, READY is set exactly once, and
a crash at any point leaves an item that a redelivery or the reconciler completes.

Each of these writes is one item's; DynamoDB applies the writes to an item one at a time and a
condition sees every earlier write. The embedded stack's moto does the same (docs/local.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from boto3.dynamodb.conditions import Attr, Key

from media_pipeline import dynamo, item_writes
from media_pipeline.item_writes import Completion, Write
from media_pipeline.model import (
    WAITING_INDEX,
    WAITING_SHARD,
    WAITING_SHARDS,
    WAITING_SINCE,
    Decision,
    Failure,
    Half,
    ObjectVersion,
    Status,
    framing_revision,
    resolve,
    settings_revision,
)

_ATTEMPTS = 5  # a write that keeps losing to concurrent writes raises (SQS retries the job)


class _Unread:
    """The item was not read: read it first."""


UNREAD = _Unread()


class Contended(RuntimeError):
    """The item changed under every attempt to write it: transient, the message is retried."""


@dataclass(frozen=True)
class Recorded:
    """What :meth:`MediaTable.record` did."""

    completion: Completion
    decision: Decision  # what the write was decided as (why it was skipped)
    previous: Any = None  # the half's value before this write (an older version's renditions)
    item: dict[str, Any] | None = None  # the item as last seen, when nothing was recorded


class Removal(StrEnum):
    """What a delete came to: :meth:`MediaTable.mark_deleted`'s answer, and what
    ``lifecycle`` logs for a whole delete (the values are logged: they do not change)."""

    DELETED = "deleted"  # this call marked the item DELETED
    ALREADY_DELETED = "already_deleted"  # it was DELETED before (a repeated or racing delete)
    NOT_FOUND = "not_found"  # no such item (or the event's key is not the item's)
    STALE = "stale"  # S3's delete is older than the upload the item describes
    STILL_PRESENT = "still_present"  # S3 still holds an object under the key: nothing deleted


@dataclass(frozen=True)
class Deletion:
    """A delete of one image: what it came to, the item as it was before (``{}``: none), and
    how many renditions it removed (``lifecycle``)."""

    outcome: Removal
    image_id: str
    item: dict[str, Any] = field(default_factory=dict)
    renditions_removed: int = 0

    def removed(self, renditions: int) -> Deletion:
        return replace(self, renditions_removed=renditions)

    def to_dict(self) -> dict[str, Any]:
        """As logged: ``{"outcome", "image_id", "detail": {"renditions_removed"}}``."""
        return {
            "outcome": self.outcome.value,
            "image_id": self.image_id,
            "detail": {"renditions_removed": self.renditions_removed},
        }


class MediaTable:
    """Reads and conditional writes of media items. Takes its DynamoDB client as an argument."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    @property
    def name(self) -> str:
        return self._table

    # -- reads --------------------------------------------------------------------------------

    def get(self, image_id: str) -> dict[str, Any] | None:
        response = self._client.get_item(
            TableName=self._table, Key={"id": {"S": image_id}}, ConsistentRead=True
        )
        item = response.get("Item")
        return dynamo.from_item(item) if item else None

    def waiting(self, before: str) -> Iterator[str]:
        """The ids of the items that started waiting for a worker before ``before`` (ISO 8601)
        and still wait, shard by shard, oldest first within a shard (the ``waiting`` index)."""
        paginator = self._client.get_paginator("query")
        for index in range(WAITING_SHARDS):
            condition = Key(WAITING_SHARD).eq(f"{index:02d}") & Key(WAITING_SINCE).lt(before)
            for page in paginator.paginate(
                TableName=self._table, IndexName=WAITING_INDEX, **dynamo.key_condition(condition)
            ):
                for item in page.get("Items", []):
                    yield item["id"]["S"]

    # -- the upload API's request -------------------------------------------------------------

    def create(self, item: dict[str, Any]) -> bool:
        """Put a new item (the upload API's AWAITING_UPLOAD record). False if the id is taken."""
        try:
            self._client.put_item(
                TableName=self._table,
                Item=dynamo.to_item(item),
                **dynamo.condition(Attr("id").not_exists()),
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    # -- a worker's half ----------------------------------------------------------------------

    def record(
        self,
        version: ObjectVersion,
        half: Half,
        value: Any,
        *,
        seen: dict[str, Any] | None,
        settings: str | None = None,
        attributes: dict[str, Any] | None = None,
        is_current: Callable[[], bool] | None = None,
    ) -> Recorded:
        """Record this half's ``value`` (and the further ``attributes`` it sets) for the version,
        in one conditional write decided from ``seen``, the item as the worker read it: the
        version installed if the upload is newer, READY set if the other half is in, a READY
        version's half replaced by a reprocess (``settings``: the fingerprint of what the half
        was made with). Nothing is recorded where the decision is to skip (a newer upload, a
        delete, a permanent failure, the half already there): the caller removes what it
        stored, unless the item records the same.
        """
        for _ in range(_ATTEMPTS):
            if half is Half.RENDITIONS and settings_revision(settings) != framing_revision(seen):
                # The app asked for other framing since these were made: its job makes them.
                return Recorded(Completion.SKIPPED, Decision.STALE, item=seen)
            decision = resolve(seen, version, half, settings, is_current)
            if not decision.works:
                return Recorded(Completion.SKIPPED, decision, item=seen)
            write, completion = item_writes.half_write(
                seen, version, half, decision, value=value, settings=settings, attributes=attributes
            )
            try:
                old = self._update(version.id, write, return_values="ALL_OLD")
            except self._client.exceptions.ConditionalCheckFailedException as error:
                seen = _old_item(error)
                continue
            return Recorded(completion, decision, previous=old.get(half.attribute))
        raise Contended(f"{version.id}: the item kept changing under {_ATTEMPTS} writes")

    def reframe(self, seen: dict[str, Any], framing: dict[str, Any]) -> dict[str, Any] | None:
        """Ask for ``framing`` (``item_writes.framing_write``) of the READY image ``seen``: the
        item as it is now, or None when it changed since ``seen`` was read (read it again)."""
        try:
            return self._update(
                seen["id"], item_writes.framing_write(seen, framing), return_values="ALL_NEW"
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return None

    def finish(self, image_id: str, etag: str) -> bool:
        """Mark the version READY if both halves are in and it is still PROCESSING.

        True if this call made it READY. Safe to call any number of times, from any worker.
        """
        # False: not complete, already settled, or a newer upload took over.
        return self._update_if(image_id, item_writes.finish_write(etag))

    def fail(
        self,
        version: ObjectVersion,
        failure: Failure,
        *,
        half: Half,
        seen: dict[str, Any] | _Unread | None = UNREAD,
        is_current: Callable[[], bool] | None = None,
    ) -> bool:
        """Settle the version FAILED with a reason; True if this call did.

        ``half`` is the half that failed, ``seen`` the item as last read (None: there was none;
        read here if not given). The version is installed first if the upload is newer than
        what the item holds (an upload whose first half fails). A permanent failure also
        overrides an earlier retryable one, so that a redrive of the other half cannot reopen a
        version that can never succeed. Nothing is done to a version that is settled otherwise,
        or whose half ``half`` is recorded (it did not fail).
        """
        if isinstance(seen, _Unread):
            seen = self.get(version.id)
        for _ in range(_ATTEMPTS):
            decision = resolve(seen, version, half, None, is_current)
            write = item_writes.failure_write(seen, version, failure, half, decision)
            if write is None:
                return False
            try:
                self._update(version.id, write)
            except self._client.exceptions.ConditionalCheckFailedException as error:
                seen = _old_item(error)
                continue
            return True
        raise Contended(f"{version.id}: the item kept changing under {_ATTEMPTS} writes")

    # -- deletes ------------------------------------------------------------------------------

    def mark_deleted(
        self,
        image_id: str,
        *,
        retention_seconds: int,
        key: str | None = None,
        sequencer: str | None = None,
    ) -> Deletion:
        """Mark the item DELETED (from any state), to expire ``retention_seconds`` later (TTL).

        Through the API: ``key`` and ``sequencer`` are None. For S3's own delete event: the
        object ``key`` it names must be the item's, and its ``sequencer`` newer than the upload
        the item describes (else a newer upload owns the item: STALE); it is recorded as
        ``deleted_sequencer``, which decides which later uploads may take the item again
        (``model.decide``), also on an item the API marked DELETED first.
        """
        write = item_writes.deletion_write(
            time.time(), retention_seconds=retention_seconds, key=key, sequencer=sequencer
        )
        try:
            old = self._update(image_id, write, return_values="ALL_OLD")
            return Deletion(Removal.DELETED, image_id, old)
        except self._client.exceptions.ConditionalCheckFailedException as error:
            existing = _old_item(error) or {}
        if not existing or (key is not None and existing.get("key") != key):
            return Deletion(Removal.NOT_FOUND, image_id, existing)
        if existing.get("status") != Status.DELETED:
            return Deletion(Removal.STALE, image_id, existing)
        if sequencer is not None and existing.get("deleted_sequencer", "") < sequencer:
            # Deleted through the API first: S3's event now says when the object went.
            # (A newer delete, or upload, may get there first: then there is nothing to do.)
            with suppress(self._client.exceptions.ConditionalCheckFailedException):
                self._update(image_id, item_writes.deleted_sequencer_write(sequencer))
        return Deletion(Removal.ALREADY_DELETED, image_id, existing)

    # -- the reconciler -----------------------------------------------------------------------

    def mark_reconciled(
        self, image_id: str, etag: str | None, status: Status, attempt: int
    ) -> bool:
        """Record that the reconciler re-enqueued this version's work (``attempt`` times so far),
        which also restarts its clock (``updated_at``). ``etag`` is None for an upload request
        (no object yet). False if the item moved on meanwhile."""
        return self._update_if(image_id, item_writes.reconciled_write(etag, status, attempt))

    def stop_waiting(self, image_id: str) -> bool:
        """Take an upload request that was never used out of the ``waiting`` index (it stays
        AWAITING_UPLOAD until its TTL). False if its object arrived meanwhile."""
        return self._update_if(image_id, item_writes.stop_waiting_write())

    # -- one write ----------------------------------------------------------------------------

    def _update_if(self, image_id: str, write: Write) -> bool:
        """Send ``write``; False if its condition did not hold."""
        try:
            self._update(image_id, write)
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def _update(
        self, image_id: str, write: Write, *, return_values: str = "NONE"
    ) -> dict[str, Any]:
        response = self._client.update_item(
            TableName=self._table,
            Key={"id": {"S": image_id}},
            ReturnValues=return_values,
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
            **dynamo.update(
                set_=write.set_,
                set_if_absent=write.set_if_absent,
                remove=write.remove,
                when=write.when,
            ),
        )
        return dynamo.from_item(response.get("Attributes") or {})


def _old_item(error: Any) -> dict[str, Any] | None:
    """The item as it was when a conditional write failed (None: there was none)."""
    item = error.response.get("Item")
    return dynamo.from_item(item) if item else None
