"""Duplicates within an app on the local stack: a resized, re-encoded copy names its original in
its record and its image.ready, GET /images?duplicate_of= lists it, and deleting the original
leaves nothing that names it."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from PIL import Image, ImageOps
from tooling.api_client import UploadClient

from tests.e2e.conftest import ON_LOCALSTACK, wait_until

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "docs" / "schemas" / "media-event.v1.json").read_text())


@pytest.fixture(scope="module")
def client(request, outputs) -> UploadClient:
    ca_bundle = None if ON_LOCALSTACK else str(request.getfixturevalue("local_stack").ca_bundle)
    return UploadClient(outputs["api_url"], outputs["api_key"], ca_bundle)


def jpeg(image: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


def pictures() -> tuple[bytes, bytes]:
    """A picture no other test uploads (a sample, mirrored and cropped: the other tests share
    this app), and a copy of it at 60% of its size, recompressed at quality 70."""
    with Image.open(ROOT / "samples" / "landscape-exif-rotated.jpg") as photo:
        upright = ImageOps.exif_transpose(photo).convert("RGB")
    picture = ImageOps.mirror(upright).crop((0, 0, upright.width, upright.height * 3 // 4))
    copy = picture.resize(
        (picture.width * 3 // 5, picture.height * 3 // 5), Image.Resampling.LANCZOS
    )
    return jpeg(picture, 92), jpeg(copy, 70)


def ready(client: UploadClient, pipeline, data: bytes, name: str) -> tuple[str, dict]:
    """Upload through the API and wait for the notification: the id and its image.ready."""
    created = client.request_upload(name, "image/jpeg", len(data))
    status, text = client.post_file(created["upload"], data, name)
    assert status == 204, text
    image_id = created["image_id"]
    notification = pipeline.wait_for([image_id], timeout=120)[image_id]
    Draft202012Validator(SCHEMA).validate(notification.body)
    assert notification.body["type"] == "image.ready"
    return image_id, notification.body


def duplicates_of(client: UploadClient, image_id: str) -> list[str]:
    response = client.call("GET", f"/images?duplicate_of={image_id}")
    assert response.status == 200, response.body
    return [image["image_id"] for image in response.body["images"]]


def test_a_copy_names_its_original_until_the_original_is_deleted(client, pipeline):
    picture, copy = pictures()
    # GIVEN an app's picture, READY and named by nothing
    original_id, original_event = ready(client, pipeline, picture, "original.jpg")
    assert original_event["image"]["duplicate_of"] is None

    # WHEN the app uploads a smaller, recompressed copy of it
    copy_id, copy_event = ready(client, pipeline, copy, "copy.jpg")

    # THEN the copy's image.ready, its record and GET /images/{id} name the original
    named = copy_event["image"]["duplicate_of"]
    assert named["image_id"] == original_id
    assert 0 <= named["distance"] <= 24
    assert pipeline.item(copy_id)["duplicate_of"] == named
    assert client.image(copy_id)["duplicate_of"] == named
    assert client.image(original_id)["duplicate_of"] is None
    # AND the original's duplicates are listed
    assert duplicates_of(client, original_id) == [copy_id]

    # WHEN the original is deleted
    assert client.call("DELETE", f"/images/{original_id}").status == 204

    # THEN nothing names it: the copy's record and view, and the list (the API's delete does it
    # at once; S3's delete event then reaches the renditions worker, which finds nothing left)
    assert "duplicate_of" not in pipeline.item(copy_id)
    assert client.image(copy_id)["duplicate_of"] is None
    assert duplicates_of(client, original_id) == []
    wait_until(
        lambda: (pipeline.item(original_id) or {}).get("deleted_sequencer"),
        90,
        "S3's Object Deleted event never reached the renditions worker",
    )
    assert "duplicate_of" not in pipeline.item(copy_id)
    assert client.image(copy_id)["status"] == "READY"
