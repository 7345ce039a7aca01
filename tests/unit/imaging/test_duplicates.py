"""The perceptual hash: what it is (pHash and dHash, checked against a plain numpy version),
what it survives (copies of the samples made as scripts/quality.py makes them), what it tells
apart, and the index bands (pigeonhole: close hashes always share one)."""

from __future__ import annotations

import importlib.util
import itertools
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from media_pipeline import imaging
from media_pipeline.imaging import duplicates, preview
from media_pipeline.imaging.engine import rendition_images
from PIL import Image

ROOT = Path(__file__).resolve().parents[3]
SAMPLES = ROOT / "samples"
_spec = importlib.util.spec_from_file_location("quality_script", ROOT / "scripts" / "quality.py")
quality = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(quality)

PHOTOS = (
    "landscape-exif-rotated.jpg",
    "portrait-exif-rotated.jpg",
    "flower.webp",
    "transparent.png",
    "iphone-style.heif",
)
"""The samples that are photographs (animated.gif and cmyk.jpg are drawings: a patch, a word)."""


def preview_source(data: bytes) -> Image.Image:
    specs = (*imaging.DEFAULT_RENDITIONS, imaging.RenditionSpec("p", preview.SOURCE_EDGE))
    result = rendition_images(data, specs)
    assert not isinstance(result, imaging.Rejected)
    return result[1][-1]


def reference_hash(image: Image.Image) -> str:
    """pHash (imagehash's definition: DCT-II of the 32x32 greyscale, 8x8 lowest terms above
    their median) and dHash, in floating point with numpy: what the engine's integer version
    must agree with."""
    if image.mode == "RGBA":
        white = Image.new("RGBA", image.size, (255, 255, 255, 255))
        white.alpha_composite(image)
        image = white
    grey = image.convert("L")
    pixels = np.asarray(grey.resize((32, 32), Image.Resampling.BOX), dtype=float)
    k, x = np.arange(8)[:, None], np.arange(32)[None, :]
    basis = np.cos(np.pi / 32 * k * (x + 0.5))
    terms = (basis @ pixels @ basis.T).flatten()
    phash = terms > np.median(terms)
    small = np.asarray(grey.resize((9, 8), Image.Resampling.BOX), dtype=int)
    dhash = (small[:, 1:] > small[:, :-1]).flatten()
    bits = "".join("1" if b else "0" for b in (*phash, *dhash))
    return f"{int(bits, 2):032x}"


@pytest.mark.parametrize("name", PHOTOS)
def test_the_hash_is_phash_and_dhash_of_the_preview_source(name: str) -> None:
    data = (SAMPLES / name).read_bytes()
    outcome = imaging.render(data)
    assert isinstance(outcome, imaging.Rendered)
    assert outcome.features.perceptual_hash == reference_hash(preview_source(data))
    assert len(outcome.features.perceptual_hash) == 32


@pytest.mark.parametrize("name", PHOTOS)
@pytest.mark.parametrize(
    "transform",
    ["jpeg-q60", "webp-q80", "resize-25%", "exif-rotated", "crop-5%", "bright+15%"],
)
def test_a_copy_of_a_photo_is_its_duplicate(name: str, transform: str) -> None:
    data = (SAMPLES / name).read_bytes()
    copy = quality.TRANSFORMS[transform](quality.upright(data))
    original_hash, copy_hash = quality.hash_of(data), quality.hash_of(copy)
    assert duplicates.is_duplicate(original_hash, copy_hash), duplicates.distance(
        original_hash, copy_hash
    )


def test_different_samples_are_not_duplicates() -> None:
    hashes = {
        path.name: quality.hash_of(path.read_bytes())
        for path in sorted(SAMPLES.iterdir())
        if isinstance(imaging.render(path.read_bytes(), ()), imaging.Rendered)
    }
    assert len(hashes) == 7
    for (a, first), (b, second) in itertools.combinations(hashes.items(), 2):
        assert not duplicates.is_duplicate(first, second), (a, b)
        assert duplicates.distance(first, second) > 2 * duplicates.THRESHOLD // 3, (a, b)


def test_a_picture_without_detail_is_not_indexed() -> None:
    flat = Image.new("RGB", (64, 40), (90, 90, 90))
    assert duplicates.perceptual_hash(flat) == duplicates.FLAT_HASH
    assert duplicates.bands(duplicates.FLAT_HASH) == ()
    photo = quality.hash_of((SAMPLES / "flower.webp").read_bytes())
    assert not duplicates.is_duplicate(duplicates.FLAT_HASH, photo)
    assert not duplicates.is_duplicate(photo, duplicates.FLAT_HASH, threshold=128)
    assert duplicates.is_duplicate(duplicates.FLAT_HASH, duplicates.FLAT_HASH)


def test_the_bands_deal_every_informative_bit_once() -> None:
    for count in (8, 10, 12, 16):
        bands = duplicates.band_bits(count)
        assert len(bands) == count
        bits = [bit for band in bands for bit in band]
        assert len(set(bits)) == len(bits) == count * (127 // count)
        assert 0 not in bits  # the pHash's DC bit: always 1
        assert {len(band) for band in bands} == {127 // count}


hashes = st.integers(0, 2**128 - 1).map(lambda v: f"{v:032x}")


@settings(max_examples=300, deadline=None)
@given(hashes, st.sets(st.integers(0, 127), max_size=duplicates.BANDS - 1))
def test_hashes_within_bands_minus_one_bits_always_share_a_band(hash_, flips) -> None:
    """Pigeonhole: d differing bits touch at most d bands, so with d < BANDS one band of the
    two hashes is the same, and the index finds the pair."""
    other = f"{int(hash_, 16) ^ sum(1 << (127 - bit) for bit in flips):032x}"
    if duplicates.FLAT_HASH in (hash_, other):
        return
    assert set(duplicates.bands(hash_)) & set(duplicates.bands(other))


def test_bands_are_keys_of_their_band_and_value() -> None:
    hash_ = quality.hash_of((SAMPLES / "flower.webp").read_bytes())
    keys = duplicates.bands(hash_)
    assert [key.split(":")[0] for key in keys] == [str(i) for i in range(duplicates.BANDS)]
    value = int(hash_, 16)
    for key, bits in zip(keys, duplicates.band_bits(), strict=True):
        expected = "".join(str((value >> (127 - bit)) & 1) for bit in bits)
        assert int(key.split(":")[1], 16) == int(expected, 2)
    flipped = f"{value ^ (1 << (127 - duplicates.band_bits()[3][0])):032x}"
    assert sum(a != b for a, b in zip(keys, duplicates.bands(flipped), strict=True)) == 1


def test_distance_is_a_hamming_distance() -> None:
    a, b = "0" * 31 + "f", "f" + "0" * 30 + "e"
    assert duplicates.distance(a, a) == 0
    assert duplicates.distance(a, b) == duplicates.distance(b, a) == 5
    assert duplicates.candidate_rate(12) == pytest.approx(12 / 1024, rel=0.01)
