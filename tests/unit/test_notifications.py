"""Which item changes become notifications, and what the message says (docs/events.md)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from media_pipeline.model import Status
from media_pipeline.notifications import SCHEMA_VERSION, transition

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "docs" / "schemas" / "media-event.v1.json").read_text()
)

READY = {
    "id": "abc",
    "bucket": "uploads",
    "key": "uploads/a/cat.jpg",
    "etag": "e1",
    "size": Decimal(1234),
    "content_type": "image/jpeg",
    "status": Status.READY.value,
    "ready_at": "2026-11-23T10:00:01.000Z",
    "renditions_etag": "e1",
    "metadata_etag": "e1",
    "renditions": {
        "small": {
            "bucket": "r",
            "key": "abc/e1/small.jpg",
            "width": Decimal(128),
            "height": Decimal(85),
            "format": "JPEG",
            "content_type": "image/jpeg",
            "bytes": Decimal(3000),
        }
    },
    "metadata": {
        "width": Decimal(1800),
        "height": Decimal(1200),
        "format": "JPEG",
        "has_gps": False,
    },
    "preview": {"placeholder": "data:image/webp;base64,UklGR", "dominant_color": "#9dbbe0"},
}
PROCESSING = {**READY, "status": Status.PROCESSING.value}
FAILED = {
    **PROCESSING,
    "status": Status.FAILED.value,
    "failed_at": "2026-11-23T10:00:02.000Z",
    "failure": {
        "stage": "thumbnail",
        "reason": "corrupt",
        "message": "truncated",
        "retryable": False,
    },
    "renditions_etag": None,
}


def test_processing_to_ready_is_announced_once_with_the_documented_body():
    notification = transition(PROCESSING, READY)

    assert notification is not None
    body = notification.body
    assert body["schema_version"] == SCHEMA_VERSION
    assert body["type"] == "image.ready"
    assert body["occurred_at"] == READY["ready_at"]
    assert body["image"]["renditions"]["small"]["width"] == 128  # Decimals became numbers
    assert body["image"]["metadata"]["width"] == 1800
    # the renditions half's preview is shown in the metadata record
    assert body["image"]["metadata"]["placeholder"] == "data:image/webp;base64,UklGR"
    assert body["image"]["metadata"]["dominant_color"] == "#9dbbe0"
    assert body["failure"] is None
    assert notification.attributes == {"type": "image.ready", "content_type": "image/jpeg"}
    json.dumps(body)  # serialisable as is


def test_failed_carries_the_reason_and_no_renditions():
    body = transition(PROCESSING, FAILED).body
    assert body["type"] == "image.failed"
    assert body["failure"] == {"stage": "thumbnail", "reason": "corrupt", "message": "truncated"}
    assert body["image"]["renditions"] == {}
    # the metadata half is in, the renditions half (and so its preview) is not
    assert body["image"]["metadata"]["width"] == 1800
    assert (
        body["image"]["metadata"]["placeholder"],
        body["image"]["metadata"]["dominant_color"],
    ) == (None, None)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (None, PROCESSING),  # claimed
        (PROCESSING, PROCESSING),  # one half recorded
        (READY, READY),  # a later write to a READY item
        (
            FAILED,
            {**FAILED, "failure": {**FAILED["failure"], "reason": "too_large"}},
        ),  # still FAILED
        (READY, None),  # deleted
    ],
)
def test_changes_that_are_not_transitions_into_ready_or_failed_are_silent(old, new):
    assert transition(old, new) is None


def test_new_content_under_the_same_key_is_announced_again():
    assert (
        transition(READY, {**READY, "etag": "e2", "renditions_etag": "e2", "metadata_etag": "e2"})
        is not None
    )


def test_identity_is_per_version_and_type():
    assert transition(PROCESSING, READY).identity == {
        "id": "abc",
        "etag": "e1",
        "type": "image.ready",
    }


@pytest.mark.parametrize("new", [READY, FAILED])
def test_messages_match_the_published_json_schema(new):
    Draft202012Validator(SCHEMA).validate(transition(PROCESSING, new).body)


DELETED = {**READY, "status": Status.DELETED.value, "deleted_at": "2026-11-23T10:05:00.000Z"}


def test_a_delete_is_announced_once_without_renditions_or_metadata():
    notification = transition(READY, DELETED)
    assert notification.body["type"] == "image.deleted"
    assert notification.attributes == {"type": "image.deleted", "content_type": "image/jpeg"}
    assert notification.body["occurred_at"] == DELETED["deleted_at"]
    assert notification.body["image"]["renditions"] == {}
    assert notification.body["image"]["metadata"] is None
    Draft202012Validator(SCHEMA).validate(notification.body)
    assert transition(DELETED, {**DELETED, "deleted_sequencer": "00FF"}) is None
    assert transition(DELETED, None) is None  # its TTL


def test_a_deleted_upload_request_is_announced_with_what_it_has():
    request = {
        "id": "abc",
        "status": Status.AWAITING_UPLOAD.value,
        "bucket": "uploads",
        "key": "uploads/abc/cat.jpg",
        "content_type": "image/png",
    }
    notification = transition(request, {**request, **{"status": "DELETED", "deleted_at": "t"}})
    assert notification.body["image"]["etag"] is None
    Draft202012Validator(SCHEMA).validate(notification.body)


def test_new_renditions_settings_are_announced_once_per_settings():
    old = {**READY, "renditions_settings": "s1"}
    new = {**READY, "renditions_settings": "s2", "updated_at": "2026-11-23T11:00:00.000Z"}
    notification = transition(old, new)
    assert notification.body["type"] == "image.updated"
    assert notification.body["occurred_at"] == new["updated_at"]
    assert notification.body["image"]["renditions_settings"] == "s2"
    Draft202012Validator(SCHEMA).validate(notification.body)
    assert transition(new, {**new, "updated_at": "later"}) is None
    again = transition(new, {**new, "renditions_settings": "s3"})
    assert again.identity != notification.identity
