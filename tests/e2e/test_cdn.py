"""Renditions through the CDN on the embedded stack: the URLs the API and the READY event hand
out load from the stack's edge (its CloudFront distribution, as Terraform made it) with a plain
HTTP client, revalidate with 304, and are refused with CloudFront's 403 once tampered with,
expired, moved to another image, signed by an unknown key or unsigned."""

from __future__ import annotations

import time
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
import urllib3
from devstack.stack import CDN_KEY_ID
from media_pipeline.delivery import Signer
from tooling import cdn_keys
from tooling.api_client import UploadClient

from tests.e2e.test_pipeline import upload_and_wait

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.embedded_only(
        "community LocalStack has no CloudFront: its stacks hand out S3 presigned GETs"
    ),
]


@pytest.fixture(scope="module")
def http(local_stack) -> urllib3.PoolManager:
    return urllib3.PoolManager(ca_certs=str(local_stack.ca_bundle), retries=False, timeout=30)


@pytest.fixture(scope="module")
def ready(local_stack, outputs, pipeline):
    """An image made READY through the pipeline, and what GET /images/{id} says of it."""
    client = UploadClient(outputs["api_url"], outputs["api_key"], str(local_stack.ca_bundle))
    uploaded, notification = upload_and_wait(pipeline, "landscape-exif-rotated.jpg")
    return client.image(uploaded.id), notification.body


def all_urls(image: dict) -> list[tuple[str, dict]]:
    """(url, what it is) of every object of the image: renditions and alternates."""
    found = []
    for rendition in image["renditions"].values():
        found.append((rendition["url"], rendition))
        found += [(alternate["url"], alternate) for alternate in rendition["alternates"]]
    return found


def with_query(url: str, **changes: str | None) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    for name, value in changes.items():
        if value is None:
            query.pop(name, None)
        else:
            query[name] = value
    return urlunsplit(parts._replace(query=urlencode(query)))


def test_every_url_loads_from_the_cdn_and_revalidates(ready, outputs, http):
    image, _ = ready
    cdn = outputs["cdn"]
    assert cdn["signed"] is True
    urls = all_urls(image)
    # three JPEG renditions and a square crop, each also in WebP (envs/local.tfvars)
    assert len(urls) == 8
    for url, described in urls:
        assert url.startswith(cdn["url"] + "/"), url
        response = http.request("GET", url)
        assert response.status == 200, response.data[:300]
        assert response.headers["Content-Type"] == described["content_type"]
        assert len(response.data) == described["bytes"]
        assert "max-age=31536000" in response.headers["Cache-Control"]
        etag = response.headers["ETag"]
        again = http.request("GET", url, headers={"If-None-Match": etag})
        assert (again.status, again.data) == (304, b"")


def test_a_url_is_refused_when_tampered_with_unsigned_or_for_another_image(ready, http):
    image, _ = ready
    url = image["renditions"]["large"]["url"]
    signature = dict(parse_qsl(urlsplit(url).query))["Signature"]
    flipped = ("A" if signature[10] != "A" else "B").join((signature[:10], signature[11:]))
    other_image = url.replace(f"/{image['image_id']}/", "/aaaaaaaaaaaaaaaaaaaaaaaaaa/")
    for refused in (
        with_query(url, Signature=flipped),
        with_query(url, Signature=None, Policy=None, **{"Key-Pair-Id": None}),
        with_query(url, **{"Key-Pair-Id": "K-UNKNOWN"}),
        other_image,
    ):
        response = http.request("GET", refused)
        assert response.status == 403, refused
        assert b"<Error><Code>" in response.data


def test_an_expired_signature_or_an_unknown_key_is_refused(local_stack, ready, http):
    image, _ = ready
    url = image["renditions"]["small"]["url"]
    unsigned = urlunsplit(urlsplit(url)._replace(query=""))
    key_pair_id = dict(parse_qsl(urlsplit(url).query))["Key-Pair-Id"]  # the public key's id
    key = (local_stack.state_dir / "cdn" / f"{CDN_KEY_ID}.pem").read_bytes()
    stack_key = Signer(key_pair_id, key)
    assert http.request("GET", stack_key.canned(unsigned, int(time.time()) + 600)).status == 200
    assert http.request("GET", stack_key.canned(unsigned, int(time.time()) - 1)).status == 403
    stranger = Signer(key_pair_id, cdn_keys.generate()[0])
    assert http.request("GET", stranger.canned(unsigned, int(time.time()) + 600)).status == 403


def test_the_picture_of_the_api_and_of_the_ready_event_loads(ready, http):
    image, event = ready
    for picture in (image["picture"], event["image"]["picture"]):
        assert [source["type"] for source in picture["sources"]] == ["image/webp"]
        for srcset in (picture["sources"][0]["srcset"], picture["img"]["srcset"]):
            for entry in srcset.split(", "):
                url, width = entry.rsplit(" ", 1)
                assert http.request("GET", url).status == 200, url
                assert width.endswith("w")
        assert http.request("GET", picture["img"]["src"]).status == 200
