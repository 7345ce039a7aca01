"""The media table: the item's state machine as conditional writes.

A worker reads the item once, decides (``model.decide``), does its half, and records it in ONE
conditional write built from the item it read: a newer upload's first half installs the version,
the last half sets READY in the same write, and a permanent failure settles it FAILED. If the
item changed meanwhile (the other half, a newer upload, a delete), the condition fails, DynamoDB
hands back the item as it now is, and the write is decided again from that. So an older event
never overwrites a newer upload's record, READY is set exactly once, and a crash at any point
leaves an item that a redelivery or the reconciler completes.

Each of these writes is one item's; DynamoDB applies the writes to an item one at a time and a
condition sees every earlier write. The embedded stack's moto does the same (docs/local.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from boto3.dynamodb.conditions import Attr, ConditionBase, Key

from media_pipeline import dynamo
from media_pipeline.dynamo import from_item, to_attribute
from media_pipeline.model import (
    LEGACY_PENDING_ATTRIBUTE,
    WAITING_ATTRIBUTES,
    WAITING_INDEX,
    WAITING_SHARD,
    WAITING_SHARDS,
    WAITING_SINCE,
    Decision,
    Failure,
    Half,
    Status,
    Upload,
    decide,
    waiting_attributes,
)
from media_pipeline.values import iso, now_iso

__all__ = ["Completion", "Deletion", "MediaTable", "Recorded", "Removal", "from_item"]

_ATTEMPTS = 5  # a write that keeps losing to concurrent writes raises (SQS retries the job)
# What no longer applies once a version is installed: the previous version's settling, and the
# upload request's deadline and declared size (the object's own size is recorded).
_PAST = ("failure", "expires_at", "ready_at", "failed_at", "reconciled", "deleted_at")
_REQUEST_ONLY = ("upload_expires_at", "declared_size")
_STOP_WAITING = (*WAITING_ATTRIBUTES, LEGACY_PENDING_ATTRIBUTE)


class _Unread:
    """The item was not read: read it first."""


UNREAD = _Unread()


class Contended(RuntimeError):
    """The item changed under every attempt to write it: transient, the message is retried."""


class Completion(StrEnum):
    READY = "ready"  # this write recorded the last half and marked the version READY
    PARTIAL = "partial"  # this half is recorded; the other half is still to come
    REFRESHED = "refreshed"  # a READY version's half made again with the current settings
    SKIPPED = "skipped"  # nothing recorded: see ``Recorded.decision``


@dataclass(frozen=True)
class Recorded:
    completion: Completion
    decision: Decision  # what the write was decided as (why it was skipped)
    previous: Any = None  # the half's value before this write (an older version's renditions)
    item: dict[str, Any] | None = None  # the item as last seen, when nothing was recorded


class Removal(StrEnum):
    DELETED = "deleted"  # this call marked the item DELETED
    ALREADY_DELETED = "already_deleted"  # it was DELETED before (a repeated or racing delete)
    NOT_FOUND = "not_found"  # no such item (or the event's key is not the item's)
    STALE = "stale"  # S3's delete is older than the upload the item describes


@dataclass(frozen=True)
class Deletion:
    outcome: Removal
    item: dict[str, Any]  # the item as it was before


@dataclass(frozen=True)
class _Write:
    """One conditional UpdateItem of an item's state machine."""

    set_: dict[str, Any]
    when: ConditionBase
    remove: tuple[str, ...] = ()
    set_if_absent: dict[str, Any] | None = None


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
        return from_item(item) if item else None

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

    def resolve(
        self,
        seen: dict[str, Any] | None,
        upload: Upload,
        half: Half,
        settings: str | None = None,
        is_current: Callable[[], bool] | None = None,
    ) -> Decision:
        """:func:`model.decide`, with an UNORDERED item settled by asking S3 (``is_current``):
        the upload S3 holds now is the newer one (NEW_VERSION); otherwise it is STALE (DELETED
        if the item is)."""
        decision = decide(seen, upload, half, settings)
        if decision is Decision.UNORDERED:
            if is_current is not None and is_current():
                return Decision.NEW_VERSION
            deleted = (seen or {}).get("status") == Status.DELETED
            return Decision.DELETED if deleted else Decision.STALE
        return decision

    def record(
        self,
        upload: Upload,
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
            decision = self.resolve(seen, upload, half, settings, is_current)
            if not decision.works:
                return Recorded(Completion.SKIPPED, decision, item=seen)
            write, completion = self._half_write(
                seen, upload, half, decision, value=value, settings=settings, attributes=attributes
            )
            try:
                old = self._update(upload.id, write, return_values="ALL_OLD")
            except self._client.exceptions.ConditionalCheckFailedException as error:
                seen = _old_item(error)
                continue
            return Recorded(completion, decision, previous=old.get(half.attribute))
        raise Contended(f"{upload.id}: the item kept changing under {_ATTEMPTS} writes")

    def _half_write(
        self,
        seen: dict[str, Any] | None,
        upload: Upload,
        half: Half,
        decision: Decision,
        *,
        value: Any,
        settings: str | None,
        attributes: dict[str, Any] | None,
    ) -> tuple[_Write, Completion]:
        now = now_iso()
        other = half.other
        recorded = {
            **(attributes or {}),
            half.attribute: value,
            half.etag_attribute: upload.etag,
            "updated_at": now,
        }
        if settings is not None:
            recorded[half.settings_attribute] = settings
        this_version = Attr("etag").eq(upload.etag)
        if decision is Decision.NEW_VERSION:
            return (
                _Write(
                    set_={**_version(upload, now), **recorded, "status": Status.PROCESSING.value},
                    set_if_absent={"created_at": now, **waiting_attributes(upload.id, now)},
                    remove=(*_PAST, *_REQUEST_ONLY, *_absent(upload), "deleted_sequencer"),
                    when=_installable(seen, upload),
                ),
                Completion.PARTIAL,
            )
        if decision is Decision.REFRESH:
            when = this_version & Attr("status").eq(Status.READY.value)
            return _Write(set_=recorded, when=when), Completion.REFRESHED

        other_in = (seen or {}).get(other.etag_attribute) == upload.etag
        other_state = (
            Attr(other.etag_attribute).eq(upload.etag)
            if other_in
            else Attr(other.etag_attribute).not_exists()
            | Attr(other.etag_attribute).ne(upload.etag)
        )
        status = (seen or {}).get("status")
        if decision is Decision.REOPEN_AND_WORK:
            now_status = this_version & _failed_retryably(half)
        elif status == Status.FAILED:
            # The other half gave up on a transient error: record this one beside it, so that
            # a redrive of the other's job completes the version. No change of status.
            when = this_version & _failed_retryably(other)
            return _Write(set_=recorded, when=when), Completion.PARTIAL
        else:
            now_status = this_version & Attr("status").eq(Status.PROCESSING.value)
        if other_in:
            return (
                _Write(
                    set_={**recorded, "status": Status.READY.value, "ready_at": now},
                    remove=("failure", "failed_at", *_STOP_WAITING),
                    when=now_status & other_state,
                ),
                Completion.READY,
            )
        return (
            _Write(
                set_={**recorded, "status": Status.PROCESSING.value},
                set_if_absent=waiting_attributes(upload.id, now),
                remove=("failure", "failed_at"),
                when=now_status & other_state,
            ),
            Completion.PARTIAL,
        )

    def finish(self, image_id: str, etag: str) -> bool:
        """Mark the version READY if both halves are in and it is still PROCESSING.

        True if this call made it READY. Safe to call any number of times, from any worker.
        """
        now = now_iso()
        write = _Write(
            set_={"status": Status.READY.value, "ready_at": now, "updated_at": now},
            remove=_STOP_WAITING,
            when=Attr("etag").eq(etag)
            & Attr("status").eq(Status.PROCESSING.value)
            & Attr(Half.RENDITIONS.etag_attribute).eq(etag)
            & Attr(Half.METADATA.etag_attribute).eq(etag),
        )
        try:
            self._update(image_id, write)
        except self._client.exceptions.ConditionalCheckFailedException:
            return False  # not complete, already settled, or a newer upload took over
        return True

    def fail(
        self,
        upload: Upload,
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
            seen = self.get(upload.id)
        for _ in range(_ATTEMPTS):
            write = self._failure_write(seen, upload, failure, half, is_current)
            if write is None:
                return False
            try:
                self._update(upload.id, write)
            except self._client.exceptions.ConditionalCheckFailedException as error:
                seen = _old_item(error)
                continue
            return True
        raise Contended(f"{upload.id}: the item kept changing under {_ATTEMPTS} writes")

    def _failure_write(
        self,
        seen: dict[str, Any] | None,
        upload: Upload,
        failure: Failure,
        half: Half,
        is_current: Callable[[], bool] | None,
    ) -> _Write | None:
        now = now_iso()
        failed = {
            "status": Status.FAILED.value,
            "failure": failure.to_dict(),
            "failed_at": now,
            "updated_at": now,
        }
        decision = self.resolve(seen, upload, half, None, is_current)
        if decision is Decision.NEW_VERSION:
            return _Write(
                set_={**_version(upload, now), **failed},
                set_if_absent={"created_at": now},
                remove=(
                    *(name for name in _PAST if name not in failed),
                    *_REQUEST_ONLY,
                    *_absent(upload),
                    "deleted_sequencer",
                    *_STOP_WAITING,
                ),
                when=_installable(seen, upload),
            )
        seen = seen or {}
        if seen.get("etag") != upload.etag or seen.get(half.etag_attribute) == upload.etag:
            return None  # another version's item, or this half is recorded: nothing failed
        this_version = Attr("etag").eq(upload.etag) & (
            Attr(half.etag_attribute).not_exists() | Attr(half.etag_attribute).ne(upload.etag)
        )
        status = seen.get("status")
        if status == Status.PROCESSING:
            when = this_version & Attr("status").eq(Status.PROCESSING.value)
        elif status == Status.FAILED and not failure.retryable:
            when = this_version & Attr("status").eq(Status.FAILED.value)
            when &= Attr("failure.retryable").eq(True)
            if not (seen.get("failure") or {}).get("retryable"):
                return None
        else:
            return None
        return _Write(set_=failed, remove=_STOP_WAITING, when=when)

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
        now = time.time()
        stamp = iso(now, "milliseconds")
        set_: dict[str, Any] = {
            "status": Status.DELETED.value,
            "deleted_at": stamp,
            "updated_at": stamp,
            "expires_at": int(now + retention_seconds),
        }
        when = Attr("id").exists() & Attr("status").ne(Status.DELETED.value)
        if sequencer is not None:
            set_["deleted_sequencer"] = sequencer
            # Not older than the upload the item describes. Equal never happens on S3 (every
            # write has its own sequencer), only on an emulator with a constant one; the caller
            # has just seen that the key holds no object, so the delete is the latest word.
            when &= Attr("key").eq(key) & (
                Attr("sequencer").not_exists() | Attr("sequencer").lte(sequencer)
            )
        try:
            old = self._update(
                image_id,
                _Write(set_=set_, remove=_STOP_WAITING, when=when),
                return_values="ALL_OLD",
            )
            return Deletion(Removal.DELETED, old)
        except self._client.exceptions.ConditionalCheckFailedException as error:
            existing = _old_item(error) or {}
        if not existing or (key is not None and existing.get("key") != key):
            return Deletion(Removal.NOT_FOUND, existing)
        if existing.get("status") != Status.DELETED:
            return Deletion(Removal.STALE, existing)
        if sequencer is not None and existing.get("deleted_sequencer", "") < sequencer:
            # Deleted through the API first: S3's event now says when the object went.
            # (A newer delete, or upload, may get there first: then there is nothing to do.)
            with suppress(self._client.exceptions.ConditionalCheckFailedException):
                self._update(
                    image_id,
                    _Write(
                        set_={"deleted_sequencer": sequencer},
                        when=Attr("status").eq(Status.DELETED.value)
                        & (
                            Attr("deleted_sequencer").not_exists()
                            | Attr("deleted_sequencer").lt(sequencer)
                        ),
                    ),
                )
        return Deletion(Removal.ALREADY_DELETED, existing)

    # -- the reconciler -----------------------------------------------------------------------

    def mark_reconciled(
        self, image_id: str, etag: str | None, status: Status, attempt: int
    ) -> bool:
        """Record that the reconciler re-enqueued this version's work (``attempt`` times so far),
        which also restarts its clock (``updated_at``). ``etag`` is None for an upload request
        (no object yet). False if the item moved on meanwhile."""
        same_version = Attr("etag").eq(etag) if etag is not None else Attr("etag").not_exists()
        write = _Write(
            set_={"reconciled": attempt, "updated_at": now_iso()},
            when=same_version & Attr("status").eq(status.value),
        )
        try:
            self._update(image_id, write)
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def stop_waiting(self, image_id: str) -> bool:
        """Take an upload request that was never used out of the ``waiting`` index (it stays
        AWAITING_UPLOAD until its TTL). False if its object arrived meanwhile."""
        write = _Write(
            set_={"updated_at": now_iso()},
            remove=_STOP_WAITING,
            when=Attr("status").eq(Status.AWAITING_UPLOAD.value) & Attr("etag").not_exists(),
        )
        try:
            self._update(image_id, write)
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    # -- one write ----------------------------------------------------------------------------

    def _update(
        self, image_id: str, write: _Write, *, return_values: str = "NONE"
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
        return from_item(response.get("Attributes") or {})


def _version(upload: Upload, now: str) -> dict[str, Any]:
    """The attributes that say which object version an item describes."""
    version = {
        "bucket": upload.bucket,
        "key": upload.key,
        "etag": upload.etag,
        "sequencer": upload.sequencer,
        "size": upload.size,
        "content_type": upload.content_type,
        "uploaded_at": upload.uploaded_at or now,
        "updated_at": now,
    }
    if upload.version_id:
        version["version_id"] = upload.version_id
    return version


def _absent(upload: Upload) -> tuple[str, ...]:
    """The version's attributes it has no value for (removed, rather than stored as NULL)."""
    return () if upload.version_id else ("version_id",)


def _installable(seen: dict[str, Any] | None, upload: Upload) -> ConditionBase:
    """The condition under which ``upload`` may become the item's version.

    Normally: the item holds no sequencer, or an older one, and no delete newer than the upload.
    When the item holds another ETag under the very same sequencer (an emulator's constant
    sequencer) and S3 said this upload is the current one: exactly that item, as it was read.
    """
    sequencer = upload.sequencer
    if seen and seen.get("status") == Status.DELETED and seen.get("deleted_sequencer") == sequencer:
        return (
            Attr("status").eq(Status.DELETED.value)
            & Attr("deleted_sequencer").eq(sequencer)
            & Attr("etag").eq(seen.get("etag"))
        )
    if seen and seen.get("etag") != upload.etag and seen.get("sequencer") == sequencer:
        return (
            Attr("sequencer").eq(sequencer)
            & Attr("etag").eq(seen.get("etag"))
            & _not_deleted_since(sequencer)
        )
    older = Attr("sequencer").not_exists() | Attr("sequencer").lt(sequencer)
    return older & _not_deleted_since(sequencer)


def _not_deleted_since(sequencer: str) -> ConditionBase:
    return (
        Attr("status").not_exists()
        | Attr("status").ne(Status.DELETED.value)
        | Attr("deleted_sequencer").lt(sequencer)
    )


def _failed_retryably(half: Half) -> ConditionBase:
    """The version FAILED because ``half`` gave up on a transient error."""
    return (
        Attr("status").eq(Status.FAILED.value)
        & Attr("failure.retryable").eq(True)
        & Attr("failure.stage").eq(half.stage)
    )


def _old_item(error: Any) -> dict[str, Any] | None:
    """The item as it was when a conditional write failed (None: there was none)."""
    item = error.response.get("Item")
    return from_item(item) if item else None


__all__ += ["Contended", "to_attribute"]
