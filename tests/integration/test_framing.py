"""Crops and placeholders, handler by handler against moto (in process): a READY image carries
its ThumbHash, focal point and crop windows; ``PATCH /images/{id}`` moves its cropped renditions
(only those), once, announced once, also when PATCHes overlap each other or a render."""

from __future__ import annotations

import json
import os

import pytest
from media_pipeline import imaging
from media_pipeline.model import media_id

from tests.integration.conftest import UPLOADS, count_calls
from tests.integration.test_api import request
from tests.integration.test_lifecycle import KEY, PHOTO, announced, invoke, renditions_of, types
from tests.support import s3_event

FIRST = "0055AED6DCD90281E5"
# The default renditions and one cropped square (terraform: cropped_renditions).
CROPPED = {"RENDITIONS": "large:1024,medium:512,small:128,square:64:1x1"}


@pytest.fixture
def stack(aws, load_handler, monkeypatch):
    monkeypatch.setenv("UPLOAD_PREFIX", "uploads/")
    for name, value in CROPPED.items():
        monkeypatch.setenv(name, value)
    return {name: load_handler(name) for name in ("thumbnail", "metadata", "api", "notifier")}


@pytest.fixture
def ready(aws, stack, lambda_context) -> str:
    """GIVEN a READY image (a landscape photo taken with the camera turned: EXIF orientation)."""
    etag = aws.put_upload(KEY, PHOTO)
    event = s3_event(bucket=UPLOADS, key=KEY, etag=etag, size=len(PHOTO), sequencer=FIRST)
    invoke(stack["thumbnail"], lambda_context, event)
    invoke(stack["metadata"], lambda_context, event)
    image_id = media_id(UPLOADS, KEY)
    assert aws.media_item(image_id)["status"] == "READY"
    return image_id


def patch(stack, lambda_context, image_id: str, body) -> tuple[int, dict]:
    status, _, answer = request(stack["api"], lambda_context, "PATCH", f"/images/{image_id}", body)
    return status, answer


def jobs(aws) -> list[dict]:
    """The renditions jobs waiting in the thumbnail queue (taken off it)."""
    url = os.environ["THUMBNAIL_QUEUE_URL"]
    taken = []
    while True:
        got = aws.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            return taken
        for message in got:
            taken.append(json.loads(message["Body"]))
            aws.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def cropped_keys(item: dict) -> list[str]:
    square = item["renditions"]["square"]
    return [square["key"], *(a["key"] for a in (square.get("alternates") or {}).values())]


def test_a_ready_image_carries_its_thumbhash_focus_and_crops(aws, stack, ready, lambda_context):
    status, _, view = request(stack["api"], lambda_context, "GET", f"/images/{ready}")
    assert status == 200
    metadata = view["metadata"]
    assert metadata["thumbhash"]
    assert metadata["placeholder"]
    assert metadata["focus"]["source"] == "auto"
    assert 0 <= metadata["focus"]["x"] <= 1
    assert 0 <= metadata["focus"]["y"] <= 1
    left, top, right, bottom = metadata["crops"]["square"]
    assert 0 <= left < right <= 1
    assert 0 <= top < bottom <= 1
    assert view["framing"] is None
    square = view["renditions"]["square"]
    assert (square["width"], square["height"]) == (64, 64)
    # the crop is no candidate of the picture's srcset (another part, another aspect ratio)
    assert square["url"].split("?")[0] not in view["picture"]["img"]["srcset"]
    assert view["picture"]["thumbhash"] == metadata["thumbhash"]

    [ready_message] = announced(aws, stack["notifier"], lambda_context)
    assert ready_message["schema_version"] == "1.3"
    assert ready_message["image"]["metadata"]["crops"] == metadata["crops"]


def test_a_patched_focus_remakes_that_images_crops_only_once_announced_once(
    aws, stack, ready, lambda_context
):
    before = aws.media_item(ready)
    thumbnail = stack["thumbnail"]

    # WHEN the app moves the focal point to the left edge
    status, view = patch(stack, lambda_context, ready, {"focus": {"x": 0.05, "y": 0.5}})
    assert status == 202
    assert view["framing"] == {"focus": {"x": 0.05, "y": 0.5}, "crop_box": None, "revision": 1}
    [job] = jobs(aws)
    assert job["detail"]["reason"] == "Reframe"
    puts = _puts(thumbnail)
    # ... and the job is delivered twice
    assert invoke(thumbnail, lambda_context, job) == {"batchItemFailures": []}
    assert invoke(thumbnail, lambda_context, job) == {"batchItemFailures": []}

    # THEN only the square (and its alternates) was written again, once; the old one is gone
    after = aws.media_item(ready)
    assert sorted(p["Key"] for p in puts) == sorted(cropped_keys(after))
    for name in ("large", "medium", "small"):
        assert after["renditions"][name] == before["renditions"][name]
    assert set(cropped_keys(after)).isdisjoint(cropped_keys(before))
    assert renditions_of(aws, ready) == sorted(
        k for r in after["renditions"].values() for k in [r["key"], *_alternates(r)]
    )
    # ... cut around the given point: the window touches the picture's left edge
    assert after["preview"]["focus"] == {"x": 0.05, "y": 0.5, "source": "given"}
    assert after["preview"]["crops"]["square"][0] == 0
    assert before["preview"]["crops"]["square"][0] > 0

    # AND one image.updated says so
    messages = announced(aws, stack["notifier"], lambda_context)
    assert types(messages, ready) == ["image.ready", "image.updated"]
    assert messages[-1]["image"]["metadata"]["focus"]["source"] == "given"


def test_a_crop_box_and_back_to_automatic_are_one_revision_each(aws, stack, ready, lambda_context):
    box = {"left": 0.5, "top": 0.0, "right": 1.0, "bottom": 1.0}
    assert patch(stack, lambda_context, ready, {"crop_box": box})[0] == 202
    for job in jobs(aws):
        invoke(stack["thumbnail"], lambda_context, job)
    boxed = aws.media_item(ready)["preview"]
    assert boxed["focus"]["source"] == "crop_box"
    assert boxed["crops"]["square"][0] >= 0.5

    status, view = patch(stack, lambda_context, ready, {"focus": None, "crop_box": None})
    assert (status, view["framing"]["revision"]) == (202, 2)
    for job in jobs(aws):
        invoke(stack["thumbnail"], lambda_context, job)
    item = aws.media_item(ready)
    assert item["preview"]["focus"]["source"] == "auto"
    assert item["renditions_settings"].endswith("~2")
    messages = announced(aws, stack["notifier"], lambda_context)
    assert types(messages, ready) == ["image.ready", "image.updated", "image.updated"]


def test_two_patches_before_the_first_job_make_the_crops_once(aws, stack, ready, lambda_context):
    patch(stack, lambda_context, ready, {"focus": {"x": 0.9, "y": 0.5}})
    patch(stack, lambda_context, ready, {"focus": {"x": 0.1, "y": 0.5}})
    first, second = jobs(aws)
    puts = _puts(stack["thumbnail"])

    # the first job finds the second framing asked for, and makes that; the second has no work
    invoke(stack["thumbnail"], lambda_context, first)
    invoke(stack["thumbnail"], lambda_context, second)

    item = aws.media_item(ready)
    assert item["preview"]["focus"]["x"] == 0.1
    assert len(puts) == len(cropped_keys(item))
    messages = announced(aws, stack["notifier"], lambda_context)
    assert types(messages, ready) == ["image.ready", "image.updated"]


def test_a_patch_during_a_render_wins_over_it(aws, stack, ready, lambda_context, monkeypatch):
    patch(stack, lambda_context, ready, {"focus": {"x": 0.9, "y": 0.5}})
    [first] = jobs(aws)
    render = imaging.render

    def patched_meanwhile(*args, **kwargs):
        # WHEN the app asks for other framing while the worker renders the first one
        patch(stack, lambda_context, ready, {"focus": {"x": 0.1, "y": 0.5}})
        monkeypatch.setattr(imaging, "render", render)
        return render(*args, **kwargs)

    monkeypatch.setattr(imaging, "render", patched_meanwhile)
    assert invoke(stack["thumbnail"], lambda_context, first) == {"batchItemFailures": []}

    # THEN the first render is not recorded, and what it wrote is removed
    item = aws.media_item(ready)
    assert "~" not in item["renditions_settings"]
    keys = {k for r in item["renditions"].values() for k in [r["key"], *_alternates(r)]}
    assert set(renditions_of(aws, ready)) == keys

    # AND the second PATCH's job makes the crops around its point
    [second] = jobs(aws)
    invoke(stack["thumbnail"], lambda_context, second)
    item = aws.media_item(ready)
    assert item["renditions_settings"].endswith("~2")
    assert item["preview"]["focus"]["x"] == 0.1
    messages = announced(aws, stack["notifier"], lambda_context)
    assert types(messages, ready) == ["image.ready", "image.updated"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "focus"),
        ({"focus": {"x": 1.5, "y": 0}}, "focus.x"),
        ({"focus": {"x": 0.5}}, "focus"),
        ({"focus": {"x": True, "y": 0}}, "focus.x"),
        ({"crop_box": {"left": 0.6, "top": 0, "right": 0.4, "bottom": 1}}, "crop_box"),
        ({"crop": {}}, "crop"),
        ([], None),
    ],
)
def test_a_bad_framing_is_a_400_naming_the_field(stack, ready, lambda_context, body, field):
    status, answer = patch(stack, lambda_context, ready, body)
    assert status == 400
    assert answer.get("field") == field


def test_only_a_ready_image_can_be_reframed(stack, lambda_context):
    status, _, created = request(
        stack["api"],
        lambda_context,
        "POST",
        "/uploads",
        {"filename": "a.jpg", "content_type": "image/jpeg", "size": 10},
    )
    assert status == 201
    status, answer = patch(stack, lambda_context, created["image_id"], {"focus": {"x": 0, "y": 0}})
    assert (status, answer["code"]) == (409, "not_ready")
    status, answer = patch(stack, lambda_context, "a" * 26, {"focus": {"x": 0, "y": 0}})
    assert (status, answer["code"]) == (404, "not_found")


def _puts(thumbnail) -> list[dict]:
    return count_calls(thumbnail.s3, "PutObject")


def _alternates(record: dict) -> list[str]:
    return [a["key"] for a in (record.get("alternates") or {}).values()]
