"""ThumbHash (Evan Wallace, https://evanw.github.io/thumbhash/): a ~25-35 byte description of a
picture from which an app draws a blurred placeholder that keeps the picture's aspect ratio,
its average colour and its transparency -- beside the engine's WebP placeholder, for apps that
decode ThumbHash themselves (there are decoders for JS, Swift, Kotlin, Rust...).

Written from the format's description and its reference encoder (``rgbaToThumbHash``): the
picture (at most 100x100) is composited over its own average colour, turned into luminance
``L = (r + g + b) / 3``, ``P = (r + g) / 2 - b`` (yellow-blue), ``Q = r - g`` (red-green) and
alpha, and each channel's lowest DCT coefficients are kept: a 7x7 triangle of L (5x5 with
alpha), 3x3 of P and Q, 5x5 of alpha; DC terms and scales in a 5- or 6-byte header, every AC
term as a 4-bit nibble. Rounding is JavaScript's ``Math.round`` (half up), as the reference's.

The encoder sums each coefficient row by row (a separable DCT) where the reference sums pixel by
pixel: the same value to ~1e-15, which changes a nibble only if a value falls that close to a
rounding boundary. ``tests/unit/imaging/test_thumbhash.py`` holds it to the reference's own
output on fixed pictures and decodes it back.

The engine encodes the 64 px preview source box-reduced to at most :data:`EDGE` px: ThumbHash
keeps 7 frequencies at most, which 32 px still carry, at a quarter of the arithmetic.
"""

from __future__ import annotations

import base64
import functools
import math
from collections.abc import Iterable
from functools import reduce
from itertools import repeat
from operator import add, mul, sub, truediv

from PIL import Image

MAX_EDGE = 100
"""ThumbHash's own limit on the encoded picture."""
EDGE = 32
"""The engine encodes its preview source reduced to at most this many pixels a side."""

_ALPHA = [a / 255 for a in range(256)]
_ALPHA_255 = [a / 255 / 255 for a in range(256)]  # the reference's alpha / 255 * channel


def _js_round(value: float) -> int:
    """JavaScript's Math.round: halves go up (Python's round() goes to even)."""
    return math.floor(value + 0.5)


def _total(values: Iterable[float]) -> float:
    """A plain left-to-right float sum, as the reference's loops (``sum()`` compensates its
    rounding from Python 3.12 on: the same to ~1e-16, and 3x slower in this form, so only where
    the reference's exact sums decide: the average colour)."""
    return reduce(add, values, 0.0)


@functools.cache
def _basis(size: int, frequency: int) -> tuple[float, ...]:
    return tuple(math.cos(math.pi / size * frequency * (i + 0.5)) for i in range(size))


def source(image: Image.Image) -> Image.Image:
    """The picture the engine encodes: ``image`` box-reduced to at most :data:`EDGE` px a side,
    or, if it is tinier than the frequencies ThumbHash keeps for its shape (a 1x1 GIF, a 64x1
    line), enlarged (nearest neighbour) just enough that they do not alias: the reference
    encoder takes any size, and draws noise from a 1 px image's "7 frequencies"."""
    factor = math.ceil(max(image.size) / EDGE)
    if factor > 1:
        image = image.reduce(factor)
    width, height = image.size
    lx, ly = _terms(width, height, 7)
    needed = (max(width, 3, lx), max(height, 3, ly))
    if needed != (width, height):
        image = image.resize(needed, Image.Resampling.NEAREST)
    return image


def _terms(width: int, height: int, limit: int) -> tuple[int, int]:
    """Luminance terms across and down for a picture of this shape (``limit`` on the longer)."""
    longest = max(width, height)
    return (
        max(1, _js_round(limit * width / longest)),
        max(1, _js_round(limit * height / longest)),
    )


def encode(image: Image.Image) -> bytes:
    """The ThumbHash of ``image`` (any mode Pillow converts to RGBA; at most 100x100)."""
    width, height = image.size
    if width > MAX_EDGE or height > MAX_EDGE:
        raise ValueError(f"{width}x{height} does not fit in {MAX_EDGE}x{MAX_EDGE}")
    rgba = image.convert("RGBA").tobytes()
    red, green, blue, alpha_bytes = rgba[0::4], rgba[1::4], rgba[2::4], rgba[3::4]
    count = width * height

    # The average colour, weighted by alpha.
    weights = list(map(_ALPHA_255.__getitem__, alpha_bytes))
    avg_a = _total(map(_ALPHA.__getitem__, alpha_bytes))
    avg_r, avg_g, avg_b = (_total(map(mul, weights, channel)) for channel in (red, green, blue))
    if avg_a:
        avg_r, avg_g, avg_b = avg_r / avg_a, avg_g / avg_a, avg_b / avg_a

    has_alpha = avg_a < count
    l_limit = 5 if has_alpha else 7  # fewer luminance terms when alpha needs the bytes
    lx, ly = _terms(width, height, l_limit)

    # RGBA to LPQA, composited over the average colour.
    alpha = list(map(_ALPHA.__getitem__, alpha_bytes))
    behind = [1 - a for a in alpha]

    def composite(average: float, channel: bytes) -> list[float]:
        if not has_alpha:  # average * (1 - 1) + weight * value, exactly
            return list(map(mul, weights, channel))
        return list(map(add, map(mul, repeat(average), behind), map(mul, weights, channel)))

    r, g, b = composite(avg_r, red), composite(avg_g, green), composite(avg_b, blue)
    luma = list(map(truediv, map(add, map(add, r, g), b), repeat(3)))
    yellow_blue = list(map(sub, map(truediv, map(add, r, g), repeat(2)), b))
    red_green = list(map(sub, r, g))

    rows = (width, height)
    l_dc, l_ac, l_scale = _channel(luma, rows, max(3, lx), max(3, ly))
    p_dc, p_ac, p_scale = _channel(yellow_blue, rows, 3, 3)
    q_dc, q_ac, q_scale = _channel(red_green, rows, 3, 3)
    channels = [l_ac, p_ac, q_ac]

    landscape = width > height
    header24 = (
        _js_round(63 * l_dc)
        | _js_round(31.5 + 31.5 * p_dc) << 6
        | _js_round(31.5 + 31.5 * q_dc) << 12
        | _js_round(31 * l_scale) << 18
        | int(has_alpha) << 23
    )
    header16 = (
        (ly if landscape else lx)
        | _js_round(63 * p_scale) << 3
        | _js_round(63 * q_scale) << 9
        | int(landscape) << 15
    )
    out = [header24 & 255, (header24 >> 8) & 255, header24 >> 16, header16 & 255, header16 >> 8]
    if has_alpha:
        a_dc, a_ac, a_scale = _channel(alpha, rows, 5, 5)
        out.append(_js_round(15 * a_dc) | _js_round(15 * a_scale) << 4)
        channels.append(a_ac)
    nibbles = [_js_round(15 * f) for ac in channels for f in ac]
    if len(nibbles) % 2:
        nibbles.append(0)
    out.extend(low | high << 4 for low, high in zip(nibbles[0::2], nibbles[1::2], strict=True))
    return bytes(out)


def encode_base64(image: Image.Image) -> str:
    """:func:`encode` as base64 (standard alphabet, padded), the way apps pass it around."""
    return base64.b64encode(encode(image)).decode("ascii")


def _channel(
    values: list[float], size: tuple[int, int], nx: int, ny: int
) -> tuple[float, list[float], float]:
    """DC term, AC terms normalised to 0-1 and their scale, of the DCT of one channel: the terms
    with ``cx * ny < nx * (ny - cy)`` (a triangle), row (cy) by row."""
    width, height = size
    rows = [values[y * width : (y + 1) * width] for y in range(height)]
    # Per horizontal frequency, each row's sum against it: the 2-D sums are then one short
    # sum per term (separable DCT).
    horizontal = []
    for cx in range(nx):
        basis = _basis(width, cx)
        horizontal.append([sum(map(mul, row, basis)) for row in rows])
    dc, ac = 0.0, []
    for cy in range(ny):
        basis = _basis(height, cy)
        cx = 0
        while cx * ny < nx * (ny - cy):
            f = sum(map(mul, horizontal[cx], basis)) / (width * height)
            if cx or cy:
                ac.append(f)
            else:
                dc = f
            cx += 1
    scale = max(map(abs, ac), default=0.0)
    if scale:
        ac = [0.5 + 0.5 / scale * f for f in ac]
    return dc, ac, scale
