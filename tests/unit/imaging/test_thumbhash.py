"""ThumbHash: the engine's encoder against the reference implementation's own output
(tests/data/thumbhash, made by scripts/thumbhash_vectors.py with Evan Wallace's npm package),
and decoded back (a port of the reference decoder, here) to the picture it came from."""

from __future__ import annotations

import base64
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
from media_pipeline import imaging
from media_pipeline.imaging import preview, thumbhash
from media_pipeline.imaging.engine import rendition_images
from PIL import Image, ImageFilter

VECTORS = Path(__file__).resolve().parents[2] / "data" / "thumbhash"
SAMPLES = Path(__file__).resolve().parents[3] / "samples"


def vectors() -> dict[str, dict[str, str]]:
    return json.loads((VECTORS / "vectors.json").read_text())["vectors"]


def picture(file: str) -> Image.Image:
    with Image.open(VECTORS / file) as image:
        image.load()
        return image


def decode(hash_: bytes) -> Image.Image:
    """The reference decoder (thumbHashToRGBA), ported: a 32 px RGBA picture."""
    header24 = hash_[0] | hash_[1] << 8 | hash_[2] << 16
    header16 = hash_[3] | hash_[4] << 8
    l_dc = (header24 & 63) / 63
    p_dc = ((header24 >> 6) & 63) / 31.5 - 1
    q_dc = ((header24 >> 12) & 63) / 31.5 - 1
    l_scale = ((header24 >> 18) & 31) / 31
    has_alpha = header24 >> 23
    p_scale = ((header16 >> 3) & 63) / 63
    q_scale = ((header16 >> 9) & 63) / 63
    landscape = header16 >> 15
    lx = max(3, (5 if has_alpha else 7) if landscape else header16 & 7)
    ly = max(3, header16 & 7 if landscape else (5 if has_alpha else 7))
    a_dc = (hash_[5] & 15) / 15 if has_alpha else 1.0
    a_scale = (hash_[5] >> 4) / 15 if has_alpha else 0.0
    start, index = (6 if has_alpha else 5), 0

    def channel(nx: int, ny: int, scale: float) -> list[float]:
        nonlocal index
        ac = []
        for cy in range(ny):
            cx = 0 if cy else 1
            while cx * ny < nx * (ny - cy):
                nibble = (hash_[start + (index >> 1)] >> ((index & 1) << 2)) & 15
                ac.append((nibble / 7.5 - 1) * scale)
                index += 1
                cx += 1
        return ac

    l_ac = channel(lx, ly, l_scale)
    p_ac = channel(3, 3, p_scale * 1.25)
    q_ac = channel(3, 3, q_scale * 1.25)
    a_ac = channel(5, 5, a_scale) if has_alpha else []
    ratio = aspect_ratio(hash_)
    width = math.floor((32 if ratio > 1 else 32 * ratio) + 0.5)
    height = math.floor((32 / ratio if ratio > 1 else 32) + 0.5)
    out = bytearray()
    for y in range(height):
        fy = [math.cos(math.pi / height * (y + 0.5) * c) for c in range(max(ly, 5))]
        for x in range(width):
            fx = [math.cos(math.pi / width * (x + 0.5) * c) for c in range(max(lx, 5))]
            lum, p, q, a = l_dc, p_dc, q_dc, a_dc
            j = 0
            for cy in range(ly):
                cx = 0 if cy else 1
                while cx * ly < lx * (ly - cy):
                    lum += l_ac[j] * fx[cx] * fy[cy] * 2
                    j += 1
                    cx += 1
            j = 0
            for cy in range(3):
                for cx in range(0 if cy else 1, 3 - cy):
                    f = fx[cx] * fy[cy] * 2
                    p += p_ac[j] * f
                    q += q_ac[j] * f
                    j += 1
            if has_alpha:
                j = 0
                for cy in range(5):
                    for cx in range(0 if cy else 1, 5 - cy):
                        a += a_ac[j] * fx[cx] * fy[cy] * 2
                        j += 1
            b = lum - 2 / 3 * p
            r = (3 * lum - b + q) / 2
            g = r - q
            out.extend(int(max(0.0, 255 * min(1.0, v))) for v in (r, g, b, a))
    return Image.frombytes("RGBA", (width, height), bytes(out))


def aspect_ratio(hash_: bytes) -> float:
    """thumbHashToApproximateAspectRatio."""
    has_alpha, landscape = hash_[2] & 0x80, hash_[4] & 0x80
    lx = (5 if has_alpha else 7) if landscape else hash_[3] & 7
    ly = hash_[3] & 7 if landscape else (5 if has_alpha else 7)
    return lx / ly


def nibbles(hash_: bytes, start: int) -> list[int]:
    return [n for byte in hash_[start:] for n in (byte & 15, byte >> 4)]


def channel_nibbles(hash_: bytes) -> list[tuple[int, list[int]]]:
    """(quantised scale, AC nibbles) of each channel: L, P, Q and, with alpha, A."""
    header24 = hash_[0] | hash_[1] << 8 | hash_[2] << 16
    header16 = hash_[3] | hash_[4] << 8
    has_alpha, landscape = header24 >> 23, header16 >> 15
    lx = max(3, (5 if has_alpha else 7) if landscape else header16 & 7)
    ly = max(3, header16 & 7 if landscape else (5 if has_alpha else 7))

    def count(nx: int, ny: int) -> int:
        return sum(1 for cy in range(ny) for cx in range(nx) if cx * ny < nx * (ny - cy)) - 1

    scales = [(header24 >> 18) & 31, (header16 >> 3) & 63, (header16 >> 9) & 63]
    counts = [count(lx, ly), count(3, 3), count(3, 3)]
    if has_alpha:
        scales.append(hash_[5] >> 4)
        counts.append(count(5, 5))
    values = nibbles(hash_, 6 if has_alpha else 5)
    out, start = [], 0
    for scale, n in zip(scales, counts, strict=True):
        out.append((scale, values[start : start + n]))
        start += n
    return out


@pytest.mark.parametrize("name", sorted(vectors()))
def test_the_encoder_writes_what_the_reference_encoder_writes(name: str) -> None:
    """Bit for bit on every photo. Drawn pictures may have coefficients that are zero in exact
    arithmetic (a stripe whose rows are all the same, a flat channel): each encoder then
    quantises its own floating-point noise, and the reference's answer is as arbitrary as ours.
    Only those may differ: a term at 0.5 +- 1e-16 (nibble 7 or 8), or any term of a channel
    that is flat (its scale quantised to 0: the decoder multiplies it by 0). Never the header."""
    vector = vectors()[name]
    ours = thumbhash.encode(picture(vector["file"]))
    reference = base64.b64decode(vector["thumbhash"])
    if name.startswith("sample-"):
        assert ours == reference
        return
    assert len(ours) == len(reference)
    header = 6 if reference[2] & 0x80 else 5
    assert ours[:header] == reference[:header]
    for (scale, mine), (_, theirs) in zip(
        channel_nibbles(ours), channel_nibbles(reference), strict=True
    ):
        for a, b in zip(mine, theirs, strict=True):
            assert a == b or scale == 0 or {a, b} == {7, 8}


@pytest.mark.parametrize("name", sorted(vectors()))
def test_the_ported_decoder_draws_what_the_reference_decoder_draws(name: str) -> None:
    """The test's decoder is checked too, against the reference's pictures."""
    vector = vectors()[name]
    ours = np.asarray(decode(base64.b64decode(vector["thumbhash"])), dtype=int)
    theirs = np.asarray(picture(vector["decoded"]), dtype=int)
    assert ours.shape == theirs.shape
    assert np.abs(ours - theirs).max() <= 1


def colour_error(picture_: Image.Image, drawn: Image.Image) -> float:
    """Mean error per colour channel (weighted by opacity) of a drawn placeholder against the
    picture at its size, blurred as a placeholder is."""
    width, height = drawn.size
    expected = picture_.convert("RGBA").resize(drawn.size, Image.Resampling.BOX)
    expected = expected.filter(ImageFilter.GaussianBlur(max(width, height) / 10))
    error = np.abs(np.asarray(drawn, dtype=float) - np.asarray(expected, dtype=float))
    alpha = np.asarray(expected, dtype=float)[..., 3:] / 255
    return float((error[..., :3] * alpha).sum() / max(alpha.sum() * 3, 1))


@pytest.mark.parametrize("name", sorted(vectors()))
def test_a_hash_decodes_to_its_picture_closer_than_any_other_hash(name: str) -> None:
    """Round trip of what the engine encodes (``thumbhash.source``: a 1x1 picture is enlarged
    so that its frequencies do not alias): the aspect ratio (ThumbHash keeps 1:7 to 7:1),
    whether there is transparency, and the colours -- nearer this picture than the drawing of
    any other vector's hash is."""
    original = picture(vectors()[name]["file"])
    hash_ = thumbhash.encode(thumbhash.source(original))
    drawn = decode(hash_)
    shape = min(max(original.width / original.height, 1 / 7), 7)
    assert aspect_ratio(hash_) == pytest.approx(shape, rel=0.35)
    transparent = original.convert("RGBA").getchannel("A").getextrema()[0] < 255
    assert bool(hash_[2] & 0x80) == transparent
    own = colour_error(original, drawn)
    assert own < 35, f"mean colour error {own:.1f}"
    for other, vector in vectors().items():
        if other != name:
            theirs = decode(thumbhash.encode(thumbhash.source(picture(vector["file"]))))
            assert colour_error(original, theirs) > own, other


def test_tiny_pictures_are_enlarged_before_encoding_and_keep_their_shape() -> None:
    for size in ((1, 1), (2, 2), (64, 1), (1, 64), (5, 4), (100, 3)):
        image = Image.new("RGB", size, (10, 120, 200))
        prepared = thumbhash.source(image)
        assert max(prepared.size) <= thumbhash.MAX_EDGE
        assert thumbhash._terms(*prepared.size, 7) == thumbhash._terms(*size, 7)  # its shape
        assert min(prepared.size) >= 3
        rgb = decode(thumbhash.encode(prepared)).convert("RGB").getpixel((0, 0))
        assert all(abs(a - b) <= 12 for a, b in zip(rgb, (10, 120, 200), strict=True)), size


def test_render_returns_the_thumbhash_of_its_preview_source() -> None:
    for path in sorted(SAMPLES.iterdir()):
        data = path.read_bytes()
        outcome = imaging.render(data)
        if isinstance(outcome, imaging.Rejected):
            continue
        specs = (*imaging.DEFAULT_RENDITIONS, imaging.RenditionSpec("p", preview.SOURCE_EDGE))
        result = rendition_images(data, specs)
        assert not isinstance(result, imaging.Rejected)
        expected = thumbhash.encode_base64(thumbhash.source(result[1][-1]))
        assert outcome.features.thumbhash == expected, path.name
        assert 5 <= len(base64.b64decode(expected)) <= 40


def test_pictures_over_100_px_are_refused() -> None:
    with pytest.raises(ValueError, match="100x100"):
        thumbhash.encode(Image.new("RGB", (101, 10)))


def test_encoding_is_deterministic() -> None:
    image = picture(vectors()["sample-transparent"]["file"])
    assert thumbhash.encode(image) == thumbhash.encode(image.copy())
    assert io.BytesIO(thumbhash.encode(image)).getvalue() == thumbhash.encode(image)
