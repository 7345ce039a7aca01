"""The media item: one per uploaded object key, and the rules for moving it between states.

``AWAITING_UPLOAD -> PROCESSING -> READY | FAILED``, then ``DELETED`` when the app or S3
deletes the original (from any state; terminal for the versions it covers). Two workers
(thumbnail and metadata) each complete one *half* of the work for an object version (identified
by its ETag and ordered by the S3 sequencer). READY is set once, by whichever worker finds both
halves present for the current ETag. :func:`decide_claim` is the pure decision a worker takes
when its claim on an item meets an existing record; ``media_store`` turns the decisions into
conditional DynamoDB writes.
"""

from __future__ import annotations

import base64
import re
from enum import Enum, StrEnum
from typing import Any, NamedTuple


class Status(StrEnum):
    AWAITING_UPLOAD = "AWAITING_UPLOAD"
    PROCESSING = "PROCESSING"
    READY = "READY"
    FAILED = "FAILED"
    DELETED = "DELETED"

    @property
    def settled(self) -> bool:
        """READY, FAILED and DELETED are final for an object version; the others wait for a
        worker."""
        return self in (Status.READY, Status.FAILED, Status.DELETED)


# While an item waits for a worker (AWAITING_UPLOAD, PROCESSING) it carries ``pending`` (= its
# status), the partition key of the sparse ``pending`` index the reconciler queries to find items
# stuck past a bound; settling (READY, FAILED) removes it, so the index holds only open work.
PENDING_ATTRIBUTE = "pending"
PENDING_INDEX = "pending"

# Items made through the upload API carry ``owner`` (the API key's id): the partition key of the
# ``owner`` index (sort key ``created_at``) that ``GET /images`` pages through, newest first.
OWNER_ATTRIBUTE = "owner"
OWNER_INDEX = "owner"


class Half(Enum):
    """The two independent pieces of work done for every object version."""

    RENDITIONS = ("thumbnail", "renditions")
    METADATA = ("metadata", "metadata")

    def __init__(self, stage: str, attribute: str) -> None:
        self.stage = stage  # the failure "stage" this half reports
        self.attribute = attribute  # where the half's result is stored on the item
        self.etag_attribute = f"{attribute}_etag"  # the ETag that result belongs to
        # The fingerprint of the settings the result was made with (renditions only: sizes,
        # formats, qualities); a result made with other settings is brought up to date.
        self.settings_attribute = f"{attribute}_settings"


PREVIEW_ATTRIBUTE = "preview"
"""Where the renditions half stores the placeholder and dominant colour it derives from its
smallest renditions, beside ``renditions`` and under the same ``renditions_etag``. Apps see them
in the metadata record (:func:`public_metadata`), as before they moved to the renditions half."""
PREVIEW_FIELDS = ("placeholder", "dominant_color")


def public_metadata(item: dict[str, Any]) -> dict[str, Any] | None:
    """The metadata record of the item's current version as the API and notifications show it:
    the metadata half's record with the renditions half's ``placeholder`` and ``dominant_color``
    (None while that half is not in). None while the metadata half is not in."""
    etag = item.get("etag")
    record = item.get("metadata")
    if item.get("metadata_etag") != etag or not isinstance(record, dict):
        return None
    current = item.get("renditions_etag") == etag
    preview = (item.get(PREVIEW_ATTRIBUTE) if current else None) or {}
    return {**record, **{name: preview.get(name) for name in PREVIEW_FIELDS}}


ID_LENGTH = 26  # lowercase base32 characters (130 bits)
_ID = rf"[a-z2-7]{{{ID_LENGTH}}}"
_ID_IN_KEY = re.compile(rf"(?:^|/)({_ID})/[^/]+$")


def new_media_id() -> str:
    """A fresh random item id, in the same alphabet and length as :func:`media_id`."""
    import secrets  # noqa: PLC0415 - the upload API's alone (random, hmac: ~1 ms of a start)

    return base64.b32encode(secrets.token_bytes(20)).decode("ascii")[:ID_LENGTH].lower()


def media_id(bucket: str, key: str) -> str:
    """The item id of an object key: stable, opaque, URL-safe (26 base32 characters).

    Keys the upload API hands out have the form ``<prefix><id>/<filename>``: the id is the one
    the API chose (and created the item under). Any other key (a direct S3 upload) gets a hash
    of bucket and key.
    """
    match = _ID_IN_KEY.search(key)
    if match:
        return match.group(1)
    import hashlib  # noqa: PLC0415 - direct uploads' alone (OpenSSL: ~2 ms of a start)

    digest = hashlib.sha256(f"{bucket}\0{key}".encode()).digest()
    return base64.b32encode(digest).decode("ascii")[:ID_LENGTH].lower()


def is_media_id(value: str) -> bool:
    """Whether ``value`` has the shape of an item id (26 lowercase base32 characters)."""
    return re.fullmatch(_ID, value) is not None


class Upload(NamedTuple):
    """One object version in the uploads bucket, confirmed by S3 (key resolved, ETag matched)."""

    bucket: str
    key: str
    etag: str
    size: int
    content_type: str
    sequencer: str
    version_id: str | None = None
    uploaded_at: str = ""

    @property
    def id(self) -> str:
        return media_id(self.bucket, self.key)


class Failure(NamedTuple):
    stage: str
    reason: str  # corrupt | unsupported | too_large | processing_error
    message: str
    retryable: bool = False

    def to_dict(self) -> dict[str, Any]:
        """As stored on the media item and notified: ``stage``, ``reason``, ``message``,
        ``retryable``."""
        return self._asdict()


class Decision(StrEnum):
    """What a worker does after its claim met an existing record."""

    WORK = "work"  # do this half for this version
    REOPEN_AND_WORK = "reopen"  # this half had given up on a transient error: reopen the item
    DUPLICATE = "duplicate"  # this half is already done and the version settled: skip
    FINISH = "finish"  # this half is already done, the version is not settled: re-check READY
    STALE = "stale"  # a newer upload of the key owns the item: skip
    # The item holds another ETag under the same sequencer: the sequencer cannot order the two
    # uploads, so S3 must say which one is current (``MediaTable.claim`` asks it).
    UNORDERED = "unordered"
    ABANDONED = "abandoned"  # the version already FAILED permanently: nothing left to do
    DELETED = "deleted"  # the image was deleted after (or while) this version was uploaded: skip
    REFRESH = "refresh"  # READY, but this half was made with other settings: redo it (reprocess)


def decide_claim(
    existing: dict[str, Any], upload: Upload, half: Half, settings: str | None = None
) -> Decision:
    """Decide, from the item as it is, what the worker for ``half`` does with ``upload``.

    Called only when the unconditional part of a claim failed, i.e. the item already carries a
    sequencer that is equal to or newer than the upload's, or it is DELETED by a delete that is
    not older than the upload. Sequencers order different ETags only: an event for the ETag the
    item holds is about that version. ``settings`` is the fingerprint of the worker's settings
    for this half (None where the half has none).
    """
    if existing.get("status") == Status.DELETED and not _newer_than_deletion(existing, upload):
        if existing.get("deleted_sequencer") == upload.sequencer:
            # An upload with the very sequencer of S3's delete: never on S3, always on an
            # emulator with a constant sequencer. S3 decides (is this ETag there again?).
            return Decision.UNORDERED
        return Decision.DELETED
    if existing.get("etag") != upload.etag:
        if existing.get("sequencer", "") > upload.sequencer:
            return Decision.STALE  # a newer upload
        # An equal sequencer with another ETag. S3 gives every write its own sequencer, but an
        # emulator may not (LocalStack puts one constant in every event): don't trust it blindly.
        return Decision.UNORDERED
    # The item's own version, whatever the sequencer of this event for it (an older event for
    # the same content is no reason to skip a half, and its "stale" would be remembered).
    status = existing.get("status")
    if status == Status.READY:
        done = existing.get(half.etag_attribute) == upload.etag
        if done and settings is not None and existing.get(half.settings_attribute) != settings:
            return Decision.REFRESH
        return Decision.DUPLICATE
    if existing.get(half.etag_attribute) == upload.etag:
        # Done before, by a worker that may have died before it could mark the version READY:
        # while the version is PROCESSING, a duplicate delivery re-checks whether READY is due.
        return Decision.FINISH if status == Status.PROCESSING else Decision.DUPLICATE
    if status == Status.FAILED:
        failure = existing.get("failure") or {}
        if not failure.get("retryable"):
            return Decision.ABANDONED
        if failure.get("stage") == half.stage:
            return Decision.REOPEN_AND_WORK
    return Decision.WORK


def _newer_than_deletion(existing: dict[str, Any], upload: Upload) -> bool:
    """Whether ``upload`` was written after the deletion that marked the item DELETED.

    S3's own delete event records its sequencer (``deleted_sequencer``); until it has, (a delete
    through the API, whose S3 event is still on its way) no upload counts as newer, so nothing
    that was in flight when the app deleted the image can bring it back.
    """
    deleted = existing.get("deleted_sequencer")
    return bool(deleted) and deleted < upload.sequencer
