"""Renditions through the CDN, handler by handler against moto (in process): the API and the
notifier hand out CloudFront URLs signed with the key in SSM (one signature per image, checked
as CloudFront checks it), a ``picture`` with the extra formats, a delete invalidates the image's
paths, and adding a format to a deployment adds the alternates without rewriting a primary."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import boto3
import pytest
from devstack.edge import Refused, verify
from media_pipeline.reconcile import job_event
from tooling import cdn_keys

from tests.integration.conftest import REGION, UPLOADS, count_calls
from tests.integration.test_api import request
from tests.integration.test_lifecycle import (
    KEY,
    PHOTO,
    announced,
    invoke,
    ready_image,
    renditions_of,
    types,
)

CDN = "https://d111111abcdef8.cloudfront.net"
PARAMETER = "/media-pipeline/cdn/signing-keys/k1"


@pytest.fixture
def cdn(aws, monkeypatch):
    """A deployment with a private CDN and WebP alternates: its distribution in moto, its key
    pair (the private key in SSM, as `make cdn-key` stores it). Yields the trusted keys."""
    private_pem, public_pem = cdn_keys.generate()
    cdn_keys.store(boto3.client("ssm", region_name=REGION), PARAMETER, private_pem)
    cloudfront = boto3.client("cloudfront", region_name=REGION)
    distribution = cloudfront.create_distribution(
        DistributionConfig={
            "CallerReference": "media-pipeline",
            "Origins": {
                "Quantity": 1,
                "Items": [
                    {
                        "Id": "renditions",
                        "DomainName": "renditions-bucket.s3.us-east-1.amazonaws.com",
                        "S3OriginConfig": {"OriginAccessIdentity": ""},
                    }
                ],
            },
            "DefaultCacheBehavior": {
                "TargetOriginId": "renditions",
                "ViewerProtocolPolicy": "https-only",
                "MinTTL": 0,
                "ForwardedValues": {"QueryString": False, "Cookies": {"Forward": "none"}},
            },
            "Comment": "",
            "Enabled": True,
        }
    )["Distribution"]
    for name, value in {
        "CDN_URL": CDN,
        "CDN_KEY_PAIR_ID": "K2JCJMDEHXQW5F",
        "CDN_PRIVATE_KEY_PARAMETER": PARAMETER,
        "CDN_URL_WINDOW_SECONDS": "3600",
        "CDN_DISTRIBUTION_ID": distribution["Id"],
        "EXTRA_FORMATS": "WEBP",
        "UPLOAD_PREFIX": "uploads/",
    }.items():
        monkeypatch.setenv(name, value)
    return {"K2JCJMDEHXQW5F": public_pem, "distribution": distribution["Id"]}


@pytest.fixture
def stack(cdn, load_handler):
    return {name: load_handler(name) for name in ("thumbnail", "metadata", "api", "notifier")}


def signed(url: str) -> tuple[str, dict[str, str]]:
    """A signed URL's resource (the URL without its signature) and its query."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}", dict(parse_qsl(parts.query))


def signed_urls(renditions: dict) -> list[str]:
    urls = []
    for rendition in renditions.values():
        urls.append(rendition["url"])
        urls += [alternate["url"] for alternate in rendition["alternates"]]
    return urls


def test_get_image_hands_out_urls_signed_once_for_the_image(aws, cdn, stack, lambda_context):
    image_id, _, _ = ready_image(aws, stack, lambda_context)

    status, _, body = request(stack["api"], lambda_context, "GET", f"/images/{image_id}")

    assert status == 200
    trusted = {"K2JCJMDEHXQW5F": cdn["K2JCJMDEHXQW5F"]}
    for rendition in body["renditions"].values():  # JPEG primaries, each with its WebP
        assert rendition["format"] == "JPEG"
        assert [(a["format"], a["content_type"]) for a in rendition["alternates"]] == [
            ("WEBP", "image/webp")
        ]
    urls = signed_urls(body["renditions"])
    assert len(urls) == 6
    for url in urls:
        resource, query = signed(url)
        assert resource.startswith(f"{CDN}/{image_id}/")
        verify(resource, query, trusted)  # as CloudFront verifies it: raises Refused if not
    assert len({urlsplit(url).query for url in urls}) == 1  # one signature for the image
    # which opens no other image's objects
    _, query = signed(urls[0])
    with pytest.raises(Refused):
        verify(f"{CDN}/someone-elses-image/large.jpg", query, trusted)

    # AND the picture: the WebP source before the JPEG img, both with every width
    picture = body["picture"]
    assert [source["type"] for source in picture["sources"]] == ["image/webp"]
    widths = sorted({r["width"] for r in body["renditions"].values()})
    largest = max(body["renditions"].values(), key=lambda r: r["width"])
    assert (picture["img"]["src"], picture["img"]["width"]) == (largest["url"], widths[-1])
    for srcset in (picture["sources"][0]["srcset"], picture["img"]["srcset"]):
        assert sorted(int(entry.rsplit(" ", 1)[1][:-1]) for entry in srcset.split(", ")) == widths
        assert all(url.split(" ")[0] in urls for url in srcset.split(", "))
    assert picture["placeholder"].startswith("data:image/")
    assert picture["expires_at"] == largest["url_expires_at"]


def test_the_ready_event_carries_a_picture_of_signed_urls(aws, cdn, stack, lambda_context):
    image_id, _, _ = ready_image(aws, stack, lambda_context)

    messages = announced(aws, stack["notifier"], lambda_context)  # validated by the schema

    (ready,) = [m for m in messages if m["image"]["id"] == image_id]
    assert ready["type"] == "image.ready"
    picture = ready["image"]["picture"]
    trusted = {"K2JCJMDEHXQW5F": cdn["K2JCJMDEHXQW5F"]}
    for srcset in (picture["sources"][0]["srcset"], picture["img"]["srcset"]):
        for entry in srcset.split(", "):
            verify(*signed(entry.split(" ")[0]), trusted)


def test_a_delete_invalidates_the_images_paths_once(aws, cdn, stack, lambda_context):
    image_id, etag, _ = ready_image(aws, stack, lambda_context)
    cloudfront = boto3.client("cloudfront", region_name=REGION)

    # WHEN the app deletes the image, twice
    for _ in range(2):
        status, _, _ = request(stack["api"], lambda_context, "DELETE", f"/images/{image_id}")
        assert status == 204

    # THEN one path covers every object of the image (CloudFront's first 1,000 a month are free),
    # and both deletes asked with one caller reference: CloudFront makes one invalidation of it
    # (in-process moto makes two; the embedded stack's moto is patched to answer as AWS does)
    listed = cloudfront.list_invalidations(DistributionId=cdn["distribution"])
    batches = [
        cloudfront.get_invalidation(DistributionId=cdn["distribution"], Id=item["Id"])[
            "Invalidation"
        ]["InvalidationBatch"]
        for item in listed["InvalidationList"].get("Items", [])
    ]
    assert {b["CallerReference"] for b in batches} == {f"deleted-{image_id}-{etag}"}
    assert [b["Paths"]["Items"] for b in batches] == [[f"/{image_id}/*"]] * len(batches)
    assert renditions_of(aws, image_id) == []


def test_adding_a_format_adds_alternates_and_rewrites_no_primary(
    aws, cdn, stack, load_handler, lambda_context, monkeypatch
):
    # GIVEN an image made READY with WebP alternates
    image_id, etag, _ = ready_image(aws, stack, lambda_context)
    before = aws.media_item(image_id)

    # WHEN the deployment adds AVIF and the image's reprocess job comes
    monkeypatch.setenv("EXTRA_FORMATS", "AVIF,WEBP")
    thumbnail = load_handler("thumbnail")
    puts = count_calls(thumbnail.s3, "PutObject")
    job = job_event(
        bucket=UPLOADS,
        key=KEY,
        etag=etag,
        size=len(PHOTO),
        sequencer=before["sequencer"],
        version_id=None,
    )
    assert invoke(thumbnail, lambda_context, job) == {"batchItemFailures": []}

    # THEN every rendition gained an AVIF; the JPEG primaries were not written again
    after = aws.media_item(image_id)
    assert sorted(p["ContentType"] for p in puts) == ["image/avif"] * 3
    for name, record in after["renditions"].items():
        assert record["key"] == before["renditions"][name]["key"]
        assert set(record["alternates"]) == {"AVIF", "WEBP"}
    assert renditions_of(aws, image_id) == sorted(
        key
        for r in after["renditions"].values()
        for key in [r["key"]] + [a["key"] for a in r["alternates"].values()]
    )
    # AND subscribers hear of it once, the picture now with AVIF first
    messages = announced(aws, stack["notifier"], lambda_context)
    assert types(messages, image_id) == ["image.ready", "image.updated"]
    picture = messages[-1]["image"]["picture"]
    assert [s["type"] for s in picture["sources"]] == ["image/avif", "image/webp"]
