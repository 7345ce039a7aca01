"""What an app shows before a rendition has loaded: a tiny inline placeholder (LQIP) and the
dominant colour, both of the upright, sRGB first frame. :func:`media_pipeline.imaging.render`
makes their source as one more rendition of ``SOURCE_EDGE`` at the end of its chain (from the
smallest rendition at least that large: a fraction of a millisecond), so the metadata path never
decodes pixels for them.
"""

from __future__ import annotations

import base64
import io
from typing import Any

from PIL import Image

from media_pipeline.imaging.resize import fit, shrink

PLACEHOLDER_EDGE = 24
"""Longest edge (px) of the placeholder: enough for a blurred preview scaled up by the app."""
PLACEHOLDER_QUALITY = 60
PLACEHOLDER_METHOD = 4
"""libwebp effort. 6 saved 4 bytes of ~100 for 1.5 ms per image and ~15 ms more on the first
(measured here): not worth it at 24 px."""
SOURCE_EDGE = 64
"""Both are made from one image of this size (colours are counted on it)."""
_PALETTE = 8  # colours the picture is reduced to before the most common one is taken
_OPAQUE = 128  # pixels at least this opaque count towards the dominant colour


def preview(small: Image.Image) -> dict[str, Any]:
    """``placeholder`` (a ``data:image/webp;base64,...`` URI of at most 24 px on the longest
    side; transparency kept) and ``dominant_color`` (``"#rrggbb"``, None when the image is
    entirely transparent) of the first frame, given as a finished rendition of ``SOURCE_EDGE``
    (upright, sRGB, 8-bit)."""
    tiny = shrink(small, fit(small.size, PLACEHOLDER_EDGE))
    buffer = io.BytesIO()
    tiny.save(buffer, "WEBP", quality=PLACEHOLDER_QUALITY, method=PLACEHOLDER_METHOD)
    return {
        "placeholder": "data:image/webp;base64," + base64.b64encode(buffer.getvalue()).decode(),
        "dominant_color": dominant_color(small),
    }


def dominant_color(image: Image.Image) -> str | None:
    """The most common colour of an RGB, RGBA or L image once reduced to a few colours
    (median cut), counting only mostly opaque pixels."""
    mask = None
    if image.mode == "RGBA":
        mask = image.getchannel("A").point(lambda alpha: 255 if alpha >= _OPAQUE else 0)
        if mask.getextrema()[1] == 0:
            return None
    quantized = image.convert("RGB").quantize(_PALETTE, method=Image.Quantize.MEDIANCUT)
    counts = quantized.histogram(mask)
    index = max(range(len(counts)), key=counts.__getitem__)
    palette = quantized.getpalette() or []
    red, green, blue = palette[3 * index : 3 * index + 3]
    return f"#{red:02x}{green:02x}{blue:02x}"
