"""The upload API on either backend, over HTTP only: what an app does after `make up`.

request upload -> multipart POST to S3 -> poll GET /images/{id} -> READY with rendition URLs
that return images; the error cases with their codes and JSON bodies; the presigned POST's
conditions as S3 enforces them (moto by itself enforces none: scripts/devstack/moto_patches.py
restores S3's policy checks; it does not verify the policy's signature).
"""

from __future__ import annotations

import base64
import io
import json
import time
from pathlib import Path

import pytest
from devstack.stack import web_origins
from PIL import Image
from tooling.api_client import UploadClient

from tests.support import record_latency

pytestmark = pytest.mark.e2e

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
PHOTO = (SAMPLES / "landscape-exif-rotated.jpg").read_bytes()
PNG = {"filename": "a.png", "content_type": "image/png", "size": 1}


@pytest.fixture(scope="module")
def client(outputs, ca_bundle) -> UploadClient:
    """An app's view of the API: its URL and key, nothing else (either backend)."""
    return UploadClient(outputs["api_url"], outputs["api_key"], ca_bundle)


def request_photo(client: UploadClient, **overrides) -> dict:
    body = {"filename": "photo.jpg", "content_type": "image/jpeg", "size": len(PHOTO)}
    return client.request_upload(**{**body, **overrides})


def test_an_app_uploads_through_the_api_and_gets_renditions_that_are_images(client, outputs):
    # GIVEN an upload request
    created = request_photo(client)
    assert created["upload"]["fields"]["key"].startswith(outputs["upload_prefix"])
    assert client.image(created["image_id"])["status"] == "AWAITING_UPLOAD"

    # WHEN the app POSTs the file to S3 with the presigned fields and polls the status
    started = time.monotonic()
    status, text = client.post_file(created["upload"], PHOTO, "photo.jpg")
    assert status == 204, text
    image = client.wait(created["image_id"], timeout=90)
    record_latency(time.monotonic() - started, "through the upload API, READY seen by polling")

    # THEN it is READY, and every rendition URL returns that very image
    assert image["status"] == "READY", image
    assert image["size"] == len(PHOTO)
    assert image["metadata"]["format"] == "JPEG"
    assert set(image["renditions"]) == {"large", "medium", "small", "square"}
    for rendition in image["renditions"].values():
        status, data, content_type = client.fetch(rendition["url"])
        assert status == 200
        assert len(data) == rendition["bytes"]
        assert content_type == rendition["content_type"]
        with Image.open(io.BytesIO(data)) as decoded:
            assert decoded.size == (rendition["width"], rendition["height"])
            assert decoded.format == rendition["format"]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "field"),
    [
        ("POST", "/uploads", "{not json", 400, None),
        ("POST", "/uploads", {"content_type": "image/png", "size": 1}, 400, "filename"),
        ("POST", "/uploads", {**PNG, "size": "1"}, 400, "size"),
        ("POST", "/uploads", {**PNG, "content_type": "text/html"}, 415, "content_type"),
        ("POST", "/uploads", {**PNG, "size": 25 * 1024 * 1024 + 1}, 413, "size"),
        ("POST", "/uploads", {**PNG, "filename": "\ud800.png"}, 400, "filename"),
        ("POST", "/uploads", {**PNG, "content_type": "\ud800"}, 400, "content_type"),
        ("POST", "/uploads", {**PNG, "filename": "a\x00.png"}, 400, "filename"),
        ("GET", "/images/aaaaaaaaaaaaaaaaaaaaaaaaaa", None, 404, None),
        ("GET", "/uploads", None, 405, None),
        ("DELETE", "/images/aaaaaaaaaaaaaaaaaaaaaaaaaa", None, 404, None),
        ("PUT", "/images/aaaaaaaaaaaaaaaaaaaaaaaaaa", None, 405, None),
        ("POST", "/images", None, 405, None),
        ("GET", "/images?limit=0", None, 400, "limit"),
    ],
)  # fmt: skip
def test_errors_answer_with_their_code_and_a_json_body(client, method, path, body, status, field):
    response = client.call(method, path, body)
    assert response.status == status
    assert response.headers["content-type"] == "application/json"
    assert response.body["message"]
    assert response.body.get("field") == field


@pytest.mark.parametrize("api_key", ["", "not-the-key"])
def test_the_api_key_is_required(client, api_key):
    for method, path in (("POST", "/uploads"), ("GET", "/images/aaaaaaaaaaaaaaaaaaaaaaaaaa")):
        response = client.call(method, path, {}, api_key=api_key)
        assert (response.status, response.body) == (403, {"message": "Forbidden"})


@pytest.mark.embedded_only("the origin is make web's, which serves the embedded stack")
def test_cors_preflight_needs_no_key_and_allows_the_web_demo_origin(client, local_stack):
    origin = web_origins(local_stack.port)[0]
    response = client.call(
        "OPTIONS",
        "/uploads",
        api_key="",
        headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
    )
    assert response.status == 204
    assert response.headers["access-control-allow-origin"] == origin


def forged(fields: dict, **changes) -> dict:
    """The fields with the policy document changed (its signature then no longer matches)."""
    policy = json.loads(base64.b64decode(fields["policy"]))
    policy.update(changes)
    return {**fields, "policy": base64.b64encode(json.dumps(policy).encode()).decode()}


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("wrong content type", (403, "Policy Condition failed")),
        ("wrong key", (403, "Policy Condition failed")),
        ("over the size limit", (400, "EntityTooLarge")),
        ("expired", (403, "Policy expired")),
    ],
)
def test_s3_refuses_a_post_outside_the_presigned_conditions(client, pipeline, case, expected):
    # S3's error texts, as LocalStack gives them and moto_patches.py restores them for the
    # embedded stack. The "expired" case forges the policy, which only an emulator that skips
    # the signature accepts (both do; AWS would answer SignatureDoesNotMatch).
    created = request_photo(client)
    upload = created["upload"]
    fields = dict(upload["fields"])
    data = PHOTO
    if case == "wrong content type":
        fields["Content-Type"] = "text/html"
    elif case == "wrong key":
        fields["key"] = fields["key"].replace(created["image_id"], "a" * 26)
    elif case == "over the size limit":
        data = b"\xff" * (created["max_bytes"] + 1)
    else:
        fields = forged(fields, expiration="2020-01-01T00:00:00Z")

    status, text = client.post_file({**upload, "fields": fields}, data, "photo.jpg")

    assert (status, expected[1] in text) == (expected[0], True), text
    bucket = pipeline.outputs["uploads_bucket"]
    listed = pipeline.s3.list_objects_v2(Bucket=bucket, Prefix=f"uploads/{created['image_id']}/")
    assert listed["KeyCount"] == 0
    assert client.image(created["image_id"])["status"] == "AWAITING_UPLOAD"


@pytest.mark.parametrize(
    ("declared", "error"),
    [
        (100, "EntityTooLarge"),  # 100 bytes declared, a whole photo sent
        (len(PHOTO) - 1, "EntityTooLarge"),
        (len(PHOTO) + 1, "EntityTooSmall"),
    ],
)
def test_s3_refuses_a_file_that_is_not_exactly_the_declared_size(client, pipeline, declared, error):
    # The presigned POST's content-length-range is [size, size]; LocalStack enforces it, and so
    # does the embedded stack, with S3's error codes (moto_patches.py).
    created = request_photo(client, size=declared)

    status, text = client.post_file(created["upload"], PHOTO, "photo.jpg")

    assert (status, error in text) == (400, True), text
    bucket = pipeline.outputs["uploads_bucket"]
    listed = pipeline.s3.list_objects_v2(Bucket=bucket, Prefix=f"uploads/{created['image_id']}/")
    assert listed["KeyCount"] == 0
    assert client.image(created["image_id"])["status"] == "AWAITING_UPLOAD"
