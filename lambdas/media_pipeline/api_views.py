"""What the upload API answers about an image: its view (``GET /images/{id}``) and its summary
(``GET /images``), made from the media item as stored; the renditions with the URLs
``delivery`` hands out for them, and the ``picture`` a page writes from those."""

from __future__ import annotations

import time
from typing import Any

from media_pipeline.delivery import Delivery, picture
from media_pipeline.duplicates_index import DUPLICATE_OF
from media_pipeline.model import (
    FRAMING_ATTRIBUTE,
    PREVIEW_ATTRIBUTE,
    Status,
    public_metadata,
    rendition_keys,
)
from media_pipeline.values import iso


def summary(item: dict[str, Any]) -> dict[str, Any]:
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


def image(item: dict[str, Any], delivery: Delivery) -> dict[str, Any]:
    """An image that is not DELETED, as ``GET /images/{id}`` shows it: its summary, the times
    it moved, its metadata once READY, its failure once FAILED, and its renditions with their
    URLs (from ``delivery``) and ``picture`` once READY; ``framing``, what the app asked of its
    cropped renditions (``PATCH /images/{id}``), or None."""
    status = item["status"]
    view = summary(item)
    if status == Status.AWAITING_UPLOAD:
        deadline = item.get("upload_expires_at")
        view["upload_expires_at"] = deadline
        # DynamoDB deletes expired items eventually (typically within days), not at once.
        view["upload_expired"] = bool(deadline and deadline < iso(time.time()))
    for stamp in ("uploaded_at", "ready_at", "failed_at"):
        if item.get(stamp):
            view[stamp] = item[stamp]
    ready = status == Status.READY
    view["duplicate_of"] = item.get(DUPLICATE_OF) if ready else None
    view["metadata"] = public_metadata(item) if ready else None
    view["failure"] = _failure(item.get("failure")) if status == Status.FAILED else None
    view["framing"] = framing(item)
    view["renditions"], view["picture"] = {}, None
    if ready:
        view["renditions"], view["picture"] = _delivered(
            item["id"], item.get("renditions") or {}, item.get(PREVIEW_ATTRIBUTE), delivery
        )
    return view


def _delivered(
    image_id: str,
    renditions: dict[str, Any],
    preview: dict[str, Any] | None,
    delivery: Delivery,
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Each rendition with its URL (and its alternates with theirs), and the ``picture``
    a page writes from them."""
    links = delivery.links(image_id, rendition_keys(renditions))
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
    return view, picture(renditions, links, preview)


def framing(item: dict[str, Any]) -> dict[str, Any] | None:
    """The app's framing of the image's cropped renditions (``focus``, ``crop_box``: None where
    automatic) and its ``revision``; None if the app never set one."""
    asked = item.get(FRAMING_ATTRIBUTE)
    if not isinstance(asked, dict):
        return None
    return {
        "focus": asked.get("focus"),
        "crop_box": asked.get("crop_box"),
        "revision": asked.get("revision"),
    }


def _failure(failure: Any) -> dict[str, Any] | None:
    """What the API tells of a failure: its stage, reason and message (not ``retryable``)."""
    if not isinstance(failure, dict):
        return None
    view = {k: failure.get(k) for k in ("stage", "reason", "message")}
    if failure.get(DUPLICATE_OF):  # a duplicate refused: its original
        view[DUPLICATE_OF] = failure[DUPLICATE_OF]
    return view
