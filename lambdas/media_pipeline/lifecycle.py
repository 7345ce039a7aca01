"""Deleting an image: through the API (``DELETE /images/{id}``) or by deleting its original in S3.

Either way the item is marked DELETED first (a conditional write; it then expires by TTL), and
only then are the renditions removed, by listing everything under the image's prefix in the
renditions bucket. A worker still processing the image when it is deleted either recorded its
renditions before the mark (they are listed and removed here) or finds the item DELETED when it
tries to record them and removes what it wrote itself (``MediaTable.complete`` refuses the write,
the worker discards). So no rendition outlives a delete, and nothing in flight brings the image
back (``model.decide``). The notifier announces the transition to DELETED once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from media_pipeline import objects
from media_pipeline.duplicates_index import DuplicatesIndex
from media_pipeline.events import ObjectDeleted
from media_pipeline.media_store import Deletion, MediaTable, Removal
from media_pipeline.model import DELETED_RETENTION_SECONDS, media_id

# What else must let go of a deleted image's renditions (the CDN: delivery.Invalidator), given
# the image id and the ETag of the version deleted.
Forget = Callable[[str, str], None]


def delete_image(
    table: MediaTable,
    s3: Any,
    image_id: str,
    *,
    renditions_bucket: str,
    retention_seconds: int = DELETED_RETENTION_SECONDS,
    forget: Forget | None = None,
    duplicates: DuplicatesIndex | None = None,
) -> Deletion:
    """The app deletes an image: mark it DELETED, delete its original, remove its renditions
    (and ``forget`` them: the CDN drops its copies), and take it out of the app's
    ``duplicates`` index (its images that named it no longer do).

    Idempotent: deleting a DELETED image again repeats the clean-up (a crash between the steps
    is finished by the retry) and reports ``already_deleted``.
    """
    deletion = table.mark_deleted(image_id, retention_seconds=retention_seconds)
    if deletion.outcome is Removal.NOT_FOUND:
        return deletion
    item = deletion.item
    if item.get("bucket") and item.get("key"):
        # Its S3 "Object Deleted" event comes back to the renditions worker, which finds the
        # item DELETED already. With versioning on, this leaves a delete marker; the version
        # itself expires with the bucket's noncurrent-version lifecycle rule.
        s3.delete_object(Bucket=item["bucket"], Key=item["key"])
    if duplicates is not None:
        duplicates.forget(item, table.name)
    removed = remove_renditions(s3, renditions_bucket, image_id)
    if forget is not None:
        forget(image_id, item.get("etag") or "")
    return deletion.removed(removed)


def object_deleted(
    table: MediaTable,
    s3: Any,
    event: ObjectDeleted,
    *,
    renditions_bucket: str,
    retention_seconds: int = DELETED_RETENTION_SECONDS,
    forget: Forget | None = None,
    duplicates: DuplicatesIndex | None = None,
) -> Deletion:
    """S3 says an original was deleted: mark its item DELETED and remove its renditions (and
    ``forget`` them: the CDN drops its copies; ``duplicates``: as :func:`delete_image`).

    Nothing is done while the key still holds an object (a noncurrent version expired, or the
    key was written again since: that upload's own event takes the item over).
    """
    keys = event.candidate_keys()  # the raw key, then its decoding (LocalStack's: backends)
    image_id = media_id(event.bucket, keys[0])
    if any(_exists(s3, event.bucket, key) for key in keys):
        return Deletion(Removal.STILL_PRESENT, image_id)
    for key in keys:
        image_id = media_id(event.bucket, key)
        deletion = table.mark_deleted(
            image_id, retention_seconds=retention_seconds, key=key, sequencer=event.sequencer
        )
        if deletion.outcome is not Removal.NOT_FOUND:
            break
    if deletion.outcome in (Removal.NOT_FOUND, Removal.STALE):
        return deletion
    if duplicates is not None:
        duplicates.forget(deletion.item, table.name)
    removed = remove_renditions(s3, renditions_bucket, image_id)
    if forget is not None:
        forget(image_id, deletion.item.get("etag") or "")
    return deletion.removed(removed)


def remove_renditions(s3: Any, bucket: str, image_id: str) -> int:
    """Delete every object under the image's prefix in the renditions bucket (all versions of
    the upload, all settings); the number deleted."""
    removed = 0
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=objects.rendition_prefix(image_id)):
        keys = [obj["Key"] for obj in page.get("Contents", [])]
        if keys:
            s3.delete_objects(
                Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True}
            )
            removed += len(keys)
    return removed


def _exists(s3: Any, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if objects.is_not_found(error):
            return False
        raise
    return True
