"""The upload API's logic: validate an upload request, presign it, describe, list and delete
images.

Plain Python with its clients passed in; ``handlers/api.py`` maps it onto HTTP. Every bad input
raises :class:`ApiError` with the HTTP status, a stable code and the field at fault: a request
that passes :func:`parse_upload_request` can be stored (DynamoDB) and signed (the presigned POST)
as it is, so nothing a client sends can end in a 5xx.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
import unicodedata
from dataclasses import dataclass
from typing import Any

from media_pipeline import delivery, lifecycle
from media_pipeline.config.api import ApiSettings
from media_pipeline.config.env import ConfigError
from media_pipeline.delivery import PresignedS3
from media_pipeline.listing import Listing, Position
from media_pipeline.media_store import MediaTable, Removal
from media_pipeline.model import (
    ID_LENGTH,
    LISTING_KEY,
    OWNER_ATTRIBUTE,
    PREVIEW_ATTRIBUTE,
    Status,
    is_media_id,
    listing_key,
    new_media_id,
    public_metadata,
    waiting_attributes,
)
from media_pipeline.values import iso, now_iso

# What the pipeline can decode (Pillow + pillow-heif), by the Content-Type an upload must carry.
ALLOWED_TYPES: dict[str, str] = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "image/avif": ".avif",
    "image/heic": ".heic",
    "image/heif": ".heif",
    "image/tiff": ".tiff",
}
MAX_FILENAME_CHARS = 255  # code points: at most 1020 bytes of UTF-8
_KEPT_NAME_CHARS = 100
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
# C0 controls (NUL included), DEL and C1 controls: never part of a file name or a media type.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_SHOWN_NAME_CHARS = 64  # of an unknown field's name, in the error
S3_MAX_KEY_BYTES = 1024
REQUEST_FIELDS = ("filename", "content_type", "size")
LIST_LIMIT_DEFAULT = 20
LIST_LIMIT_MAX = 100
LIST_PARAMETERS = ("status", "limit", "cursor")
_CURSOR_FIELDS = ("id", OWNER_ATTRIBUTE, "created_at")  # the listing position, for its owner


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.extra = extra

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        return body | self.extra


@dataclass(frozen=True)
class UploadRequest:
    filename: str
    content_type: str
    size: int


def _invalid(field: str, message: str) -> ApiError:
    return ApiError(400, "invalid_field", f"{field}: {message}", field)


def parse_upload_request(body: Any, max_bytes: int) -> UploadRequest:
    """Check a decoded JSON body field by field; the first problem found is reported."""
    if not isinstance(body, dict):
        raise ApiError(400, "malformed_body", "the body must be a JSON object")
    for name in body:
        if name not in REQUEST_FIELDS:
            raise _invalid(_shown(name), f"unknown field (expected {', '.join(REQUEST_FIELDS)})")
    for name in REQUEST_FIELDS:
        if name not in body:
            raise ApiError(400, "missing_field", f"{name}: required", name)

    filename = _text("filename", body["filename"], "must be a non-empty string")
    if len(filename) > MAX_FILENAME_CHARS:
        raise _invalid("filename", f"must be at most {MAX_FILENAME_CHARS} characters")

    return UploadRequest(
        filename=filename,
        content_type=_media_type(body["content_type"]),
        size=_size(body["size"], max_bytes),
    )


def _text(field: str, value: Any, requirement: str) -> str:
    """A non-empty string DynamoDB can store and SigV4 can sign: valid UTF-8, no controls."""
    if not isinstance(value, str) or not value.strip():
        raise _invalid(field, requirement)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:  # a lone surrogate, e.g. "\ud800" in the JSON
        raise _invalid(
            field,
            f"is not valid Unicode text: lone surrogate {value[error.start]!a} "
            f"at character {error.start}",
        ) from None
    control = CONTROL_CHARACTERS.search(value)
    if control:
        raise _invalid(
            field,
            f"must not contain control characters: {control.group()!a} "
            f"at character {control.start()}",
        )
    return value


def _shown(name: Any) -> str:
    """An unknown field's name as the error names it: as sent, unless it is unprintable or long."""
    text = str(name)
    clean = text.isprintable() and len(text) <= _SHOWN_NAME_CHARS
    return text if clean else ascii(text[:_SHOWN_NAME_CHARS])


def _media_type(content_type: Any) -> str:
    content_type = _text(
        "content_type", content_type, "must be a non-empty string such as image/jpeg"
    )
    if content_type not in ALLOWED_TYPES:  # exactly as documented: lowercase, no parameters
        raise ApiError(
            415,
            "unsupported_media_type",
            f"content_type: {content_type[:100]!r} is not accepted "
            f"(allowed: {', '.join(ALLOWED_TYPES)})",
            "content_type",
        )
    return content_type


def _size(size: Any, max_bytes: int) -> int:
    if isinstance(size, float) and size.is_integer():
        size = int(size)  # 1024.0 is a whole number of bytes; inf, nan and 1.5 are not
    if isinstance(size, bool) or not isinstance(size, int):
        raise _invalid("size", "must be an integer number of bytes")
    if size < 1:
        raise _invalid("size", "must be at least 1 byte")
    if size > max_bytes:  # the deployment's limit: not in the schema, so the error says it
        raise ApiError(
            413,
            "too_large",
            f"size: {size} bytes is over the limit of {max_bytes}",
            "size",
            max_bytes=max_bytes,
        )
    return size


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
        links: delivery.Delivery | None = None,
        forget: lifecycle.Forget | None = None,
    ) -> None:
        """``links``: where rendition URLs point (``media_pipeline.delivery``: the CDN's; by
        default S3 presigned GETs signed by ``s3``'s credentials). ``forget``: what else must
        let go of a deleted image's renditions (the CDN's caches)."""
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
        self._delivery = links or PresignedS3(
            s3, settings.renditions_bucket, settings.download_expiry_seconds
        )
        self._table = MediaTable(dynamodb, settings.media_table)
        self._listing = Listing(dynamodb, settings.media_table)

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
        item = self._table.get(image_id) if is_media_id(image_id) else None
        if item is None:
            raise ApiError(404, "not_found", f"no image with id {image_id[:64]!r}")
        status = item["status"]
        if status == Status.DELETED:
            raise ApiError(
                404,
                "deleted",
                f"image {image_id} was deleted at {item.get('deleted_at')}",
                deleted_at=item.get("deleted_at"),
            )
        view: dict[str, Any] = {
            "image_id": image_id,
            "status": status,
            "filename": item.get("filename"),
            "content_type": item.get("content_type"),
            "size": item.get("size", item.get("declared_size")),
            "created_at": item.get("created_at"),
            "updated_at": item.get("updated_at"),
        }
        if status == Status.AWAITING_UPLOAD:
            deadline = item.get("upload_expires_at")
            view["upload_expires_at"] = deadline
            # DynamoDB deletes expired items eventually (typically within days), not at once.
            view["upload_expired"] = bool(deadline and deadline < iso(time.time()))
        for stamp in ("uploaded_at", "ready_at", "failed_at"):
            if item.get(stamp):
                view[stamp] = item[stamp]
        ready = status == Status.READY
        view["metadata"] = public_metadata(item) if ready else None
        view["failure"] = _public_failure(item.get("failure")) if status == Status.FAILED else None
        view["renditions"], view["picture"] = {}, None
        if ready:
            view["renditions"], view["picture"] = self._delivered(
                image_id, item.get("renditions") or {}, item.get(PREVIEW_ATTRIBUTE)
            )
        return view

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
        )
        if deleted.outcome is Removal.NOT_FOUND:
            raise ApiError(404, "not_found", f"no image with id {image_id[:64]!r}")
        return deleted.outcome.value

    def list_images(self, owner: str, query: dict[str, str] | None) -> dict[str, Any]:
        """The owner's images, newest first, a page at a time (``next_cursor`` until the end)."""
        query = query or {}
        for name in query:
            if name not in LIST_PARAMETERS:
                raise _invalid(
                    _shown(name), f"unknown parameter (expected {', '.join(LIST_PARAMETERS)})"
                )
        status = None
        if "status" in query:  # present, it must be valid (an empty value is not)
            if query["status"] not in Status.__members__:
                raise _invalid("status", f"must be one of {', '.join(Status)}")
            status = Status(query["status"])
        limit = LIST_LIMIT_DEFAULT
        if "limit" in query:
            raw = query["limit"]
            if not raw.isdigit() or not 1 <= int(raw) <= LIST_LIMIT_MAX:
                raise _invalid("limit", f"must be a whole number from 1 to {LIST_LIMIT_MAX}")
            limit = int(raw)
        after = _decode_cursor(query["cursor"], owner) if "cursor" in query else None
        items, end = self._listing.page(owner, limit=limit, status=status, after=after)
        return {
            "images": [_summary(item) for item in items],
            "next_cursor": _encode_cursor(owner, end) if end else None,
        }

    def _delivered(
        self, image_id: str, renditions: dict[str, Any], preview: dict[str, Any] | None
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """Each rendition with its URL (and its alternates with theirs), and the ``picture``
        a page writes from them (``delivery``)."""
        links = self._delivery.links(image_id, delivery.rendition_keys(renditions))
        view = {
            name: {
                "url": links.urls[record["key"]],
                "url_expires_at": links.expires_at,
                "width": record["width"],
                "height": record["height"],
                "format": record["format"],
                "content_type": record.get("content_type"),
                "bytes": record["bytes"],
                "alternates": [
                    {
                        "format": image_format,
                        "content_type": alternate.get("content_type"),
                        "url": links.urls[alternate["key"]],
                        "bytes": alternate.get("bytes"),
                    }
                    for image_format, alternate in sorted((record.get("alternates") or {}).items())
                ],
            }
            for name, record in sorted(renditions.items())
        }
        return view, delivery.picture(renditions, links, preview)


def _summary(item: dict[str, Any]) -> dict[str, Any]:
    """An image as a list shows it: what it is and where it stands, no URLs (GET one for those)."""
    return {
        "image_id": item["id"],
        "status": item["status"],
        "filename": item.get("filename"),
        "content_type": item.get("content_type"),
        "size": item.get("size", item.get("declared_size")),
        "created_at": item.get("created_at"),
        "updated_at": item.get("updated_at"),
    }


def _encode_cursor(owner: str, position: Position) -> str:
    plain = {"id": position.image_id, OWNER_ATTRIBUTE: owner, "created_at": position.created_at}
    text = json.dumps(plain, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, owner: str) -> Position:
    """The listing position a cursor names; only one handed to this owner is accepted. An empty
    cursor is none: a client that turned a null ``next_cursor`` into ``""`` would otherwise
    start over from the first page, forever."""
    if not cursor:
        raise _invalid("cursor", "must not be empty (omit cursor for the first page)")
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        plain = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, UnicodeEncodeError, binascii.Error):
        plain = None
    valid = (
        isinstance(plain, dict)
        and set(plain) == set(_CURSOR_FIELDS)
        and all(isinstance(v, str) for v in plain.values())
        and plain[OWNER_ATTRIBUTE] == owner
        and is_media_id(plain["id"])
    )
    if not valid:
        raise _invalid("cursor", "is not a cursor this API handed out for this key")
    return Position(plain["created_at"], plain["id"])


def _public_failure(failure: Any) -> dict[str, Any] | None:
    if not isinstance(failure, dict):
        return None
    return {k: failure.get(k) for k in ("stage", "reason", "message")}
