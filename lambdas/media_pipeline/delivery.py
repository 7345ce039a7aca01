"""Where browsers fetch renditions, and what a web page writes from them.

Three ways, by deployment (Terraform variable ``cdn``; the API and the notifier read it from their
environment, :func:`from_env`):

* **CDN, private** (the default): CloudFront in front of the renditions bucket, which only the
  distribution may read (Origin Access Control), and signed URLs. One signature per image and
  *window*: a custom policy whose resource is ``<cdn>/<image id>/*`` and whose expiry is the end
  of the next window (``CDN_URL_WINDOW_SECONDS``), so every URL handed out for an image within
  one window is the same (browsers and the CDN cache it) and valid for one to two windows, and
  no signature opens another image. The private key is read from SSM Parameter Store (a
  SecureString written by ``scripts/cdn_keys.py``, never in Terraform's state) when first needed.
* **CDN, public**: the same URLs, unsigned and stable for good.
* **No CDN**: S3 presigned GETs signed by the function's role, as before the CDN.

:func:`picture` turns an image's renditions and their URLs into what a ``<picture>`` element
needs: a ``srcset`` per format (AVIF, WebP, then the format every browser takes), the sizes, and
the placeholder.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, Protocol
from urllib.parse import quote

from media_pipeline.values import iso

DEFAULT_WINDOW_SECONDS = 24 * 3600
_FORMAT_ORDER = ("AVIF", "WEBP")  # sources, most preferred first; the primary format is the img


class Links(NamedTuple):
    """The URLs of an image's objects, by key, and until when they work (None: for good)."""

    urls: dict[str, str]
    expires_at: str | None


class Delivery(Protocol):
    def links(self, image_id: str, keys: list[str]) -> Links:
        """URLs of these objects of the image ``image_id`` (keys under ``<image id>/``)."""


class PresignedS3:
    """S3 presigned GETs, each signed on its own (no CDN)."""

    def __init__(self, s3: Any, bucket: str, expiry_seconds: int) -> None:
        self._s3 = s3
        self._bucket = bucket
        self._expiry = expiry_seconds

    def links(self, image_id: str, keys: list[str]) -> Links:
        urls = {
            key: self._s3.generate_presigned_url(
                "get_object", Params={"Bucket": self._bucket, "Key": key}, ExpiresIn=self._expiry
            )
            for key in keys
        }
        return Links(urls, iso(time.time() + self._expiry))


class Signer:
    """CloudFront URL signatures (RSA-SHA1, as CloudFront verifies them) with a key of the
    distribution's key group: botocore's ``CloudFrontSigner`` and ``cryptography``'s RSA."""

    def __init__(self, key_pair_id: str, private_key_pem: bytes) -> None:
        from botocore.signers import CloudFrontSigner  # noqa: PLC0415 - where URLs are signed
        from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415
        from cryptography.hazmat.primitives.asymmetric import padding, rsa  # noqa: PLC0415

        key = serialization.load_pem_private_key(private_key_pem, password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise TypeError("a CloudFront signing key must be an RSA key")

        def rsa_signer(message: bytes) -> bytes:
            return key.sign(message, padding.PKCS1v15(), hashes.SHA1())  # noqa: S303 - CloudFront's

        self.key_pair_id = key_pair_id
        self._signer = CloudFrontSigner(key_pair_id, rsa_signer)

    def custom(self, url: str, resource: str, expires: int) -> str:
        """``url`` signed with a custom policy: ``resource`` (``*`` wildcards) until
        ``expires`` (epoch seconds)."""
        from datetime import UTC, datetime  # noqa: PLC0415

        policy = self._signer.build_policy(resource, datetime.fromtimestamp(expires, UTC))
        return self._signer.generate_presigned_url(url, policy=policy)

    def canned(self, url: str, expires: int) -> str:
        """``url`` signed with a canned policy (that URL alone) until ``expires``."""
        from datetime import UTC, datetime  # noqa: PLC0415

        return self._signer.generate_presigned_url(
            url, date_less_than=datetime.fromtimestamp(expires, UTC)
        )


class Cdn:
    """URLs of the distribution at ``base_url``; signed per image and window with ``signer``,
    unsigned (public) without one."""

    def __init__(
        self,
        base_url: str,
        signer: Signer | Callable[[], Signer] | None,
        window_seconds: int = DEFAULT_WINDOW_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._signer = signer
        self._window = window_seconds
        self._clock = clock

    def url(self, key: str) -> str:
        return f"{self._base}/{quote(key)}"

    def expiry(self) -> int:
        """The end of the window after the current one (epoch seconds): URLs made now work
        for one to two windows, and are the same all through the current one."""
        return (int(self._clock()) // self._window + 2) * self._window

    def links(self, image_id: str, keys: list[str]) -> Links:
        urls = {key: self.url(key) for key in keys}
        if self._signer is None or not urls:
            return Links(urls, None)
        signer = self._signer if isinstance(self._signer, Signer) else self._signer()
        expires = self.expiry()
        # One signature for the image: every URL carries the same Policy, Signature, Key-Pair-Id.
        first = next(iter(urls.values()))
        signed = signer.custom(first, f"{self._base}/{quote(image_id)}/*", expires)
        query = signed.partition("?")[2]
        return Links({key: f"{url}?{query}" for key, url in urls.items()}, iso(expires))


def from_env(env: Mapping[str, str], *, s3: Any, ssm: Callable[[], Any]) -> Delivery:
    """The deployment's way (``CDN_URL``, ``CDN_KEY_PAIR_ID``, ``CDN_PRIVATE_KEY_PARAMETER``,
    ``CDN_URL_WINDOW_SECONDS``; without ``CDN_URL``: S3 presigned GETs of
    ``RENDITIONS_BUCKET`` for ``DOWNLOAD_EXPIRY_SECONDS``). The private key is read from SSM
    (``ssm()``: its client) when the first URL is signed, then kept."""
    base = env.get("CDN_URL", "").strip()
    if not base:
        return PresignedS3(
            s3, env["RENDITIONS_BUCKET"], int(env.get("DOWNLOAD_EXPIRY_SECONDS", "900"))
        )
    window = int(env.get("CDN_URL_WINDOW_SECONDS", DEFAULT_WINDOW_SECONDS))
    key_pair_id = env.get("CDN_KEY_PAIR_ID", "").strip()
    if not key_pair_id:
        return Cdn(base, None, window)
    parameter = env["CDN_PRIVATE_KEY_PARAMETER"]
    loaded: list[Signer] = []

    def signer() -> Signer:
        if not loaded:
            value = ssm().get_parameter(Name=parameter, WithDecryption=True)["Parameter"]["Value"]
            loaded.append(Signer(key_pair_id, value.encode()))
        return loaded[0]

    return Cdn(base, signer, window)


def picture(
    renditions: Mapping[str, Any],
    links: Links,
    preview: Mapping[str, Any] | None = None,
) -> dict[str, Any] | None:
    """What a ``<picture>`` element needs, from a READY image's renditions record and the URLs
    of its objects: ``sources`` (one per extra format, AVIF first: ``type`` and ``srcset``),
    ``img`` (``src``: the largest rendition, ``srcset``, ``width``, ``height``, ``sizes``) in the
    format every browser takes, the ``placeholder``, ``dominant_color`` and ``thumbhash`` to show
    until it loads,
    and ``expires_at`` (signed URLs). None when there is no rendition. Cropped renditions
    (``preview["crops"]``) are left out: they show another part of the picture, at another
    aspect ratio, so they are no candidates of the same ``srcset``."""
    cropped = (preview or {}).get("crops") or {}
    records = sorted(
        (record for name, record in renditions.items() if name not in cropped),
        key=lambda r: r["width"],
        reverse=True,
    )
    if not records:
        return None
    largest = records[0]

    def srcset(entries: list[tuple[str, int]]) -> str:
        seen: set[int] = set()
        parts = []
        for key, width in entries:
            if width not in seen:  # renditions never upscale: small images repeat a width
                seen.add(width)
                parts.append(f"{links.urls[key]} {width}w")
        return ", ".join(parts)

    formats = {f for r in records for f in (r.get("alternates") or {})}
    sources = []
    for image_format in sorted(formats, key=_preference):
        entries = [
            (r["alternates"][image_format]["key"], r["width"])
            for r in records
            if image_format in (r.get("alternates") or {})
        ]
        content_type = next(
            r["alternates"][image_format]["content_type"]
            for r in records
            if image_format in (r.get("alternates") or {})
        )
        sources.append({"type": content_type, "srcset": srcset(entries)})
    width = largest["width"]
    return {
        "sources": sources,
        "img": {
            "src": links.urls[largest["key"]],
            "srcset": srcset([(r["key"], r["width"]) for r in records]),
            "sizes": f"(max-width: {width}px) 100vw, {width}px",
            "width": width,
            "height": largest["height"],
            "type": largest.get("content_type"),
        },
        "placeholder": (preview or {}).get("placeholder"),
        "dominant_color": (preview or {}).get("dominant_color"),
        "thumbhash": (preview or {}).get("thumbhash"),
        "expires_at": links.expires_at,
    }


def _preference(image_format: str) -> int:
    return (
        _FORMAT_ORDER.index(image_format) if image_format in _FORMAT_ORDER else len(_FORMAT_ORDER)
    )


class Invalidator:
    """Drops a deleted image's renditions from the distribution's edge caches: one
    invalidation of ``/<image id>/*`` (one path, whatever the renditions; CloudFront's first
    1,000 paths a month are free). Its caller reference names the image and the version deleted,
    so a repeated delete of that version does not make another. ``cloudfront()``: the client,
    made when first needed."""

    def __init__(self, cloudfront: Callable[[], Any], distribution_id: str) -> None:
        self._cloudfront = cloudfront
        self._distribution = distribution_id

    def __call__(self, image_id: str, etag: str) -> None:
        self._cloudfront().create_invalidation(
            DistributionId=self._distribution,
            InvalidationBatch={
                "Paths": {"Quantity": 1, "Items": [f"/{quote(image_id)}/*"]},
                "CallerReference": f"deleted-{image_id}-{etag or 'none'}",
            },
        )


def invalidator_from_env(
    env: Mapping[str, str], cloudfront: Callable[[], Any]
) -> Invalidator | None:
    """The deployment's CDN invalidations (``CDN_DISTRIBUTION_ID``), or None without a CDN."""
    distribution = env.get("CDN_DISTRIBUTION_ID", "").strip()
    return Invalidator(cloudfront, distribution) if distribution else None
