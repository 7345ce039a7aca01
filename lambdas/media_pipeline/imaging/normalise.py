"""Stage 2: turn whatever was decoded into upright, 8-bit sRGB (RGB, RGBA or L).

Split in two so the expensive part runs on small images:

* :func:`prepare` runs once on the decoded (full-size or JPEG-draft) image and does only what
  must happen before resampling: palettes, 1-bit and colour-key transparency become real
  channels, an alpha channel that is everywhere opaque is dropped, the levels of high-bit
  greyscale are measured.
* :func:`finish` runs on the first, already-resized rendition: 16-bit to 8-bit, CMYK and
  embedded ICC profiles to sRGB, EXIF orientation, no metadata left in ``info``.
"""

from __future__ import annotations

import functools
import io
import math
from types import ModuleType
from typing import TYPE_CHECKING

from PIL import Image

from media_pipeline.imaging.model import Rejection

if TYPE_CHECKING:
    from PIL import ImageCms

HIGH_BIT_MODES = frozenset({"I", "I;16", "I;16L", "I;16B", "I;16N", "F"})
"""Greyscale modes with more than 8 bits (Pillow decodes 16-bit colour to 8 bits itself)."""

# Modes that resampling handles correctly as they are; the rest is converted in prepare().
_RESAMPLABLE = frozenset({"L", "LA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr"}) | HIGH_BIT_MODES

_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


@functools.cache
def _cms() -> ModuleType:
    """ImageCms (LittleCMS), imported when the first embedded profile is met, not by every start
    (~3 ms of a cold start)."""
    from PIL import ImageCms  # noqa: PLC0415 - deliberately lazy (see above)

    return ImageCms


@functools.cache
def _srgb() -> ImageCms.ImageCmsProfile:
    """Made when the first embedded profile is met, not by every start."""
    return _cms().ImageCmsProfile(_cms().createProfile("sRGB"))


def _icc_errors() -> tuple[type[BaseException], ...]:
    return (_cms().PyCMSError, OSError, ValueError, TypeError)


class Source:
    """What :func:`finish` must still do to a resized image of this source. (A plain class, not
    a dataclass: each dataclass costs ~1 ms of a cold start, and this one never leaves the
    engine.)"""

    __slots__ = ("icc", "levels", "orientation")

    def __init__(
        self,
        orientation: int = 1,
        icc: bytes | None = None,
        levels: tuple[float, float] = (0.0, 65535.0),
    ) -> None:
        self.orientation = orientation
        """EXIF orientation to apply (1 = none)."""
        self.icc = icc
        """Embedded ICC profile, converted to sRGB in :func:`finish`."""
        self.levels = levels
        """Darkest and brightest value of high-bit greyscale, stretched to 0-255."""


def transposes(orientation: int) -> bool:
    """Whether the EXIF orientation swaps width and height."""
    return orientation in (5, 6, 7, 8)


def upright_size(size: tuple[int, int], orientation: int) -> tuple[int, int]:
    return (size[1], size[0]) if transposes(orientation) else size


def prepare(image: Image.Image, orientation: int) -> tuple[Image.Image, Source]:
    """Make the decoded image resamplable, at the least cost a full-size image allows."""
    icc = image.info.get("icc_profile") or None
    if image.mode in HIGH_BIT_MODES:
        # No agreed white point: scientific and medical scans use 10-14 bits of a 16-bit
        # container, so a fixed /257 would make them black. Stretch the image's own range
        # (a full-range image maps exactly to /257). Transparency and ICC are not kept here.
        low, high = image.getextrema()
        if not (math.isfinite(low) and math.isfinite(high) and high > low):
            low, high = (0.0, 65535.0) if image.mode.startswith("I;16") else (0.0, 255.0)
        return image, Source(orientation, None, (float(low), float(high)))

    if image.mode in ("La", "RGBa"):  # premultiplied sources (rare)
        image = image.convert(image.mode[:-1] + "A")
    elif image.has_transparency_data and image.mode not in ("LA", "RGBA"):
        image = image.convert("RGBA")  # palette, 1-bit and colour-key (tRNS) transparency
    elif image.mode == "P":
        image = image.convert("RGB")
    elif image.mode == "1":
        image = image.convert("L")
    elif image.mode not in _RESAMPLABLE:  # LAB, HSV, ...: channels that must not be averaged
        try:
            image = image.convert("RGB")
        except ValueError:
            raise Rejection("unsupported", f"colour mode {image.mode} is not supported") from None

    if image.mode in ("LA", "RGBA") and image.getchannel("A").getextrema()[0] == 255:
        image = image.convert(image.mode[:-1])  # alpha present but unused: treat as opaque
    return image, Source(orientation, icc)


def finish(image: Image.Image, source: Source) -> Image.Image:
    """8-bit sRGB RGB/RGBA/L, upright, with an empty ``info`` (no EXIF, XMP, ICC to leak).

    May modify and return ``image`` itself when there is nothing to convert: pass a copy of an
    image that is still needed.
    """
    out = image
    if out.mode in HIGH_BIT_MODES:
        out = _stretch(out, source.levels)
    elif out.mode == "CMYK":
        out = _to_srgb(out, source.icc, fallback="RGB")
    elif out.mode == "LA":
        out = out.convert("RGBA")
    elif out.mode in ("RGBX", "YCbCr"):
        out = out.convert("RGB")
    if image.mode != "CMYK" and out.mode in ("RGB", "RGBA"):
        out = _to_srgb(out, source.icc)
    method = _TRANSPOSE.get(source.orientation)
    if method is not None:
        out = out.transpose(method)
    out.info = {}
    return out


@functools.lru_cache(maxsize=16)
def icc_profile(icc: bytes) -> ImageCms.ImageCmsProfile | None:
    """The parsed ICC profile, or None when it cannot be read."""
    cms = _cms()
    try:
        return cms.ImageCmsProfile(io.BytesIO(icc))
    except _icc_errors():
        return None


@functools.lru_cache(maxsize=16)
def _transform_to_srgb(icc: bytes, mode: str) -> ImageCms.ImageCmsTransform | None:
    """A transform from the embedded profile to sRGB; None when there is nothing (sensible) to do:
    an unreadable profile, one for another colour space than the pixels', or sRGB itself."""
    profile = icc_profile(icc)
    if profile is None:
        return None
    space = (profile.profile.xcolor_space or "").strip()
    if space != ("CMYK" if mode == "CMYK" else "RGB"):
        return None
    description = (profile.profile.profile_description or "").lower()
    if mode != "CMYK" and "srgb" in description and "linear" not in description:
        return None
    cms = _cms()
    try:
        return cms.buildTransform(
            profile,
            _srgb(),
            mode,
            "RGB" if mode == "CMYK" else mode,
            renderingIntent=cms.Intent.PERCEPTUAL,
        )
    except _icc_errors():
        return None


def _to_srgb(image: Image.Image, icc: bytes | None, fallback: str | None = None) -> Image.Image:
    """``image`` converted from its embedded profile to sRGB. Without a usable profile (or when
    it is sRGB already) the pixels are taken as sRGB: converted to ``fallback`` mode if given
    (Pillow's plain CMYK formula), else returned as they are."""
    transform = _transform_to_srgb(icc, image.mode) if icc else None
    if transform is not None:
        try:
            return transform.apply(image)
        except _icc_errors():
            pass
    return image.convert(fallback) if fallback else image


def _stretch(image: Image.Image, levels: tuple[float, float]) -> Image.Image:
    low, high = levels
    scale = 255.0 / (high - low)
    offset = 0.5 - low * scale  # +0.5: Pillow truncates when it goes back to integers
    if image.mode not in ("I", "F"):
        image = image.convert("I")
    return image.point(lambda value: value * scale + offset).convert("L")
