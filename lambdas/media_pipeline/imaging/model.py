"""Value types of the image engine: what goes in (limits, specs, options) and what comes out."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

RejectReason = Literal["corrupt", "unsupported", "too_large"]


@dataclass(frozen=True)
class Limits:
    """Resource limits, checked before any pixel is decoded."""

    max_bytes: int = 25 * 1024 * 1024
    """Largest input accepted, checked before anything is parsed."""
    max_pixels: int = 50_000_000
    """Largest width*height accepted, checked from the header; also Pillow's
    ``MAX_IMAGE_PIXELS`` (decompression-bomb guard) while a call runs."""

    def __post_init__(self) -> None:
        if self.max_bytes < 1 or self.max_pixels < 1:
            raise ValueError(f"limits must be positive: {self}")


@dataclass(frozen=True)
class RenditionSpec:
    """One rendition to make: its longest edge is ``max_edge`` pixels (never upscaled)."""

    name: str
    max_edge: int

    def __post_init__(self) -> None:
        if self.max_edge < 1:
            raise ValueError(
                f"rendition {self.name!r}: max_edge must be at least 1, not {self.max_edge}"
            )


DEFAULT_RENDITIONS: tuple[RenditionSpec, ...] = (
    RenditionSpec("large", 1024),
    RenditionSpec("medium", 512),
    RenditionSpec("small", 128),
)


ALPHA_FORMATS = ("WEBP", "PNG", "AVIF")
OPAQUE_FORMATS = ("JPEG", "WEBP", "AVIF")


@dataclass(frozen=True)
class EncodeOptions:
    """How renditions are encoded: ``opaque_format`` (JPEG) when opaque, ``alpha_format``
    (WebP) when transparent."""

    jpeg_quality: int = 82
    webp_quality: int = 80
    alpha_format: str = "WEBP"
    """``"WEBP"``, ``"PNG"`` or ``"AVIF"``: the format of renditions whose transparency is
    actually used."""
    opaque_format: str = "JPEG"
    """``"JPEG"``, ``"WEBP"`` or ``"AVIF"``: the format of opaque renditions."""
    avif_quality: int = 60

    def __post_init__(self) -> None:
        for name in ("jpeg_quality", "webp_quality", "avif_quality"):
            if not 1 <= getattr(self, name) <= 100:
                raise ValueError(f"{name} must be 1-100, not {getattr(self, name)}")
        for name, allowed in (("alpha_format", ALPHA_FORMATS), ("opaque_format", OPAQUE_FORMATS)):
            if getattr(self, name) not in allowed:
                raise ValueError(
                    f"{name} must be one of {', '.join(allowed)}, not {getattr(self, name)!r}"
                )


@dataclass(frozen=True)
class Rendition:
    """One encoded rendition: upright, sRGB, 8-bit, without EXIF/GPS/XMP."""

    name: str
    width: int
    height: int
    format: str
    """``"JPEG"``, ``"WEBP"``, ``"PNG"`` or ``"AVIF"``."""
    content_type: str
    extension: str
    data: bytes = field(repr=False)

    @property
    def size(self) -> int:
        """Encoded size in bytes."""
        return len(self.data)


@dataclass(frozen=True)
class ImageInfo:
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
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Rendered:
    """Success: the metadata and the renditions, in the order of the specs asked for."""

    info: ImageInfo
    renditions: tuple[Rendition, ...] = ()


@dataclass(frozen=True)
class Rejected:
    """A permanent failure: retrying the same bytes can never succeed."""

    reason: RejectReason
    message: str


Outcome = Rendered | Rejected


class Rejection(Exception):
    """Raised inside the engine to stop at a permanent failure; turned into :class:`Rejected`."""

    def __init__(self, reason: RejectReason, message: str) -> None:
        super().__init__(message)
        self.reason: RejectReason = reason
        self.message = message

    def outcome(self) -> Rejected:
        return Rejected(self.reason, self.message)
