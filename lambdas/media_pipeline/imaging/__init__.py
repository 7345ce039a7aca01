"""The image engine: plain functions of bytes, shared by the renditions and metadata workers.

No AWS, no environment, no logging set-up. Stages of :func:`render`:

1. decode (``decode``): byte limit, then Pillow identifies the format (only JPEG/MPO, PNG/APNG,
   GIF, WebP, TIFF, BMP, ICO, AVIF, HEIF), header pixel limit, then the first frame is decoded
   once, with Pillow's decompression-bomb guard set to the same limit; JPEG is decoded at the
   smallest DCT scale that still covers the largest rendition. Large 8-bit JPEG and PNG sources
   (``streamed``) are decoded by libvips instead, straight into the largest rendition's filter,
   and only that rendition comes back to Pillow.
2. normalise (``normalise``): palettes and colour-key transparency to real alpha, unused alpha
   dropped; after the first resize: 16-bit to 8-bit, CMYK and ICC profiles to sRGB, EXIF
   orientation applied.
3. renditions (``resize``): LANCZOS (after an integer reduce() for big factors), largest
   first, each smaller one from the previous one; big ones in two strips on two threads.
4. encode (``encode``): JPEG when opaque, WebP (or PNG) when transparency is in use; no
   metadata. Each rendition is encoded on a worker thread while the next one is resampled.

:func:`render` also makes the placeholder and dominant colour (``preview``) from one more, 64 px
step at the end of its chain, and from the same small picture what ``Rendered.features`` holds
(issue 20): the point of interest (``crops``), a ThumbHash (``thumbhash``) and a perceptual hash
for near-duplicates (``duplicates``). Specs with an aspect ratio are cropped renditions
(``crops``), cut from the smallest full-picture rendition large enough, around the focal point.

:func:`describe` is the metadata record (``metadata``) from the header and a hash alone:
limits, identification, frame table, EXIF, ICC, no pixel decoded. Input that cannot be rendered
is a :class:`Rejected` outcome (corrupt, unsupported, too_large), never an exception.
``engine.rendition_images`` returns the renditions before encoding (for tests).
"""

from media_pipeline.imaging.engine import describe, render
from media_pipeline.imaging.features import CropBox, Features, Focus
from media_pipeline.imaging.model import (
    DEFAULT_RENDITIONS,
    EncodeOptions,
    ImageInfo,
    Limits,
    Produced,
    Rejected,
    Rendered,
    Rendition,
    RenditionSpec,
)

__all__ = [
    "DEFAULT_RENDITIONS",
    "CropBox",
    "EncodeOptions",
    "Features",
    "Focus",
    "ImageInfo",
    "Limits",
    "Produced",
    "Rejected",
    "Rendered",
    "Rendition",
    "RenditionSpec",
    "describe",
    "render",
]
