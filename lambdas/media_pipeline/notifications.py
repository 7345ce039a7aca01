"""Status transitions of media items, turned into the documented SNS message (docs/events.md).

One message per transition *into* READY, FAILED or DELETED, and one per change of a READY
image's renditions settings (``image.updated``, after a reprocess). The body is versioned JSON
(``schema_version``); the message attributes ``type`` and ``content_type`` let subscribers filter
without parsing the body.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from media_pipeline.delivery import Delivery, picture
from media_pipeline.model import PREVIEW_ATTRIBUTE, Half, Status, public_metadata, rendition_keys
from media_pipeline.values import to_plain

SCHEMA_VERSION = "1.3"
EVENT_TYPES = {
    Status.READY: "image.ready",
    Status.FAILED: "image.failed",
    Status.DELETED: "image.deleted",
}
UPDATED = "image.updated"
SETTINGS = Half.RENDITIONS.settings_attribute

_IMAGE_FIELDS = (
    "id",
    "bucket",
    "key",
    "etag",
    "version_id",
    "size",
    "content_type",
    "status",
    "uploaded_at",
    "created_at",
)


@dataclass(frozen=True)
class Notification:
    body: dict[str, Any]
    attributes: dict[str, str]

    @property
    def identity(self) -> dict[str, Any]:
        """What makes two notifications the same one (the idempotency key). An image.updated
        is one per settings fingerprint: its type carries it."""
        image = self.body["image"]
        kind = self.body["type"]
        if kind == UPDATED:
            kind = f"{UPDATED}/{image.get('renditions_settings')}"
        return {"id": image["id"], "etag": image["etag"], "type": kind}


def transition(
    old: dict[str, Any] | None, new: dict[str, Any] | None, links: Delivery | None = None
) -> Notification | None:
    """The notification due for a change of a media item from ``old`` to ``new``, if any
    (``links``: where its renditions are fetched, for the ``picture`` of a READY image)."""
    if not new:
        return None  # item removed (TTL of an abandoned request or a deleted image): nothing new
    status = new.get("status")
    if status not in EVENT_TYPES:
        return None
    if old and old.get("status") == status and old.get("etag") == new.get("etag"):
        if status == Status.READY and old.get(SETTINGS) != new.get(SETTINGS):
            return build(to_plain(new), UPDATED, links)  # renditions brought up to date
        return None  # a later write to an item already READY / FAILED (e.g. the other half)
    if old and old.get("status") == Status.DELETED == status:
        return None  # a delete repeated (S3's event after the API's delete)
    return build(to_plain(new), links=links)


def build(
    item: dict[str, Any], event_type: str | None = None, links: Delivery | None = None
) -> Notification:
    status = Status(item["status"])
    event_type = event_type or EVENT_TYPES[status]
    image = {name: item.get(name) for name in _IMAGE_FIELDS}
    ready = status is Status.READY
    image["renditions"] = item.get("renditions", {}) if ready else {}
    image["metadata"] = public_metadata(item) if status is not Status.DELETED else None
    # The app's earlier image this one duplicates (duplicates_index), while READY.
    image["duplicate_of"] = item.get("duplicate_of") if ready else None
    if ready:
        image["renditions_settings"] = item.get(SETTINGS)
        if links is not None:
            renditions = image["renditions"]
            image["picture"] = picture(
                renditions,
                links.links(image["id"], rendition_keys(renditions)),
                item.get(PREVIEW_ATTRIBUTE),
            )
    failure = item.get("failure")
    occurred_at = {
        Status.READY: item.get("ready_at"),
        Status.FAILED: item.get("failed_at"),
        Status.DELETED: item.get("deleted_at"),
    }[status]
    if event_type == UPDATED:
        occurred_at = item.get("updated_at")
    body = {
        "schema_version": SCHEMA_VERSION,
        "type": event_type,
        "occurred_at": occurred_at,
        "image": image,
        "failure": (
            {k: failure[k] for k in ("stage", "reason", "message", "duplicate_of") if k in failure}
            if failure and status is Status.FAILED
            else None
        ),
    }
    attributes = {"type": event_type, "content_type": item.get("content_type") or "unknown"}
    return Notification(body=body, attributes=attributes)
