"""What the upload API accepts: each request checked field by field, and the errors it answers.

Every bad input raises :class:`ApiError` with the HTTP status, a stable code (docs/openapi.yaml
lists them) and the field at fault. A request that passes :func:`parse_upload_request` can be
stored (DynamoDB) and signed (the presigned POST) as it is, so nothing a client sends can end in
a 5xx; :func:`parse_list_query` gives ``GET /images`` its status filter, page size and where the
page starts.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from media_pipeline import listing
from media_pipeline.listing import Position
from media_pipeline.model import Status, is_media_id

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
# C0 controls (NUL included), DEL and C1 controls: never part of a file name or a media type.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_SHOWN_NAME_CHARS = 64  # of an unknown field's name, in the error
REQUEST_FIELDS = ("filename", "content_type", "size")
LIST_LIMIT_DEFAULT = 20
LIST_LIMIT_MAX = 100
LIST_PARAMETERS = ("status", "limit", "cursor", "duplicate_of")
FRAMING_FIELDS = ("focus", "crop_box")
_POINT_FIELDS = ("x", "y")
_BOX_FIELDS = ("left", "top", "right", "bottom")


class ApiError(Exception):
    """An error the API answers: the HTTP status, a stable code, a message, the field at fault
    and any further fields of the body (``max_bytes`` of a 413)."""

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
    """A checked ``POST /uploads`` body."""

    filename: str
    content_type: str
    size: int


def _invalid(field: str, message: str) -> ApiError:
    return ApiError(400, "invalid_field", f"{field}: {message}", field)


def parse_framing(body: Any) -> dict[str, Any]:
    """Check a ``PATCH /images/{id}`` body: ``focus`` (``{x, y}``) and ``crop_box`` (``{left,
    top, right, bottom}``), each in 0-1 of the picture as displayed, null or left out for
    automatic. The framing as the item keeps it (only what was given), held to what the
    renditions worker's ``imaging.Focus`` and ``imaging.CropBox`` accept, so it never fails there
    (tests/unit/test_api_requests.py checks both agree; the API's zip has no Pillow to import
    them from)."""
    if not isinstance(body, dict):
        raise ApiError(400, "malformed_body", "the body must be a JSON object")
    for name in body:
        if name not in FRAMING_FIELDS:
            raise _invalid(_shown(name), f"unknown field (expected {', '.join(FRAMING_FIELDS)})")
    if not any(name in body for name in FRAMING_FIELDS):
        raise ApiError(400, "missing_field", "focus or crop_box: one is required", "focus")
    framing: dict[str, Any] = {}
    for name, fields in (("focus", _POINT_FIELDS), ("crop_box", _BOX_FIELDS)):
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, dict) or set(value) != set(fields):
            raise _invalid(name, f"must be an object with exactly {', '.join(fields)}, or null")
        for field in fields:
            number = value[field]
            if not _is_fraction(number):
                raise _invalid(f"{name}.{field}", f"must be a number from 0 to 1, not {number!r}")
        framing[name] = {field: float(value[field]) for field in fields}
    box = framing.get("crop_box")
    if box and not (box["left"] < box["right"] and box["top"] < box["bottom"]):
        raise _invalid("crop_box", "must have left < right and top < bottom")
    return framing


def _is_fraction(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value) and 0.0 <= value <= 1.0


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


@dataclass(frozen=True)
class ListQuery:
    """A checked ``GET /images`` query: the status asked for (None: every one but DELETED), the
    page size, the position the page starts after (None: the first page), and the image whose
    duplicates are asked for (None: all images)."""

    status: Status | None
    limit: int
    after: Position | None
    duplicate_of: str | None = None


def parse_list_query(query: dict[str, str] | None, owner: str) -> ListQuery:
    """Check the query parameters of ``GET /images`` asked by ``owner``; the first problem found
    is reported. A cursor is accepted only from the owner it was handed to."""
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
    after = None
    if "cursor" in query:
        cursor = query["cursor"]
        if not cursor:
            # An empty cursor is none: a client that turned a null ``next_cursor`` into ""
            # would otherwise start over from the first page, forever.
            raise _invalid("cursor", "must not be empty (omit cursor for the first page)")
        after = listing.decode_cursor(cursor, owner)
        if after is None:
            raise _invalid("cursor", "is not a cursor this API handed out for this key")
    duplicate_of = query.get("duplicate_of")
    if duplicate_of is not None and not is_media_id(duplicate_of):
        raise _invalid("duplicate_of", "must be an image id (26 characters a-z, 2-7)")
    return ListQuery(status, limit, after, duplicate_of)
