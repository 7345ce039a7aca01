"""Status transitions of media items, turned into the documented SNS message (docs/events.md).

One message per transition *into* READY or FAILED. The body is versioned JSON
(``schema_version``); the message attributes ``type`` and ``content_type`` let subscribers filter
without parsing the body.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from media_pipeline.media_store import to_plain
from media_pipeline.model import Status, public_metadata

SCHEMA_VERSION = "1.0"
EVENT_TYPES = {Status.READY: "image.ready", Status.FAILED: "image.failed"}

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
        """What makes two notifications the same one (the idempotency key)."""
        image = self.body["image"]
        return {"id": image["id"], "etag": image["etag"], "type": self.body["type"]}


def transition(old: dict[str, Any] | None, new: dict[str, Any] | None) -> Notification | None:
    """The notification due for a change of a media item from ``old`` to ``new``, if any."""
    if not new:
        return None  # item deleted (TTL of an abandoned upload request): nothing to announce
    status = new.get("status")
    if status not in EVENT_TYPES:
        return None
    if old and old.get("status") == status and old.get("etag") == new.get("etag"):
        return None  # a later write to an item already READY / FAILED (e.g. the other half)
    return build(to_plain(new))


def build(item: dict[str, Any]) -> Notification:
    status = Status(item["status"])
    event_type = EVENT_TYPES[status]
    image = {name: item.get(name) for name in _IMAGE_FIELDS}
    ready = status is Status.READY
    image["renditions"] = item.get("renditions", {}) if ready else {}
    image["metadata"] = public_metadata(item)
    failure = item.get("failure")
    body = {
        "schema_version": SCHEMA_VERSION,
        "type": event_type,
        "occurred_at": item.get("ready_at") if ready else item.get("failed_at"),
        "image": image,
        "failure": (
            {k: failure[k] for k in ("stage", "reason", "message") if k in failure}
            if failure and not ready
            else None
        ),
    }
    attributes = {"type": event_type, "content_type": item.get("content_type") or "unknown"}
    return Notification(body=body, attributes=attributes)


def publish(sns: Any, topic_arn: str, notification: Notification) -> str:
    response = sns.publish(
        TopicArn=topic_arn,
        Message=json.dumps(notification.body, separators=(",", ":"), sort_keys=True),
        MessageAttributes={
            name: {"DataType": "String", "StringValue": value}
            for name, value in notification.attributes.items()
        },
    )
    return response["MessageId"]
