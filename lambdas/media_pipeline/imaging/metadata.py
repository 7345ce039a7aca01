"""The metadata record (:class:`ImageInfo`) of a decoded image.

Metadata is best effort: a malformed EXIF block or ICC profile never fails an image that decodes,
it only leaves the corresponding fields out. GPS coordinates are read only when asked for
(:func:`gps_position`); otherwise the record says only whether the file carries them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from PIL import ExifTags, Image

from media_pipeline.imaging.decode import DECODE_ERRORS
from media_pipeline.imaging.model import ImageInfo
from media_pipeline.imaging.normalise import icc_profile, upright_size

MAX_TEXT = 256
"""Longest EXIF string kept (they end up in a database item and in notifications)."""

_BASE = ExifTags.Base
_IFD0_TEXT = {
    "camera_make": _BASE.Make,
    "camera_model": _BASE.Model,
    "software": _BASE.Software,
}
_TAKEN = (  # (date time, UTC offset) tags of the Exif IFD, best first
    (_BASE.DateTimeOriginal, _BASE.OffsetTimeOriginal),
    (_BASE.DateTimeDigitized, _BASE.OffsetTimeDigitized),
)
_OFFSET = re.compile(r"[+-]\d\d:\d\d")


def read_exif(image: Image.Image) -> Image.Exif:
    """The image's EXIF (incl. orientation from XMP, AVIF irot/imir), empty when unreadable.

    Never decodes pixels: Pillow's PNG ``getexif()`` decodes the whole image when the header had
    no EXIF (to find chunks after the image data); :func:`decode.read_png_trailer` reads those
    without decoding, so Pillow's format-independent ``getexif()`` is used for PNG.
    """
    try:
        if image.format == "PNG":
            return Image.Image.getexif(image)
        return image.getexif()
    except DECODE_ERRORS:
        return Image.Exif()


def orientation_to_apply(exif: Image.Exif) -> int:
    """The EXIF orientation the pixels still need (1 when absent or invalid). pillow-heif already
    applies HEIF's own transformations and resets the tag to 1."""
    value = _valid_orientation(exif.get(_BASE.Orientation))
    return value or 1


def image_info(
    image: Image.Image,
    exif: Image.Exif,
    *,
    header_size: tuple[int, int],
    frames: int,
    animated: bool,
    sha256: str,
    size: int,
) -> ImageInfo:
    """Build the record from a loaded image and its EXIF."""
    found = _valid_orientation(image.info.get("original_orientation", exif.get(_BASE.Orientation)))
    width, height = upright_size(header_size, orientation_to_apply(exif))
    return ImageInfo(
        width=width,
        height=height,
        format=str(image.format),
        mode=image.mode,
        frames=frames,
        animated=animated,
        orientation=found,
        has_alpha=image.has_transparency_data,
        icc_profile=_icc_description(image.info.get("icc_profile")),
        exif=selected_exif(exif),
        has_gps=_has_gps(exif),
        sha256=sha256,
        bytes=size,
    )


def selected_exif(exif: Image.Exif) -> dict[str, str]:
    """camera_make, camera_model, lens_model, taken_at (ISO 8601 when parseable), software:
    only those present, as clean strings."""
    selected: dict[str, str] = {}
    for key, tag in _IFD0_TEXT.items():
        if text := _text(exif.get(tag)):
            selected[key] = text
    details = _ifd(exif, ExifTags.IFD.Exif)
    if lens := _text(details.get(_BASE.LensModel)):
        selected["lens_model"] = lens
    for stamp_tag, offset_tag in _TAKEN:
        if taken := _timestamp(details.get(stamp_tag), details.get(offset_tag)):
            selected["taken_at"] = taken
            break
    return dict(sorted(selected.items()))


def gps_position(exif: Image.Exif) -> dict[str, float] | None:
    """Latitude and longitude in decimal degrees (6 places, about 10 cm) and the altitude in
    metres when present; None unless both coordinates and their N/S, E/W references are valid."""
    gps = _ifd(exif, ExifTags.IFD.GPSInfo)
    latitude = _degrees(
        gps.get(ExifTags.GPS.GPSLatitude), gps.get(ExifTags.GPS.GPSLatitudeRef), "NS"
    )
    longitude = _degrees(
        gps.get(ExifTags.GPS.GPSLongitude), gps.get(ExifTags.GPS.GPSLongitudeRef), "EW"
    )
    if latitude is None or longitude is None or abs(latitude) > 90 or abs(longitude) > 180:
        return None
    position = {"latitude": round(latitude, 6), "longitude": round(longitude, 6)}
    altitude = _number(gps.get(ExifTags.GPS.GPSAltitude))
    if altitude is not None and math.isfinite(altitude):
        below = gps.get(ExifTags.GPS.GPSAltitudeRef) in (1, b"\x01")
        position["altitude"] = round(-altitude if below else altitude, 2)
    return position


def _degrees(value: object, reference: object, references: str) -> float | None:
    if isinstance(reference, bytes):
        reference = reference.decode("ascii", "replace")
    if not isinstance(reference, str):
        return None
    reference = reference.strip("\x00 ").upper()
    if len(reference) != 1 or reference not in references:
        return None
    if not isinstance(value, tuple) or len(value) != 3:
        return None
    parts = [_number(part) for part in value]
    if any(part is None or not math.isfinite(part) or part < 0 for part in parts):
        return None
    degrees, minutes, seconds = parts
    total = degrees + minutes / 60 + seconds / 3600  # type: ignore[operator]
    return -total if reference in ("S", "W") else total


def _number(value: object) -> float | None:
    try:
        return float(value)  # type: ignore[arg-type]  # int, float, IFDRational
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        return None


def _has_gps(exif: Image.Exif) -> bool:
    return ExifTags.IFD.GPSInfo in exif or bool(_ifd(exif, ExifTags.IFD.GPSInfo))


def _ifd(exif: Image.Exif, tag: int) -> Mapping[int, Any]:
    try:
        return exif.get_ifd(tag)
    except DECODE_ERRORS:
        return {}


def _valid_orientation(value: object) -> int | None:
    return value if isinstance(value, int) and 1 <= value <= 8 else None


def _icc_description(icc: bytes | None) -> str | None:
    if not icc:
        return None
    profile = icc_profile(icc)
    return _text(profile.profile.profile_description) if profile else None


def _text(value: object) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    text = "".join(char for char in value if char.isprintable()).strip()
    return text[:MAX_TEXT] or None


_EXIF_TIME = re.compile(
    r"(\d\d\d\d):(1[0-2]|0[1-9]|[1-9]):(3[01]|[12]\d|0[1-9]|[1-9]| [1-9])"
    r"\s+(2[0-3]|[0-1]\d|\d):([0-5]\d|\d):(6[0-1]|[0-5]\d|\d)"
)
"""What ``datetime.strptime(text, "%Y:%m:%d %H:%M:%S")`` accepts (its own patterns for these
fields; the date itself is checked by ``datetime``): the same results without importing
``_strptime`` (calendar, locale: ~2 ms of a cold start)."""


def _timestamp(value: object, offset: object) -> str | None:
    text = _text(value)
    if text is None or not text.strip("0: -"):
        return None  # absent, or a placeholder such as "0000:00:00 00:00:00"
    found = _EXIF_TIME.fullmatch(text)  # EXIF has no time zone
    from datetime import datetime  # noqa: PLC0415 - only files that carry a date (~1 ms)

    try:
        taken = datetime(*map(int, found.groups())) if found else None
    except ValueError:  # e.g. 2023:02:30
        taken = None
    if taken is None:
        return text
    zone = _text(offset)
    return taken.isoformat() + (zone if zone and _OFFSET.fullmatch(zone) else "")
