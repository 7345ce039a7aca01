"""Near-duplicate pictures: a 128-bit perceptual hash per picture, its distance, the threshold,
and the bands an index finds candidates by without a scan.

The hash (:func:`perceptual_hash`) is two classic 64-bit hashes of the picture's luminance (upright,
transparency composited over white, as most tools flatten it), side by side:

* pHash: the 32x32 picture's 8x8 lowest DCT frequencies, each bit one coefficient above their
  median (as the ``imagehash`` library's ``phash``): the overall layout of light and dark;
* dHash: the 9x8 picture, each bit whether a pixel is brighter than its left neighbour: where the
  edges are.

Both are computed from the 64 px preview source ``render()`` makes anyway (a box filter to 32x32
and 9x8, then ~0.4 ms of arithmetic), so they survive what changes pixels but not the picture:
re-encoding (JPEG q60-q90, WebP, PNG), resizing, baking the EXIF orientation into the pixels
(the hash is of the upright picture), brightening, and -- less well -- a slight crop. The
distance is the Hamming distance over all 128 bits; :data:`THRESHOLD` is chosen by ``make
quality`` (``scripts/quality.py``), which measures recall on transformed copies of real photos
and false positives among different ones.

A picture with no detail (its 32x32 luminance spans fewer than :data:`FLAT_LEVELS` levels:
blank, a flat colour) has no meaningful hash: it gets :data:`FLAT_HASH`, which :func:`bands`
does not index (every blank upload would otherwise pile onto the same index keys).

Finding candidates without a scan (:func:`bands`): the 127 informative bits (the pHash's DC bit
is always 1) are dealt, in a fixed order that mixes both hashes and all frequencies, into
``count`` bands of equal width (12 bands of 10 bits by default, 7 bits left out). An index keyed
by ``(app, band number, band value)`` holds each picture under its 12 keys; a lookup reads the 12
keys of the new picture's hash and keeps the candidates within :data:`THRESHOLD`. Two hashes
within distance 11 always share a band (pigeonhole: 11 differing bits touch at most 11 of 12
bands); further apart, they usually still do when the differences cluster (measured by ``make
quality``). Unrelated pictures share a given 10-bit band with probability ~2^-10 if their bits
were uniform (higher in practice: ``make quality`` measures it), so a lookup reads about
``12 * N / 1024`` index entries for an app of N pictures, each band key holding ~N/1024 of them:
no hot key short of an app uploading one picture over and over.
"""

from __future__ import annotations

import math
from operator import add, mul, sub

from PIL import Image

HASH_BITS = 128
THRESHOLD = 24
"""Largest Hamming distance (of 128 bits) at which two pictures are the same picture, chosen
with ``make quality`` (recall on transformed copies >= 0.95, no false positive among different
photos)."""
FLAT_LEVELS = 4
FLAT_HASH = "0" * (HASH_BITS // 4)
"""The hash of a picture without detail: never indexed, a duplicate of other flat pictures only."""
BANDS = 12
"""Bands of :func:`bands` (10 bits each)."""
_PHASH_SIZE = 32
_PHASH_TERMS = 8
_DC_BIT = 0  # bit 0 (the most significant): the pHash's (0, 0) term, always above the median
_STRIDE = 41  # coprime with 128: bit i of the band order is bit (i * 41) % 128 of the hash


def perceptual_hash(image: Image.Image) -> str:
    """The 128-bit hash of a finished rendition (upright, sRGB; RGB, RGBA or L; the engine's 64
    px preview source), as 32 hex digits: pHash, then dHash."""
    grey = _luminance(image)
    square = grey.resize((_PHASH_SIZE, _PHASH_SIZE), Image.Resampling.BOX)
    low, high = square.getextrema()  # type: ignore[misc]
    if high - low < FLAT_LEVELS:
        return FLAT_HASH
    return f"{_phash(square):016x}{_dhash(grey):016x}"


def _luminance(image: Image.Image) -> Image.Image:
    if image.mode in ("RGBA", "LA"):
        white = Image.new("RGBA", image.size, (255, 255, 255, 255))
        white.alpha_composite(image.convert("RGBA"))
        image = white
    return image.convert("L")


def _phash(square: Image.Image) -> int:
    """64 bits: the 8x8 lowest DCT-II terms of a 32x32 L image, each above their median.

    Integer arithmetic (cosines scaled by 2^12 and rounded): exact, so the same bits on every
    machine and Python version; separable: all rows at once (:func:`_row_pass`), then the
    columns, folded on the basis' symmetry (even frequencies see ``a[x] + a[31 - x]``, odd ones
    ``a[x] - a[31 - x]``)."""
    columns = _row_pass(square.tobytes())  # [u][y]
    terms = [term for row in _fold_pass(columns) for term in row]  # [v][u], row by row
    ordered = sorted(terms)
    median = ordered[31] + ordered[32]  # twice the median: compare twice each term
    return _pack(2 * term > median for term in terms)


def _row_pass(data: bytes) -> list[list[int]]:
    """For each frequency u < 8, each row's DCT-II term u, of a 32x32 L image (``data``).

    All 32 rows at once (SWAR): column x is packed into one integer, a 32-bit field per row, and
    multiplied by the (shifted, non-negative) basis value of that column; the 32 products
    summed hold every row's sum in its own field (at most 255 * 8192 * 32 < 2^32: no carry
    between fields). 30 big-integer products per frequency instead of 32 sums of 32: 7x
    faster, and exactly the integers the plain sums give."""
    size = _PHASH_SIZE
    field = bytearray(4 * size)
    packed = []
    for x in range(size):
        field[0::4] = data[x::size]
        packed.append(int.from_bytes(field, "little"))
    # Each row's basis shift: 4096 * its pixel sum.
    offsets = [_SHIFT * total for total in _fields(sum(packed))]
    return [
        list(map(sub, _fields(sum(map(mul, packed, _SHIFTED_BASIS[u]))), offsets))
        for u in range(_PHASH_TERMS)
    ]


def _fields(value: int) -> list[int]:
    """The 32 unsigned 32-bit fields of ``value``, lowest first."""
    return memoryview(value.to_bytes(4 * _PHASH_SIZE, "little")).cast("I").tolist()


def _fold_pass(vectors: list[list[int]]) -> list[list[int]]:
    """For each frequency u < 8, each vector's DCT-II term u: ``[u][vector]``."""
    half = _PHASH_SIZE // 2
    out: list[list[int]] = [[] for _ in range(_PHASH_TERMS)]
    for vector in vectors:
        head, tail = vector[:half], vector[: half - 1 : -1]
        even, odd = list(map(add, head, tail)), list(map(sub, head, tail))
        for u in range(_PHASH_TERMS):
            out[u].append(sum(map(mul, odd if u % 2 else even, _INT_BASIS[u])))
    return out


_SHIFT = 4096
_SHIFTED_BASIS = [
    [round(math.cos(math.pi / _PHASH_SIZE * u * (x + 0.5)) * _SHIFT) + _SHIFT for x in range(32)]
    for u in range(_PHASH_TERMS)
]
"""The basis (cosines scaled by 2^12, rounded) plus 2^12: never negative, for the packed sums."""
_INT_BASIS = [
    [round(math.cos(math.pi / _PHASH_SIZE * u * (x + 0.5)) * 4096) for x in range(_PHASH_SIZE // 2)]
    for u in range(_PHASH_TERMS)
]


def _dhash(grey: Image.Image) -> int:
    """64 bits: per row of a 9x8 L image, whether each pixel is brighter than the one before."""
    data = grey.resize((9, 8), Image.Resampling.BOX).tobytes()
    return _pack(data[row * 9 + x + 1] > data[row * 9 + x] for row in range(8) for x in range(8))


def _pack(bits: object) -> int:
    value = 0
    for bit in bits:  # type: ignore[attr-defined]
        value = value << 1 | bool(bit)
    return value


def distance(first: str, second: str) -> int:
    """Hamming distance between two hashes of :func:`perceptual_hash` (0-128)."""
    return (int(first, 16) ^ int(second, 16)).bit_count()


def is_duplicate(first: str, second: str, threshold: int = THRESHOLD) -> bool:
    """Whether two hashes are of the same picture (re-encoded, resized, slightly cropped or
    brightened...): at most ``threshold`` bits apart. Two flat pictures are duplicates of each
    other and of nothing else."""
    if (first == FLAT_HASH) != (second == FLAT_HASH):
        return False
    return distance(first, second) <= threshold


def band_bits(count: int = BANDS) -> tuple[tuple[int, ...], ...]:
    """Which bits of the hash (0 = most significant) make each of ``count`` bands: the 127
    informative bits in the order ``i * 41 mod 128`` (alternating pHash and dHash, low and high
    frequencies, rows), dealt into ``count`` bands of ``127 // count`` bits."""
    order = [(i * _STRIDE) % HASH_BITS for i in range(HASH_BITS)]
    order = [bit for bit in order if bit != _DC_BIT]
    width = len(order) // count
    return tuple(tuple(order[band * width : (band + 1) * width]) for band in range(count))


def bands(hash_: str, count: int = BANDS) -> tuple[str, ...]:
    """The index keys of a hash within its app: ``"<band>:<value in hex>"``, one per band (none
    for :data:`FLAT_HASH`). A picture is a candidate duplicate of another if they share a key."""
    if hash_ == FLAT_HASH:
        return ()
    value = int(hash_, 16)
    keys = []
    for band, bits in enumerate(band_bits(count)):
        packed = _pack((value >> (HASH_BITS - 1 - bit)) & 1 for bit in bits)
        keys.append(f"{band}:{packed:0{(len(bits) + 3) // 4}x}")
    return tuple(keys)


def candidate_rate(count: int = BANDS) -> float:
    """The share of an app's unrelated pictures a lookup reads if hash bits were independent
    and uniform: ``count`` bands of ``w`` bits each match by chance with probability 2^-w."""
    width = len(band_bits(count)[0])
    return 1 - (1 - 2.0**-width) ** count


__all__ = [
    "BANDS",
    "FLAT_HASH",
    "HASH_BITS",
    "THRESHOLD",
    "band_bits",
    "bands",
    "candidate_rate",
    "distance",
    "is_duplicate",
    "perceptual_hash",
]
