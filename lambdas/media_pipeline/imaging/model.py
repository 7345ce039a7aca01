"""Value types of the image engine: what goes in (limits, specs, options) and what comes out.

They are named tuples, not dataclasses: immutable, compared by value, changed with ``_replace``.
``scripts/render.py`` imports them, and on a small image its start-up is most of its run: the
``dataclasses`` module (with ``inspect`` and ``ast``) and seven frozen classes took ~20 ms of a
fresh interpreter here, a third of what the tutorial code needs in all (``make bench``, whole
process; ``tests/unit/test_render_script.py`` keeps them out).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, TypeVar

if TYPE_CHECKING:
    from media_pipeline.imaging.features import Features

_T = TypeVar("_T", bound=tuple[Any, ...])


def _checked(cls: type[_T]) -> type[_T]:
    """Make the named tuple ``cls`` run its ``_check()`` on construction (``_replace`` does not:
    it copies values that were checked)."""
    make: Callable[..., _T] = cls.__new__

    @functools.wraps(make)
    def __new__(klass: type[_T], *args: Any, **kwargs: Any) -> _T:
        value = make(klass, *args, **kwargs)
        value._check()  # type: ignore[attr-defined]
        return value

    cls.__new__ = __new__  # type: ignore[method-assign,assignment]
    return cls


RejectReason = Literal["corrupt", "unsupported", "too_large"]


@_checked
class Limits(NamedTuple):
    """Resource limits, checked before any pixel is decoded."""

    max_bytes: int = 25 * 1024 * 1024
    """Largest input accepted, checked before anything is parsed."""
    max_pixels: int = 50_000_000
    """Largest width*height accepted, checked from the header; also Pillow's
    ``MAX_IMAGE_PIXELS`` (decompression-bomb guard) while a call runs."""

    def _check(self) -> None:
        if self.max_bytes < 1 or self.max_pixels < 1:
            raise ValueError(f"limits must be positive: {self}")


@_checked
class RenditionSpec(NamedTuple):
    """One rendition to make: its longest edge is ``max_edge`` pixels (never upscaled).

    With an ``aspect`` it is a *cropped* rendition (``imaging.crops``): the largest window of
    that width:height ratio in the upright picture, placed around its point of interest, then
    resized so that its longest edge is ``max_edge`` (never upscaled unless ``upscale``)."""

    name: str
    max_edge: int
    aspect: tuple[int, int] | None = None
    """``(width, height)`` of a cropped rendition, e.g. ``(16, 9)``; None: the whole picture."""
    upscale: bool = False
    """A cropped rendition whose window is smaller than its size is enlarged to it (so it always
    comes out at exactly its size); only with an ``aspect``."""

    def _check(self) -> None:
        if self.max_edge < 1:
            raise ValueError(
                f"rendition {self.name!r}: max_edge must be at least 1, not {self.max_edge}"
            )
        if self.aspect is not None and (
            len(self.aspect) != 2
            or not all(isinstance(n, int) and 1 <= n <= MAX_ASPECT_TERM for n in self.aspect)
        ):
            raise ValueError(
                f"rendition {self.name!r}: aspect must be two whole numbers 1-{MAX_ASPECT_TERM},"
                f" not {self.aspect!r}"
            )
        if self.upscale and self.aspect is None:
            raise ValueError(f"rendition {self.name!r}: upscale is only for cropped renditions")


MAX_ASPECT_TERM = 10_000
"""Largest term of a cropped rendition's aspect ratio (``16x9``, ``1x1``, ``1920x1080``)."""


DEFAULT_RENDITIONS: tuple[RenditionSpec, ...] = (
    RenditionSpec("large", 1024),
    RenditionSpec("medium", 512),
    RenditionSpec("small", 128),
)


ALPHA_FORMATS = ("WEBP", "PNG", "AVIF")
OPAQUE_FORMATS = ("JPEG", "WEBP", "AVIF")
EXTRA_FORMATS = ("AVIF", "WEBP")
"""Formats a rendition can also be made in, for the browsers that take them (``<picture>``):
both keep transparency, so they serve opaque and transparent renditions alike."""


@_checked
class EncodeOptions(NamedTuple):
    """How renditions are encoded: ``opaque_format`` (JPEG) when opaque, ``alpha_format``
    (WebP) when transparent, and each also in the ``extra_formats`` it is not already in."""

    jpeg_quality: int = 82
    webp_quality: int = 80
    alpha_format: str = "WEBP"
    """``"WEBP"``, ``"PNG"`` or ``"AVIF"``: the format of renditions whose transparency is
    actually used."""
    opaque_format: str = "JPEG"
    """``"JPEG"``, ``"WEBP"`` or ``"AVIF"``: the format of opaque renditions."""
    avif_quality: int = 60
    extra_formats: tuple[str, ...] = ()
    """Of ``EXTRA_FORMATS``, in order of preference: each rendition is also encoded in these
    (an *alternate*), for browsers that take them; the format above is every browser's."""

    def _check(self) -> None:
        for name in ("jpeg_quality", "webp_quality", "avif_quality"):
            if not 1 <= getattr(self, name) <= 100:
                raise ValueError(f"{name} must be 1-100, not {getattr(self, name)}")
        for name, allowed in (("alpha_format", ALPHA_FORMATS), ("opaque_format", OPAQUE_FORMATS)):
            if getattr(self, name) not in allowed:
                raise ValueError(
                    f"{name} must be one of {', '.join(allowed)}, not {getattr(self, name)!r}"
                )
        unknown = [f for f in self.extra_formats if f not in EXTRA_FORMATS]
        if unknown or len(set(self.extra_formats)) != len(self.extra_formats):
            raise ValueError(
                f"extra_formats must be distinct formats of {', '.join(EXTRA_FORMATS)},"
                f" not {self.extra_formats!r}"
            )

    def formats(self, alpha: bool) -> tuple[str, ...]:
        """The formats a rendition is encoded in: its primary format first, then the extra
        formats it is not already in."""
        primary = self.alpha_format if alpha else self.opaque_format
        return (primary, *(f for f in self.extra_formats if f != primary))


class Rendition(NamedTuple):
    """One encoded rendition: upright, sRGB, 8-bit, without EXIF/GPS/XMP."""

    name: str
    width: int
    height: int
    format: str
    """``"JPEG"``, ``"WEBP"``, ``"PNG"`` or ``"AVIF"``."""
    content_type: str
    extension: str
    data: bytes

    def __repr__(self) -> str:  # without the bytes
        return (
            f"Rendition(name={self.name!r}, width={self.width}, height={self.height}, "
            f"format={self.format!r}, size={self.size})"
        )

    @property
    def size(self) -> int:
        """Encoded size in bytes."""
        return len(self.data)


class ImageInfo(NamedTuple):
    """The metadata record of a source image. GPS coordinates only when asked for."""

    width: int
    """Upright width of the first frame (after the EXIF orientation)."""
    height: int
    """Upright height of the first frame (after the EXIF orientation)."""
    format: str
    """Pillow's format name: JPEG, MPO, PNG, GIF, WEBP, TIFF, BMP, ICO, AVIF or HEIF."""
    mode: str
    """Pillow mode of the source as decoded, e.g. ``"RGB"``, ``"CMYK"``, ``"I;16"``, ``"P"``."""
    frames: int
    """1 for a still image, the frame (or page, or image) count otherwise."""
    animated: bool
    orientation: int | None
    """EXIF orientation (1-8) as found in the file; None when absent or invalid."""
    has_alpha: bool
    """The source carries transparency (an alpha channel, tRNS or a transparent palette entry)."""
    icc_profile: str | None
    """Description of the embedded ICC profile; None when there is none (or it is unreadable)."""
    exif: dict[str, str]
    """Selected EXIF only: camera_make, camera_model, lens_model, taken_at, software."""
    has_gps: bool
    """The file has a GPS IFD. Unless ``describe(include_gps=True)``, only this flag leaves the
    engine, never the coordinates."""
    sha256: str
    """Hex SHA-256 of the bytes; empty from ``render(sha256=False)`` (the thumbnail worker's)."""
    bytes: int
    placeholder: str | None = None
    """A tiny preview for apps to show while a rendition loads: a ``data:image/webp;base64,``
    URI, at most 24 px on the longest side, upright, transparency kept. Set by ``render()``
    (made from its smallest renditions); None in ``describe()``'s record, which reads no pixels.
    The media item keeps it with the renditions half; apps see it in the metadata record."""
    gps: dict[str, float] | None = None
    """``latitude``, ``longitude`` (decimal degrees, + north / east) and ``altitude`` (metres,
    when recorded): only with ``describe(include_gps=True)`` (the metadata worker's INCLUDE_GPS
    setting, off by default) and a readable position; None otherwise."""
    dominant_color: str | None = None
    """``"#rrggbb"``: the most common colour (of the opaque pixels). Set like ``placeholder``;
    None also for an entirely transparent image."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able copy (plain str/int/bool/None/dict values), as stored and notified."""
        return {
            name: dict(value) if isinstance(value, dict) else value
            for name, value in self._asdict().items()
        }


class Rendered(NamedTuple):
    """Success: the metadata and the renditions, in the order of the specs asked for; and the
    alternates, the same renditions in the options' extra formats (each named as its rendition,
    in the specs' order, then by format)."""

    info: ImageInfo
    renditions: tuple[Rendition, ...] = ()
    alternates: tuple[Rendition, ...] = ()
    features: Features | None = None
    """What ``render()`` found in the picture for crops, placeholders and duplicates (focal
    point, crop windows, ThumbHash, perceptual hash: ``imaging.features``); None from
    ``describe()`` and from ``render(features=False)``."""


class Rejected(NamedTuple):
    """A permanent failure: retrying the same bytes can never succeed."""

    reason: RejectReason
    message: str


Produced = Rendered | Rejected
"""What the engine made of the bytes (:func:`render`, :func:`describe`): the record and the
renditions, or why the bytes are refused for good."""


class Rejection(Exception):
    """Raised inside the engine to stop at a permanent failure; turned into :class:`Rejected`."""

    def __init__(self, reason: RejectReason, message: str) -> None:
        super().__init__(message)
        self.reason: RejectReason = reason
        self.message = message

    def outcome(self) -> Rejected:
        return Rejected(self.reason, self.message)
