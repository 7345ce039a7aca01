"""The media item's state machine as conditional writes: which attributes a move sets and
removes, and the condition under which it may happen.

Plain functions of the item as last read and what happened to it; they send nothing.
``media_store.MediaTable`` sends each :class:`Write` as one ``UpdateItem`` (``dynamo.update``)
and, when its condition fails, decides again from the item DynamoDB hands back. A condition
names exactly what the write was decided from, so a write built from an item that has changed
since (the other half, a newer upload, a delete) never lands.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from boto3.dynamodb.conditions import Attr, ConditionBase

from media_pipeline.model import (
    FRAMING_ATTRIBUTE,
    LEGACY_PENDING_ATTRIBUTE,
    WAITING_ATTRIBUTES,
    Decision,
    Failure,
    Half,
    ObjectVersion,
    Status,
    framing_revision,
    settings_revision,
    waiting_attributes,
)
from media_pipeline.values import iso, now_iso

# What no longer applies once a version is installed: the previous version's settling, and the
# upload request's deadline and declared size (the object's own size is recorded).
_PAST = ("failure", "expires_at", "ready_at", "failed_at", "reconciled", "deleted_at")
_REQUEST_ONLY = ("upload_expires_at", "declared_size")
# Settling (READY, FAILED, DELETED) takes the item out of the ``waiting`` index (and out of the
# index of the release before it).
_STOP_WAITING = (*WAITING_ATTRIBUTES, LEGACY_PENDING_ATTRIBUTE)


@dataclass(frozen=True)
class Write:
    """One conditional UpdateItem of an item: ``set_`` (attributes set), ``set_if_absent`` (set
    only where the item has none yet) and ``remove``, done only ``when`` the condition holds."""

    set_: dict[str, Any]
    when: ConditionBase
    remove: tuple[str, ...] = ()
    set_if_absent: dict[str, Any] | None = None


class Completion(StrEnum):
    """What recording a half does to its version."""

    READY = "ready"  # this write records the last half and marks the version READY
    PARTIAL = "partial"  # this half is recorded; the other half is still to come
    REFRESHED = "refreshed"  # a READY version's half made again with the current settings
    SKIPPED = "skipped"  # nothing recorded: see ``media_store.Recorded.decision``


def half_write(
    seen: dict[str, Any] | None,
    version: ObjectVersion,
    half: Half,
    decision: Decision,
    *,
    value: Any,
    settings: str | None,
    attributes: dict[str, Any] | None,
) -> tuple[Write, Completion]:
    """Record ``half``'s ``value`` (and its further ``attributes``) for ``version``, as
    ``decision`` (one that works: ``Decision.works``) says, from the item as ``seen``: the
    version installed if it is new, READY set if the other half is in.

    Renditions are recorded only while the item still asks for the framing they were made with
    (``settings``: ``model.framed_settings``): a ``PATCH`` that lands meanwhile sends a job of its
    own, and the renditions of the framing it replaced must not overwrite that job's."""
    now = now_iso()
    other = half.other
    recorded = {
        **(attributes or {}),
        half.attribute: value,
        half.etag_attribute: version.etag,
        "updated_at": now,
    }
    if settings is not None:
        recorded[half.settings_attribute] = settings
    this_version = Attr("etag").eq(version.etag)
    installable = _installable(seen, version)
    if half is Half.RENDITIONS and settings is not None:
        framing = framing_is(settings_revision(settings))
        this_version, installable = this_version & framing, installable & framing
    if decision is Decision.NEW_VERSION:
        return (
            Write(
                set_={
                    **_version_attributes(version, now),
                    **recorded,
                    "status": Status.PROCESSING.value,
                },
                set_if_absent={"created_at": now, **waiting_attributes(version.id, now)},
                remove=(*_PAST, *_REQUEST_ONLY, *_absent(version), "deleted_sequencer"),
                when=installable,
            ),
            Completion.PARTIAL,
        )
    if decision is Decision.REFRESH:
        when = this_version & Attr("status").eq(Status.READY.value)
        return Write(set_=recorded, when=when), Completion.REFRESHED

    other_in = (seen or {}).get(other.etag_attribute) == version.etag
    other_state = (
        Attr(other.etag_attribute).eq(version.etag)
        if other_in
        else Attr(other.etag_attribute).not_exists() | Attr(other.etag_attribute).ne(version.etag)
    )
    status = (seen or {}).get("status")
    if decision is Decision.REOPEN_AND_WORK:
        now_status = this_version & _failed_retryably(half)
    elif status == Status.FAILED:
        # The other half gave up on a transient error: record this one beside it, so that
        # a redrive of the other's job completes the version. No change of status.
        when = this_version & _failed_retryably(other)
        return Write(set_=recorded, when=when), Completion.PARTIAL
    else:
        now_status = this_version & Attr("status").eq(Status.PROCESSING.value)
    if other_in:
        return (
            Write(
                set_={**recorded, "status": Status.READY.value, "ready_at": now},
                remove=("failure", "failed_at", *_STOP_WAITING),
                when=now_status & other_state,
            ),
            Completion.READY,
        )
    return (
        Write(
            set_={**recorded, "status": Status.PROCESSING.value},
            set_if_absent=waiting_attributes(version.id, now),
            remove=("failure", "failed_at"),
            when=now_status & other_state,
        ),
        Completion.PARTIAL,
    )


def framing_is(revision: int | None) -> ConditionBase:
    """The item asks for framing ``revision`` (None: the app never set one)."""
    if revision is None:
        return Attr(FRAMING_ATTRIBUTE).not_exists()
    return Attr(f"{FRAMING_ATTRIBUTE}.revision").eq(revision)


def finish_write(etag: str) -> Write:
    """READY, if both halves of the version ``etag`` are in and it is still PROCESSING."""
    now = now_iso()
    return Write(
        set_={"status": Status.READY.value, "ready_at": now, "updated_at": now},
        remove=_STOP_WAITING,
        when=Attr("etag").eq(etag)
        & Attr("status").eq(Status.PROCESSING.value)
        & Attr(Half.RENDITIONS.etag_attribute).eq(etag)
        & Attr(Half.METADATA.etag_attribute).eq(etag),
    )


def failure_write(
    seen: dict[str, Any] | None,
    version: ObjectVersion,
    failure: Failure,
    half: Half,
    decision: Decision,
) -> Write | None:
    """FAILED with ``failure``, for ``half`` of ``version``, from the item as ``seen`` and what
    ``half`` would decide for it (``decision``); None where nothing failed (another version's
    item, a half that is recorded, a version settled otherwise)."""
    now = now_iso()
    failed = {
        "status": Status.FAILED.value,
        "failure": failure.to_dict(),
        "failed_at": now,
        "updated_at": now,
    }
    if decision is Decision.NEW_VERSION:
        return Write(
            set_={**_version_attributes(version, now), **failed},
            set_if_absent={"created_at": now},
            remove=(
                *(name for name in _PAST if name not in failed),
                *_REQUEST_ONLY,
                *_absent(version),
                "deleted_sequencer",
                *_STOP_WAITING,
            ),
            when=_installable(seen, version),
        )
    seen = seen or {}
    if seen.get("etag") != version.etag or seen.get(half.etag_attribute) == version.etag:
        return None  # another version's item, or this half is recorded: nothing failed
    this_version = Attr("etag").eq(version.etag) & (
        Attr(half.etag_attribute).not_exists() | Attr(half.etag_attribute).ne(version.etag)
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
    return Write(set_=failed, remove=_STOP_WAITING, when=when)


def deletion_write(
    now: float, *, retention_seconds: int, key: str | None, sequencer: str | None
) -> Write:
    """DELETED (from any state but DELETED), to expire ``retention_seconds`` after ``now``
    (epoch seconds). With S3's delete event's ``key`` and ``sequencer``: only the item of that
    key, and only if the delete is not older than the upload the item describes."""
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
        # Not older than the upload the item describes. Equal never happens on S3 (every write
        # has its own sequencer), only on an emulator with a constant one (backends.py); the
        # caller has just seen that the key holds no object, so the delete is the latest word.
        when &= Attr("key").eq(key) & (
            Attr("sequencer").not_exists() | Attr("sequencer").lte(sequencer)
        )
    return Write(set_=set_, remove=_STOP_WAITING, when=when)


def deleted_sequencer_write(sequencer: str) -> Write:
    """Record when S3's delete happened on an item already DELETED (through the API first),
    unless a newer delete got there first."""
    return Write(
        set_={"deleted_sequencer": sequencer},
        when=Attr("status").eq(Status.DELETED.value)
        & (Attr("deleted_sequencer").not_exists() | Attr("deleted_sequencer").lt(sequencer)),
    )


def reconciled_write(etag: str | None, status: Status, attempt: int) -> Write:
    """The reconciler re-enqueued this version's work (``attempt`` times so far), which also
    restarts its clock (``updated_at``); ``etag`` None for an upload request."""
    same_version = Attr("etag").eq(etag) if etag is not None else Attr("etag").not_exists()
    return Write(
        set_={"reconciled": attempt, "updated_at": now_iso()},
        when=same_version & Attr("status").eq(status.value),
    )


def stop_waiting_write() -> Write:
    """An upload request that was never used leaves the ``waiting`` index (it stays
    AWAITING_UPLOAD until its TTL), unless its object arrived meanwhile."""
    return Write(
        set_={"updated_at": now_iso()},
        remove=_STOP_WAITING,
        when=Attr("status").eq(Status.AWAITING_UPLOAD.value) & Attr("etag").not_exists(),
    )


def _version_attributes(version: ObjectVersion, now: str) -> dict[str, Any]:
    """The attributes that say which object version an item describes."""
    attributes = {
        "bucket": version.bucket,
        "key": version.key,
        "etag": version.etag,
        "sequencer": version.sequencer,
        "size": version.size,
        "content_type": version.content_type,
        "uploaded_at": version.uploaded_at or now,
        "updated_at": now,
    }
    if version.version_id:
        attributes["version_id"] = version.version_id
    return attributes


def _absent(version: ObjectVersion) -> tuple[str, ...]:
    """The version's attributes it has no value for (removed, rather than stored as NULL)."""
    return () if version.version_id else ("version_id",)


def _installable(seen: dict[str, Any] | None, version: ObjectVersion) -> ConditionBase:
    """The condition under which ``version`` may become the item's version.

    Normally: the item holds no sequencer, or an older one, and no delete newer than the
    version. When the item holds another ETag under the very same sequencer (an emulator's
    constant sequencer: backends.py) and S3 said this version is the current one: exactly that
    item, as it was read.
    """
    sequencer = version.sequencer
    if seen and seen.get("status") == Status.DELETED and seen.get("deleted_sequencer") == sequencer:
        return (
            Attr("status").eq(Status.DELETED.value)
            & Attr("deleted_sequencer").eq(sequencer)
            & Attr("etag").eq(seen.get("etag"))
        )
    if seen and seen.get("etag") != version.etag and seen.get("sequencer") == sequencer:
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


def framing_write(seen: dict[str, Any], framing: dict[str, Any]) -> Write:
    """The app's ``framing`` of a READY image's cropped renditions (``focus`` and ``crop_box``,
    either absent for automatic) as the item's next revision: only while the item is the
    version ``seen`` was, READY, at the revision ``seen`` had (two PATCHes never share one)."""
    revision = framing_revision(seen)
    return Write(
        set_={
            FRAMING_ATTRIBUTE: {**framing, "revision": (revision or 0) + 1},
            "updated_at": now_iso(),
        },
        when=Attr("etag").eq(seen.get("etag"))
        & Attr("status").eq(Status.READY.value)
        & framing_is(revision),
    )
