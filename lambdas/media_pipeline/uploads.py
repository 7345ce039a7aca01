"""The upload API's operations: request an upload (the item AWAITING_UPLOAD and a presigned POST
for it), describe, list, reframe and delete images.

Plain Python with its clients passed in; ``handlers/api.py`` maps it onto HTTP,
``api_requests`` checks what comes in (and holds the API's errors), ``api_views`` shapes what
goes out.
"""

from __future__ import annotations

import json
import re
import time
import unicodedata
from typing import Any

from media_pipeline import api_views, lifecycle
from media_pipeline.api_requests import (
    ALLOWED_TYPES,
    ApiError,
    parse_framing,
    parse_list_query,
    parse_upload_request,
)
from media_pipeline.config.api import ApiSettings
from media_pipeline.config.env import ConfigError
from media_pipeline.delivery import Delivery, PresignedS3
from media_pipeline.duplicates_index import DuplicatesIndex
from media_pipeline.listing import Listing, encode_cursor
from media_pipeline.media_store import MediaTable, Removal
from media_pipeline.model import (
    ID_LENGTH,
    LISTING_KEY,
    OWNER_ATTRIBUTE,
    Status,
    is_media_id,
    listing_key,
    new_media_id,
    waiting_attributes,
)
from media_pipeline.reconcile import job_event
from media_pipeline.values import iso, now_iso

# An upload's key is <prefix><id>/<file name>, the name made safe (sanitise_filename) and short,
# so that keys stay far below S3's limit.
_KEPT_NAME_CHARS = 100
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
S3_MAX_KEY_BYTES = 1024


def sanitise_filename(name: str, content_type: str) -> str:
    """A key-safe file name: the last path segment, ASCII letters, digits, ``._-`` only."""
    base = re.split(r"[/\\]", name)[-1]
    ascii_name = unicodedata.normalize("NFKD", base).encode("ascii", "ignore").decode()
    safe = _UNSAFE.sub("_", ascii_name).strip("._-")
    if not safe:
        return f"image{ALLOWED_TYPES[content_type]}"
    stem, dot, extension = safe.rpartition(".")
    if not dot:
        return safe[:_KEPT_NAME_CHARS]
    extension = extension[:10]
    return f"{stem[: _KEPT_NAME_CHARS - len(extension) - 1]}.{extension}"


class UploadApi:
    """Creates upload requests and describes images. Takes its clients as arguments."""

    def __init__(
        self,
        settings: ApiSettings,
        s3: Any,
        dynamodb: Any,
        links: Delivery | None = None,
        forget: lifecycle.Forget | None = None,
        *,
        sqs: Any = None,
    ) -> None:
        """``links``: where rendition URLs point (``media_pipeline.delivery``: the CDN's; by
        default S3 presigned GETs signed by ``s3``'s credentials). ``forget``: what else must
        let go of a deleted image's renditions (the CDN's caches). ``sqs``: sends a reframed
        image's renditions job (``settings.renditions_queue_url``)."""
        # Keys are <prefix><id>/<sanitised name>: the prefix must leave room for the longest.
        longest_key = len(settings.upload_prefix.encode()) + ID_LENGTH + 1 + _KEPT_NAME_CHARS
        if longest_key > S3_MAX_KEY_BYTES:
            raise ConfigError(
                f"environment variable UPLOAD_PREFIX is too long: keys under it could reach "
                f"{longest_key} bytes (S3 allows {S3_MAX_KEY_BYTES})"
            )
        self._settings = settings
        self._s3 = s3
        self._forget = forget
        self._sqs = sqs
        self._delivery = links or PresignedS3(
            s3, settings.renditions_bucket, settings.download_expiry_seconds
        )
        self._table = MediaTable(dynamodb, settings.media_table)
        self._listing = Listing(dynamodb, settings.media_table)
        self._duplicates = (
            DuplicatesIndex(dynamodb, settings.duplicates_table)
            if settings.duplicates_table
            else None
        )

    def create_upload(self, body: Any, owner: str | None = None) -> dict[str, Any]:
        """``owner``: who asks (the API key's id); their images are listed by ``list_images``."""
        settings = self._settings
        request = parse_upload_request(body, settings.max_upload_bytes)
        expires = time.time() + settings.upload_expiry_seconds
        upload_expires_at = iso(expires)
        created_at = now_iso()
        name = sanitise_filename(request.filename, request.content_type)
        while True:
            image_id = new_media_id()
            key = f"{settings.upload_prefix}{image_id}/{name}"
            created = self._table.create(
                {
                    "id": image_id,
                    "status": Status.AWAITING_UPLOAD.value,
                    **waiting_attributes(image_id, created_at),
                    "bucket": settings.uploads_bucket,
                    "key": key,
                    "filename": request.filename,
                    "content_type": request.content_type,
                    "declared_size": request.size,
                    "upload_expires_at": upload_expires_at,
                    "created_at": created_at,
                    "updated_at": created_at,
                    # DynamoDB TTL (epoch seconds): abandoned requests are deleted; a worker's
                    # first recorded half removes it once the object arrives.
                    "expires_at": int(expires + settings.pending_ttl_seconds),
                    OWNER_ATTRIBUTE: owner,
                    LISTING_KEY: listing_key(owner, image_id) if owner else None,
                }
            )
            if created:  # 130 random bits: a collision is practically impossible, but cheap
                break
        post = self._s3.generate_presigned_post(
            Bucket=settings.uploads_bucket,
            Key=key,
            Fields={"Content-Type": request.content_type},
            Conditions=[
                {"Content-Type": request.content_type},
                # Exactly the declared size: every client knows it (File.size, len(data)), and
                # a request for 100 bytes must not carry 25 MiB.
                ["content-length-range", request.size, request.size],
            ],
            ExpiresIn=settings.upload_expiry_seconds,
        )
        return {
            "image_id": image_id,
            "upload": {"url": post["url"], "fields": post["fields"]},
            "expires_at": upload_expires_at,
            "max_bytes": settings.max_upload_bytes,
        }

    def describe(self, image_id: str) -> dict[str, Any]:
        """``GET /images/{id}``: the image's view (``api_views.image``); 404 for an id that is
        none, or an image that was deleted (with when)."""
        item = self._table.get(image_id) if is_media_id(image_id) else None
        if item is None:
            raise ApiError(404, "not_found", f"no image with id {image_id[:64]!r}")
        if item["status"] == Status.DELETED:
            raise ApiError(
                404,
                "deleted",
                f"image {image_id} was deleted at {item.get('deleted_at')}",
                deleted_at=item.get("deleted_at"),
            )
        return api_views.image(item, self._delivery)

    def reframe(self, image_id: str, body: Any) -> dict[str, Any]:
        """``PATCH /images/{id}``: where the image's cropped renditions are cut (``focus``,
        ``crop_box``; null or left out: automatic). Recorded as the image's next framing
        revision, then its renditions job is sent: the worker makes the cropped renditions again
        (only those) and the notifier announces one ``image.updated``. The image's view, as it
        is until then (``framing`` already the new one). 409 unless the image is READY."""
        framing = parse_framing(body)
        if not self._settings.renditions_queue_url or self._sqs is None:
            raise ApiError(501, "not_implemented", "this deployment cannot make renditions again")
        for _ in range(3):  # another PATCH of the same image in between: apply on top of it
            item = self._existing(image_id)
            if item["status"] != Status.READY:
                raise ApiError(
                    409,
                    "not_ready",
                    f"image {image_id} is {item['status']}: its framing can be set once READY",
                )
            reframed = self._table.reframe(item, framing)
            if reframed is not None:
                break
        else:
            raise ApiError(409, "conflict", f"image {image_id} kept changing: try again")
        job = job_event(
            bucket=reframed["bucket"],
            key=reframed["key"],
            etag=reframed["etag"],
            size=int(reframed.get("size") or 0),
            sequencer=reframed["sequencer"],
            version_id=reframed.get("version_id"),
            reason="Reframe",
        )
        # Sent after the write: a job that ran before it would find nothing to do. If sending
        # fails the request fails (5xx) and the client's retry sends the next revision's job.
        self._sqs.send_message(
            QueueUrl=self._settings.renditions_queue_url, MessageBody=json.dumps(job)
        )
        return api_views.image(reframed, self._delivery)

    def _existing(self, image_id: str) -> dict[str, Any]:
        """The item of an image that exists and is not deleted; 404 otherwise."""
        item = self._table.get(image_id) if is_media_id(image_id) else None
        if item is None or item["status"] == Status.DELETED:
            raise ApiError(404, "not_found", f"no image with id {image_id[:64]!r}")
        return item

    def delete(self, image_id: str) -> str:
        """Delete an image: its original, its renditions, and (after a while) its item.
        Idempotent: deleting it again answers the same. The outcome, for the log."""
        if not is_media_id(image_id):
            raise ApiError(404, "not_found", f"no image with id {image_id[:64]!r}")
        deleted = lifecycle.delete_image(
            self._table,
            self._s3,
            image_id,
            renditions_bucket=self._settings.renditions_bucket,
            retention_seconds=self._settings.deleted_ttl_seconds,
            forget=self._forget,
            duplicates=self._duplicates,
        )
        if deleted.outcome is Removal.NOT_FOUND:
            raise ApiError(404, "not_found", f"no image with id {image_id[:64]!r}")
        return deleted.outcome.value

    def list_images(self, owner: str, query: dict[str, str] | None) -> dict[str, Any]:
        """The owner's images, newest first, a page at a time (``next_cursor`` until the end)."""
        asked = parse_list_query(query, owner)
        if asked.duplicate_of is not None:
            # Its duplicates, in id order (without a duplicates table: none are recorded).
            items, end = (
                self._listing.duplicates(
                    self._duplicates,
                    owner,
                    asked.duplicate_of,
                    limit=asked.limit,
                    status=asked.status,
                    after=asked.after,
                )
                if self._duplicates is not None
                else ([], None)
            )
        else:
            items, end = self._listing.page(
                owner, limit=asked.limit, status=asked.status, after=asked.after
            )
        return {
            "images": [api_views.summary(item) for item in items],
            "next_cursor": encode_cursor(owner, end) if end else None,
        }
