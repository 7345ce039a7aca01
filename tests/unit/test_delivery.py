"""Rendition URLs: CloudFront's signed URL formats (canned and custom policy), one signature per
image and window, the local edge's check of them, and the <picture> a page writes."""

from __future__ import annotations

import base64
import json
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from devstack import edge
from media_pipeline import delivery
from media_pipeline.delivery import Cdn, Invalidator, Links, Signer, picture
from media_pipeline.model import rendition_keys
from tooling import cdn_keys

BASE = "https://d111111abcdef8.cloudfront.net"
IMAGE = "a" * 26
OTHER = "b" * 26
KEY = f"{IMAGE}/e1/large-0c9a77e1.jpg"


@pytest.fixture(scope="module")
def pair() -> tuple[bytes, bytes]:
    return cdn_keys.generate()


@pytest.fixture(scope="module")
def signer(pair) -> Signer:
    return Signer("K2JCJMDEHXQW5F", pair[0])


def cloudfront_b64decode(value: str) -> bytes:
    """CloudFront's documented URL-safe base64: '-' for '+', '_' for '=', '~' for '/'."""
    return base64.b64decode(value.replace("-", "+").replace("_", "=").replace("~", "/"))


def verifies(public_pem: bytes, signature: bytes, message: bytes) -> bool:
    key = serialization.load_pem_public_key(public_pem)
    try:
        key.verify(signature, message, padding.PKCS1v15(), hashes.SHA1())
    except InvalidSignature:
        return False
    return True


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def test_a_canned_policy_url_is_cloudfronts_documented_format(pair, signer):
    url = f"{BASE}/{KEY}"
    signed = signer.canned(url, 1_900_000_000)
    query = query_of(signed)
    assert set(query) == {"Expires", "Signature", "Key-Pair-Id"}
    assert query["Expires"] == "1900000000"
    assert query["Key-Pair-Id"] == "K2JCJMDEHXQW5F"
    assert not set("+=/") & set(query["Signature"])  # CloudFront's URL-safe alphabet
    # The signature is RSA-SHA1 over exactly this policy (no whitespace), per CloudFront's docs.
    policy = (
        '{"Statement":[{"Resource":"' + url + '","Condition":{"DateLessThan":'
        '{"AWS:EpochTime":1900000000}}}]}'
    ).encode()
    assert verifies(pair[1], cloudfront_b64decode(query["Signature"]), policy)
    assert policy == edge.canned_policy(url, 1_900_000_000)


def test_a_custom_policy_url_carries_its_policy_and_signs_it(pair, signer):
    resource = f"{BASE}/{IMAGE}/*"
    signed = signer.custom(f"{BASE}/{KEY}", resource, 1_900_000_000)
    query = query_of(signed)
    assert set(query) == {"Policy", "Signature", "Key-Pair-Id"}
    policy = cloudfront_b64decode(query["Policy"])
    assert json.loads(policy) == {
        "Statement": [
            {"Resource": resource, "Condition": {"DateLessThan": {"AWS:EpochTime": 1900000000}}}
        ]
    }
    assert verifies(pair[1], cloudfront_b64decode(query["Signature"]), policy)


def test_one_signature_per_image_and_window(signer):
    start = 360 * 3600 + 100  # just after a window begins
    now = [float(start)]
    cdn = Cdn(BASE, signer, window_seconds=3600, clock=lambda: now[0])
    keys = [KEY, f"{IMAGE}/e1/small-1.webp"]
    first = cdn.links(IMAGE, keys)
    assert {k: urlsplit(u).path for k, u in first.urls.items()} == {k: f"/{k}" for k in keys}
    assert len({urlsplit(u).query for u in first.urls.values()}) == 1  # one policy, one signature
    now[0] += 3000  # the same window: the very same URLs (a browser's cache hits)
    assert cdn.links(IMAGE, keys) == first
    policy = json.loads(cloudfront_b64decode(query_of(first.urls[KEY])["Policy"]))
    expires = policy["Statement"][0]["Condition"]["DateLessThan"]["AWS:EpochTime"]
    assert start + 3600 <= expires <= start + 2 * 3600  # one to two windows
    now[0] += 1000  # the next window: new URLs, still one signature
    later = cdn.links(IMAGE, keys)
    assert later.urls != first.urls
    assert later.expires_at > first.expires_at


def test_a_public_cdn_hands_out_stable_unsigned_urls():
    links = Cdn(BASE, None).links(IMAGE, [KEY])
    assert links == Links({KEY: f"{BASE}/{KEY}"}, None)


def local_url(key: str) -> str:
    return f"https://127.0.0.1:4599/_edge/d1.cloudfront.net/{key}"


@pytest.fixture(scope="module")
def trusted(pair, signer) -> dict[str, bytes]:
    return {signer.key_pair_id: pair[1]}


def test_the_edge_accepts_what_cloudfront_accepts(signer, trusted):
    url = local_url(KEY)
    custom = signer.custom(url, local_url(f"{IMAGE}/*"), 2_000_000_000)
    edge.verify(url, query_of(custom), trusted, now=1_900_000_000)
    canned = signer.canned(url, 2_000_000_000)
    edge.verify(url, query_of(canned), trusted, now=1_900_000_000)


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("tampered", "AccessDenied"),
        ("expired", "AccessDenied"),
        ("other image", "AccessDenied"),
        ("unknown key", "InvalidKey"),
        ("no key", "MissingKey"),
        ("no signature", "MissingKey"),
    ],
)
def test_the_edge_refuses_what_cloudfront_refuses(signer, trusted, case, code):
    url = local_url(KEY)
    query = query_of(signer.custom(url, local_url(f"{IMAGE}/*"), 2_000_000_000))
    now = 1_900_000_000
    if case == "tampered":  # one character of the signature changed, still valid base64
        signature = query["Signature"]
        query["Signature"] = ("B" if signature[0] != "B" else "C") + signature[1:]
    elif case == "expired":
        now = 2_000_000_000
    elif case == "other image":
        url = local_url(f"{OTHER}/e1/large-0c9a77e1.jpg")
    elif case == "unknown key":
        query["Key-Pair-Id"] = "KUNKNOWN"
    elif case == "no key":
        del query["Key-Pair-Id"]
    else:
        del query["Signature"]
    with pytest.raises(edge.Refused) as refused:
        edge.verify(url, query, trusted, now=now)
    assert refused.value.code == code
    assert refused.value.status.startswith("403")


def record(width: int, height: int, name: str, alternates: tuple[str, ...] = ()) -> dict:
    types = {"AVIF": ("avif", "image/avif"), "WEBP": ("webp", "image/webp")}
    return {
        "key": f"{IMAGE}/e1/{name}.jpg",
        "width": width,
        "height": height,
        "format": "JPEG",
        "content_type": "image/jpeg",
        "bytes": 1000,
        "alternates": {
            f: {"key": f"{IMAGE}/e1/{name}.{types[f][0]}", "content_type": types[f][1]}
            for f in alternates
        },
    }


def test_a_picture_has_a_source_per_extra_format_most_preferred_first():
    renditions = {
        "large": record(1024, 683, "large", ("WEBP", "AVIF")),
        "medium": record(512, 341, "medium", ("WEBP", "AVIF")),
        "small": record(128, 85, "small", ("WEBP", "AVIF")),
    }
    links = Links({k: f"u/{k}" for k in rendition_keys(renditions)}, "2026-12-07T00:00:00Z")
    view = picture(renditions, links, {"placeholder": "data:x", "dominant_color": "#112233"})
    assert [s["type"] for s in view["sources"]] == ["image/avif", "image/webp"]
    widths = {"large": 1024, "medium": 512, "small": 128}

    def srcset(extension: str) -> str:
        return ", ".join(f"u/{IMAGE}/e1/{n}.{extension} {w}w" for n, w in widths.items())

    assert view["sources"][0]["srcset"] == srcset("avif")
    assert view["img"] == {
        "src": f"u/{IMAGE}/e1/large.jpg",
        "srcset": srcset("jpg"),
        "sizes": "(max-width: 1024px) 100vw, 1024px",
        "width": 1024,
        "height": 683,
        "type": "image/jpeg",
    }
    assert (view["placeholder"], view["dominant_color"]) == ("data:x", "#112233")
    assert view["expires_at"] == "2026-12-07T00:00:00Z"


def test_a_small_image_lists_each_width_once():
    # renditions are never upscaled: large and medium of a 300 px image are both 300 px wide
    renditions = {
        "large": record(300, 200, "large"),
        "medium": record(300, 200, "medium"),
        "small": record(128, 85, "small"),
    }
    links = Links({k: k for k in rendition_keys(renditions)}, None)
    view = picture(renditions, links)
    assert view["img"]["srcset"].count(" 300w") == 1
    assert view["sources"] == []
    assert picture({}, links) is None


def test_a_deleted_image_is_invalidated_once_per_version():
    calls = []

    class CloudFront:
        def create_invalidation(self, **kwargs):
            calls.append(kwargs)

    forget = Invalidator(CloudFront, "E2QWRUHAPOMQZL")
    forget(IMAGE, "e1")
    (call,) = calls
    assert call["DistributionId"] == "E2QWRUHAPOMQZL"
    assert call["InvalidationBatch"]["Paths"] == {"Quantity": 1, "Items": [f"/{IMAGE}/*"]}
    assert call["InvalidationBatch"]["CallerReference"] == f"deleted-{IMAGE}-e1"


def test_the_way_follows_the_environment(pair):
    fetched = []

    class Ssm:
        def get_parameter(self, **kwargs):
            fetched.append(kwargs)
            return {"Parameter": {"Value": pair[0].decode()}}

    presigned = delivery.from_env({"RENDITIONS_BUCKET": "r"}, s3=object(), ssm=Ssm)
    assert isinstance(presigned, delivery.PresignedS3)
    public = delivery.from_env({"CDN_URL": BASE}, s3=None, ssm=Ssm)
    assert public.links(IMAGE, [KEY]).expires_at is None
    env = {"CDN_URL": BASE, "CDN_KEY_PAIR_ID": "K1", "CDN_PRIVATE_KEY_PARAMETER": "/p/k"}
    private = delivery.from_env(env, s3=None, ssm=Ssm)
    assert fetched == []  # read when first needed
    private.links(IMAGE, [KEY])
    private.links(OTHER, [KEY.replace(IMAGE, OTHER)])
    assert fetched == [{"Name": "/p/k", "WithDecryption": True}]  # then kept
