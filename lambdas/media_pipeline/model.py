"""The media item: one per uploaded object key, and the rules for moving it between states.

``AWAITING_UPLOAD -> PROCESSING -> READY | FAILED``, then ``DELETED`` when the app or S3
deletes the original (from any state; terminal for the versions it covers). Two workers
(renditions and metadata) each complete one *half* of the work for an object version (identified
by its ETag and ordered by the S3 sequencer). READY is set once, in the same write as whichever
half is recorded last. :func:`decide` is the pure decision a worker takes from the item as it
stands; ``media_store`` turns the decisions into conditional DynamoDB writes, and decides again
from what a failed condition returns.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
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


DELETED_RETENTION_SECONDS = 7 * 24 * 3600
"""How long a DELETED item stays (``GET /images/{id}`` answers 404 with the time of deletion)
before DynamoDB's TTL removes it, unless the environment says otherwise (DELETED_TTL_SECONDS,
which Terraform sets from ``deleted_retention_days``, whose default this is:
tests/unit/test_config.py checks that they agree)."""

# While an item waits for a worker (AWAITING_UPLOAD, PROCESSING) it carries ``waiting_shard`` and
# ``waiting_since``: the keys of the sparse, keys-only ``waiting`` index where the reconciler finds
# the items stuck past a bound. Settling (READY, FAILED, DELETED) removes them, so the index holds
# only open work. The shard spreads the index over WAITING_SHARDS partition key values (one
# value for every image would cap the deployment at 1,000 index writes per second); the
# reconciler queries all of them. ``waiting_since`` is set when the item starts waiting and
# does not move while it waits, so an item costs the index two writes: in and out.
WAITING_INDEX = "waiting"
WAITING_SHARD = "waiting_shard"
WAITING_SINCE = "waiting_since"
WAITING_SHARDS = 32
WAITING_ATTRIBUTES = (WAITING_SHARD, WAITING_SINCE)

# Items made through the upload API carry ``owner`` (the API key's id) and ``listing_key``
# (``<owner>#<shard>``), the partition key of the sparse, keys-only ``listing`` index (sort key
# ``created_at``) that ``GET /images`` pages through, newest first, merging the app's
# LISTING_SHARDS keys. One key per app would cap an app at 1,000 uploads per second.
OWNER_ATTRIBUTE = "owner"
LISTING_INDEX = "listing"
LISTING_KEY = "listing_key"
LISTING_SHARDS = 16

# The attribute (and index) the design before the sharded indexes used for open work: removed
# whenever an item settles, so that items written before a migration leave that index too
# (docs/deploy.md, "Migrating to the sharded indexes").
LEGACY_PENDING_ATTRIBUTE = "pending"

_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"  # base32, lowercase: the alphabet of item ids


def shard(image_id: str, shards: int) -> int:
    """Which of ``shards`` an item falls in: from its id's first character, which is uniformly
    distributed (ids are random, or a SHA-256 of bucket and key, in base32)."""
    return _ALPHABET.find(image_id[:1]) % shards


def waiting_attributes(image_id: str, since: str) -> dict[str, str]:
    """The attributes that put an item in the ``waiting`` index, from ``since`` on."""
    return {WAITING_SHARD: f"{shard(image_id, WAITING_SHARDS):02d}", WAITING_SINCE: since}


def listing_key(owner: str, image_id: str) -> str:
    """The ``listing`` index key of an owner's image."""
    return f"{owner}#{shard(image_id, LISTING_SHARDS):02d}"


def listing_keys(owner: str) -> list[str]:
    """Every ``listing`` index key of an owner, one per shard."""
    return [f"{owner}#{index:02d}" for index in range(LISTING_SHARDS)]


class Half(Enum):
    """The two independent pieces of work done for every object version."""

    RENDITIONS = ("thumbnail", "renditions")
    METADATA = ("metadata", "metadata")

    def __init__(self, stage: str, attribute: str) -> None:
        # The failure "stage" this half reports, and the name of the function that does it
        # (the renditions half's is "thumbnail": handlers/thumbnail.py says why).
        self.stage = stage
        self.attribute = attribute  # where the half's result is stored on the item
        self.etag_attribute = f"{attribute}_etag"  # the ETag that result belongs to
        # The fingerprint of the settings the result was made with (renditions only: sizes,
        # formats, qualities); a result made with other settings is brought up to date.
        self.settings_attribute = f"{attribute}_settings"

    @property
    def other(self) -> Half:
        """The half done by the other worker."""
        return Half.METADATA if self is Half.RENDITIONS else Half.RENDITIONS


PREVIEW_ATTRIBUTE = "preview"
"""Where the renditions half stores the placeholder and dominant colour it derives from its
smallest renditions, beside ``renditions`` and under the same ``renditions_etag``. Apps see them
in the metadata record (:func:`public_metadata`), as before they moved to the renditions half."""
PREVIEW_FIELDS = ("placeholder", "dominant_color")
FEATURE_FIELDS = ("thumbhash", "focus", "crops")
"""What the renditions half also finds in the picture (``imaging.Features``) and keeps in
``preview`` for apps: a ThumbHash placeholder, the focal point its cropped renditions are placed
around, and each cropped rendition's window. In the metadata record beside the placeholder."""

FRAMING_ATTRIBUTE = "framing"
"""What the app asked of an image's cropped renditions (``PATCH /images/{id}``): ``focus``
(``{x, y}``) and ``crop_box`` (``{left, top, right, bottom}``), either absent for automatic, and
``revision``, one more at every request. The renditions half renders with them, and records
:func:`framed_settings` as its settings, so that a request makes the cropped renditions again
(``Decision.REFRESH``) once, and the notifier announces it once (``image.updated``)."""


def framing_revision(item: dict[str, Any] | None) -> int | None:
    """The revision of the framing an item asks for; None when the app never set one."""
    framing = (item or {}).get(FRAMING_ATTRIBUTE)
    if not isinstance(framing, dict) or framing.get("revision") is None:
        return None
    return int(framing["revision"])


def framed_settings(settings: str, item: dict[str, Any] | None) -> str:
    """The renditions settings of one image: the deployment's fingerprint, and after it the
    revision of the framing the app asked for, if it asked (``<fingerprint>~<revision>``). A
    reprocess finds images made with other settings by the prefix alone."""
    revision = framing_revision(item)
    return settings if revision is None else f"{settings}~{revision}"


def settings_revision(settings: str | None) -> int | None:
    """The framing revision :func:`framed_settings` wrote into ``settings``, if any."""
    if not settings or "~" not in settings:
        return None
    return int(settings.rpartition("~")[2])


def rendition_keys(renditions: Any) -> list[str]:
    """Every object key a renditions record (the item's ``renditions``) names, its alternates'
    too, in the record's order; none for anything that is not such a record."""
    if not isinstance(renditions, dict):
        return []
    keys = []
    for record in renditions.values():
        if not isinstance(record, dict):
            continue
        if "key" in record:
            keys.append(record["key"])
        for alternate in (record.get("alternates") or {}).values():
            if isinstance(alternate, dict) and "key" in alternate:
                keys.append(alternate["key"])
    return keys


def public_metadata(item: dict[str, Any]) -> dict[str, Any] | None:
    """The metadata record of the item's current version as the API and notifications show it:
    the metadata half's record with the renditions half's ``placeholder``, ``dominant_color``,
    ``thumbhash``, ``focus`` and ``crops`` (None while that half is not in). None while the
    metadata half is not in."""
    etag = item.get("etag")
    record = item.get("metadata")
    if item.get("metadata_etag") != etag or not isinstance(record, dict):
        return None
    current = item.get("renditions_etag") == etag
    preview = (item.get(PREVIEW_ATTRIBUTE) if current else None) or {}
    return {**record, **{name: preview.get(name) for name in (*PREVIEW_FIELDS, *FEATURE_FIELDS)}}


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


class ObjectVersion(NamedTuple):
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
    reason: str  # corrupt | unsupported | too_large | processing_error | duplicate
    message: str
    retryable: bool = False
    duplicate_of: dict[str, Any] | None = None
    """A ``duplicate``'s original, ``{image_id, distance}`` (``duplicates_index``)."""

    def to_dict(self) -> dict[str, Any]:
        """As stored on the media item and notified: ``stage``, ``reason``, ``message``,
        ``retryable`` (and a ``duplicate``'s ``duplicate_of``)."""
        failure = self._asdict()
        if self.duplicate_of is None:
            del failure["duplicate_of"]
        return failure


class Decision(StrEnum):
    """What a worker does with an object version, given the item as it stands
    (:func:`decide`)."""

    NEW_VERSION = "new_version"  # the upload is newer than what the item holds: record it
    WORK = "work"  # the item's own version, this half not done yet: do it
    REOPEN_AND_WORK = "reopen"  # this half had given up on a transient error: do it again
    DUPLICATE = "duplicate"  # this half is already done: skip
    FINISH = "finish"  # both halves are in but the version is not settled: settle it
    STALE = "stale"  # a newer upload of the key owns the item: skip
    # The item holds another ETag under the same sequencer: the sequencer cannot order the two
    # uploads, so S3 must say which one is current (``MediaTable`` asks it).
    UNORDERED = "unordered"
    ABANDONED = "abandoned"  # the version already FAILED permanently: nothing left to do
    DELETED = "deleted"  # the image was deleted after (or while) this version was uploaded: skip
    REFRESH = "refresh"  # READY, but this half was made with other settings: redo it (reprocess)

    @property
    def works(self) -> bool:
        """Whether the half is produced (the object read, the renditions or metadata made)."""
        return self in _WORKING


def decide(
    existing: dict[str, Any] | None, version: ObjectVersion, half: Half, settings: str | None = None
) -> Decision:
    """Decide, from the item as it is (None: there is none yet), what the worker for ``half``
    does with ``version``.

    Sequencers order different ETags only: an event for the ETag the item holds is about that
    version, whatever its sequencer (the same bytes written again are no new work). ``settings``
    is the fingerprint of the worker's settings for this half (None where the half has none).
    """
    if not existing:
        return Decision.NEW_VERSION  # a direct upload: its first half creates the item
    if existing.get("status") == Status.DELETED:
        if _newer_than_deletion(existing, version):
            return Decision.NEW_VERSION
        if existing.get("deleted_sequencer") == version.sequencer:
            # An upload with the very sequencer of S3's delete: never on S3, always on an
            # emulator with a constant sequencer (backends). S3 decides (is this ETag there?).
            return Decision.UNORDERED
        return Decision.DELETED
    if existing.get("etag") != version.etag:
        sequencer = existing.get("sequencer")
        if sequencer is None or sequencer < version.sequencer:
            return Decision.NEW_VERSION  # an upload request's first object, or newer content
        if sequencer > version.sequencer:
            return Decision.STALE
        # An equal sequencer with another ETag. S3 gives every write its own sequencer, but an
        # emulator may not (LocalStack's is constant: backends): don't trust it blindly.
        return Decision.UNORDERED
    return _decide_for_version(existing, version, half, settings)


def resolve(
    existing: dict[str, Any] | None,
    version: ObjectVersion,
    half: Half,
    settings: str | None = None,
    is_current: Callable[[], bool] | None = None,
) -> Decision:
    """:func:`decide`, with an UNORDERED item settled by asking S3 (``is_current``: whether
    ``version`` is what the key holds now): the version S3 holds now is the newer one
    (NEW_VERSION); otherwise it is STALE (DELETED if the item is)."""
    decision = decide(existing, version, half, settings)
    if decision is Decision.UNORDERED:
        if is_current is not None and is_current():
            return Decision.NEW_VERSION
        deleted = (existing or {}).get("status") == Status.DELETED
        return Decision.DELETED if deleted else Decision.STALE
    return decision


def _decide_for_version(
    existing: dict[str, Any], version: ObjectVersion, half: Half, settings: str | None
) -> Decision:
    """:func:`decide` for an item that holds the upload's own version."""
    status = existing.get("status")
    other = half.other
    done = existing.get(half.etag_attribute) == version.etag
    if status == Status.READY:
        if done and settings is not None and existing.get(half.settings_attribute) != settings:
            return Decision.REFRESH
        return Decision.DUPLICATE
    if done:
        # Both halves in and still PROCESSING happens only to items written before READY and
        # the last half became one write; a duplicate of a half whose partner is still working
        # has nothing to do (the partner settles the version).
        both = existing.get(other.etag_attribute) == version.etag
        return Decision.FINISH if both and status == Status.PROCESSING else Decision.DUPLICATE
    if status == Status.FAILED:
        failure = existing.get("failure") or {}
        if not failure.get("retryable"):
            return Decision.ABANDONED
        if failure.get("stage") == half.stage:
            return Decision.REOPEN_AND_WORK
        # The other half gave up on a transient error: this half is still recorded, so that a
        # redrive of the other's job completes the version.
    return Decision.WORK


_WORKING = frozenset(
    {Decision.NEW_VERSION, Decision.WORK, Decision.REOPEN_AND_WORK, Decision.REFRESH}
)


def _newer_than_deletion(existing: dict[str, Any], version: ObjectVersion) -> bool:
    """Whether ``version`` was written after the deletion that marked the item DELETED.

    S3's own delete event records its sequencer (``deleted_sequencer``); until it has, (a delete
    through the API, whose S3 event is still on its way) no upload counts as newer, so nothing
    that was in flight when the app deleted the image can bring it back.
    """
    deleted = existing.get("deleted_sequencer")
    return bool(deleted) and deleted < version.sequencer
