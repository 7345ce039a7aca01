"""Stages 1 and 3 in one pass for large JPEG and PNG sources: libvips decodes the first
frame and resamples it straight to the largest rendition, and only that small image comes back
as a Pillow image (:func:`largest_rendition`). Everything else -- small sources, other formats
and modes, animations, HEIF/AVIF, anything libvips stumbles on -- is decoded by Pillow as before.

What it saves against decoding with Pillow and resampling with libvips (``resize``): the
full-size copy handed across (``tobytes``), Pillow's premultiplication of a full-size RGBA image,
and, for a JPEG or an opaque PNG, the full-size image itself: the pixels stream from the decoder
through the filter a few rows at a time. Measured here, CPU ms per ``render()`` on one thread:
24 MP JPEG 112 -> 96, 12 MP RGBA PNG 484 -> 426, 12 MP JPEG 59 -> 60 (the same DCT scale; its
decode was already most of it). WebP stays with Pillow: libvips decodes it no faster (91 ms
against 82 for 4 MP), and its shrink-on-load (libwebp's own scaler) saves nothing unless it does
all of the shrinking, which costs the SSIM contract (0.983).

The result is the one Pillow's path gives, in kind and closely in value: the same DCT scale for a
JPEG (Pillow's ``draft()`` rule), the same Lanczos-3 filter and reducing gap, alpha premultiplied
to 8 bits for the filter as Pillow does, an alpha channel that is everywhere opaque dropped (checked
on the full image), EXIF orientation and ICC profile left for ``normalise.finish`` (the Pillow
image carries the header's ``info``). The header has been read and checked by Pillow already
(limits, frame table); libvips only ever sees a file Pillow accepted, and any libvips error or
warning (``fail_on="warning"``: stricter than Pillow) hands the file back to Pillow, whose verdict
stands.
"""

from __future__ import annotations

from PIL import Image, ImageFile

from media_pipeline.imaging import resize

_MODES = {"JPEG": ("L", "RGB"), "PNG": ("L", "LA", "RGB", "RGBA")}
"""Pillow modes of the header whose pixels libvips decodes to the same channels (8-bit; no
palette, no CMYK, no colour-key transparency)."""
_BANDS = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}
_PNG_BIT_DEPTH = 24  # offset of the IHDR bit depth (signature, chunk length, type, width, height)


def jpeg_scale(size: tuple[int, int], draft: tuple[int, int]) -> int:
    """The DCT scale denominator (1, 2, 4, 8) Pillow's ``draft(mode, draft)`` picks for a JPEG of
    ``size``."""
    scale = min(size[0] // draft[0], size[1] // draft[1])
    return next(s for s in (8, 4, 2, 1) if scale >= s)


def eligible(image: ImageFile.ImageFile, data: bytes, frames: int, draft: tuple[int, int]) -> bool:
    """Whether libvips takes this (opened, checked, not yet decoded) first frame."""
    modes = _MODES.get(image.format or "")
    if modes is None or image.mode not in modes or frames != 1 or "transparency" in image.info:
        return False
    if image.format == "PNG" and data[_PNG_BIT_DEPTH : _PNG_BIT_DEPTH + 1] != b"\x08":
        return False  # Pillow makes 8 bits of 16 its own way
    width, height = image.size
    if image.format == "JPEG":
        scale = jpeg_scale(image.size, draft)
        width, height = -(-width // scale), -(-height // scale)
        return width * height >= resize.VIPS_MIN_PIXELS  # streamed: no full-size image at all
    pixels = width * height
    return pixels >= resize.VIPS_MIN_PIXELS and (
        not image.mode.endswith("A") or pixels * _BANDS[image.mode] <= resize.VIPS_MAX_BYTES
    )


def largest_rendition(
    image: ImageFile.ImageFile, data: bytes, size: tuple[int, int], draft: tuple[int, int]
) -> Image.Image | None:
    """The first frame of ``data`` (opened as ``image``, which :func:`eligible` accepted)
    resampled to ``size`` (stored orientation), with the header's ``info``; None when libvips
    cannot decode it cleanly (Pillow then decodes it and judges)."""
    pyvips = resize._pyvips()
    options: dict[str, object] = {"fail_on": "warning"}
    alpha = image.mode.endswith("A")
    # An alpha channel is checked over the whole image before resampling: the decoded pixels stay
    # in memory (random access) for the two passes. Opaque images stream.
    options["access"] = "random" if alpha else "sequential"
    if image.format == "JPEG":
        options["shrink"] = jpeg_scale(image.size, draft)
    try:
        source = pyvips.Image.new_from_buffer(data, "", **options)
        if source.bands != _BANDS[image.mode] or source.format != "uchar":
            return None
        mode = image.mode
        if alpha:
            if source.extract_band(source.bands - 1).min() == 255:
                source, mode = source.extract_band(0, n=source.bands - 1), mode[:-1]
            else:
                # 8-bit premultiplied, as Pillow's RGBa: the filter runs on the fast uchar path
                source = source.premultiply().cast("uchar")
        out = resize.vips_resample(source, size)
        if mode != image.mode or not alpha:
            pixels = out.write_to_memory()
        else:
            pixels = out.unpremultiply().cast("uchar").write_to_memory()
    except pyvips.Error:
        return None
    resampled = Image.frombuffer(mode, size, pixels, "raw", mode, 0, 1)
    resampled.info = dict(image.info)
    return resampled
