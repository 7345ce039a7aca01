"""Crops and placeholders on the local stack (envs/local.tfvars makes a cropped ``square``): a READY
image's event and view carry its ThumbHash, focal point and crop windows; ``PATCH /images/{id}``
through API Gateway moves the square (only it), announced once, with the API function's own role
sending the job."""

from __future__ import annotations

import io
import time

import pytest
from PIL import Image
from tooling.api_client import UploadClient

from tests.e2e.test_pipeline import upload_and_wait

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def client(outputs, ca_bundle) -> UploadClient:
    return UploadClient(outputs["api_url"], outputs["api_key"], ca_bundle)


def test_a_ready_image_has_a_square_crop_and_a_thumbhash(pipeline, client):
    uploaded, notification = upload_and_wait(pipeline, "landscape-exif-rotated.jpg")
    image = notification.body["image"]
    metadata = image["metadata"]
    assert metadata["thumbhash"]
    assert metadata["focus"]["source"] == "auto"
    assert set(metadata["crops"]) == {"square"}
    square = image["renditions"]["square"]
    assert (square["width"], square["height"]) == (256, 256)
    with Image.open(io.BytesIO(pipeline.download(square))) as picture:
        assert picture.size == (256, 256)

    view = client.image(uploaded.id)
    assert view["metadata"]["crops"] == metadata["crops"]
    assert view["picture"]["thumbhash"] == metadata["thumbhash"]


def test_a_patched_focus_moves_the_square_once_and_announces_it_once(pipeline, client):
    uploaded, notification = upload_and_wait(pipeline, "landscape-exif-rotated.jpg")
    before = notification.body["image"]

    # WHEN the app moves the focal point to the picture's right edge
    response = client.call(
        "PATCH", f"/images/{uploaded.id}", {"focus": {"x": 0.98, "y": 0.5}, "crop_box": None}
    )
    assert response.status == 202, response.body
    assert response.json()["framing"]["revision"] == 1

    # THEN one image.updated arrives, with the square cut at the right edge
    ready, updated = pipeline.wait_for_count(uploaded.id, 2, timeout=120)
    assert (ready.body["type"], updated.body["type"]) == ("image.ready", "image.updated")
    after = updated.body["image"]
    assert after["metadata"]["focus"] == {"x": 0.98, "y": 0.5, "source": "given"}
    assert after["metadata"]["crops"]["square"][2] == 1.0
    assert after["renditions"]["square"]["key"] != before["renditions"]["square"]["key"]
    for name in ("large", "medium", "small"):
        assert after["renditions"][name] == before["renditions"][name]

    # AND nothing more follows (the job's redeliveries and the reconciler find nothing to do)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        pipeline.poll_notifications()
    assert len(pipeline.notifications[uploaded.id]) == 2
    view = client.image(uploaded.id)
    assert view["framing"]["focus"] == {"x": 0.98, "y": 0.5}
    assert view["renditions"]["square"]["bytes"] == after["renditions"]["square"]["bytes"]


def test_a_framing_outside_the_picture_is_a_400(pipeline, client):
    uploaded, _ = upload_and_wait(pipeline, "landscape-exif-rotated.jpg")
    response = client.call("PATCH", f"/images/{uploaded.id}", {"focus": {"x": 2, "y": 0.5}})
    assert (response.status, response.json()["field"]) == (400, "focus.x")
