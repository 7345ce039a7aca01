"""Pixels: the fast path (JPEG draft, reduce, chained renditions, colour work on small images)
looks like the slow, obviously right one, and colours come out in sRGB, 8-bit."""

from __future__ import annotations

import io

import numpy as np
import pytest
from media_pipeline import imaging
from media_pipeline.imaging.engine import rendition_images
from PIL import Image, ImageCms
from skimage.metrics import structural_similarity

from tests.unit.imaging.imaging_support import (
    decoded,
    encoded,
    flatten,
    photo_like,
    reference_rendition,
)

SSIM_MIN = 0.99


def ssim(image: Image.Image, reference: Image.Image) -> float:
    assert image.size == reference.size
    assert image.mode == reference.mode
    a, b = np.asarray(flatten(image)), np.asarray(flatten(reference))
    window = min(7, *a.shape[:2])
    window -= 1 - window % 2  # SSIM's window: odd, at most the image's smaller side
    if window < 3:  # a 1 or 2 px wide image: no statistics to compare, only the pixels
        return 1.0 if np.array_equal(a, b) else 0.0
    return float(structural_similarity(a, b, channel_axis=2, data_range=255, win_size=window))


def assert_like_reference(data: bytes, specs=imaging.DEFAULT_RENDITIONS) -> None:
    result = rendition_images(data, specs)
    assert not isinstance(result, imaging.Rejected), result
    _, images = result
    for spec, image in zip(specs, images, strict=True):
        score = ssim(image, reference_rendition(data, image.size))
        assert score >= SSIM_MIN, f"{spec.name} {image.size}: SSIM {score:.4f}"


def test_renditions_look_like_a_single_lanczos_resize_of_the_full_image(
    render_row, corpus_bytes
) -> None:
    """Every corpus file that renders, every rendition."""
    assert_like_reference(corpus_bytes(render_row.file))


def test_12mp_jpeg_renditions_look_like_a_single_lanczos_resize(photo_12mp_jpeg: bytes) -> None:
    """The fast path at its fastest: DCT-scaled decode (1/2), reduce, strips, chain."""
    assert_like_reference(photo_12mp_jpeg)


def test_jpeg_is_not_decoded_at_a_scale_that_leaves_too_little_to_filter() -> None:
    """A 3000x2000 (6 MP camera) JPEG at 1/2 DCT scale would leave LANCZOS a factor of only
    1.46 to 1024 px, too little to average out what DCT scaling aliases (SSIM 0.988)."""
    assert_like_reference(encoded(photo_like(3000, 2000, seed=1), "JPEG", quality=90))


@pytest.mark.parametrize("edge", [1000, 300, 100, 40])
def test_big_shrink_factors_look_like_a_single_lanczos_resize(edge: int) -> None:
    """One spec at a time, straight from the decoded image: reduce() by large integer factors
    (JPEG draft off: PNG) with premultiplied alpha and threaded strips."""
    image = photo_like(2400, 1600, seed=3).convert("RGBA")
    image.putalpha(Image.linear_gradient("L").resize(image.size))
    data = encoded(image, "PNG", compress_level=1)

    assert_like_reference(data, (imaging.RenditionSpec("only", edge),))


def test_cmyk_comes_out_as_the_rgb_original(rendered_ok) -> None:
    """pil_sample_cmyk.jpg (Adobe inverted CMYK JPEG) and tiff_strip_cmyk_jpeg.tif are the same
    picture as pil_sample_rgb.jpg, separated to CMYK."""
    expected = np.asarray(decoded(rendered_ok("pillow/pil_sample_rgb.jpg").renditions[0]), float)

    for name in ("pillow/pil_sample_cmyk.jpg", "pillow/tiff_strip_cmyk_jpeg.tif"):
        image = decoded(rendered_ok(name).renditions[0])
        assert image.mode == "RGB"
        difference = np.abs(np.asarray(image, float) - expected)
        assert difference.mean() < 8, f"{name}: mean abs difference {difference.mean():.1f}"
        assert np.abs(difference.mean(axis=(0, 1))).max() < 10


@pytest.mark.parametrize(
    ("cmyk", "rgb"),
    [((255, 0, 0, 0), (0, 255, 255)), ((0, 255, 255, 0), (255, 0, 0)), ((0, 0, 0, 0), (255,) * 3)],
)
def test_cmyk_jpeg_ink_is_not_inverted(cmyk: tuple, rgb: tuple) -> None:
    """Pillow writes CMYK JPEGs the Adobe way (inverted); the colours must still be right."""
    data = encoded(Image.new("CMYK", (64, 48), cmyk), "JPEG", quality=95)

    result = imaging.render(data)

    assert isinstance(result, imaging.Rendered)
    pixel = decoded(result.renditions[0]).getpixel((32, 24))
    assert max(abs(a - b) for a, b in zip(pixel, rgb, strict=True)) < 12, pixel


def test_embedded_icc_profile_is_converted_to_srgb(corpus_dir, rendered_ok) -> None:
    """Independent reference: ImageCms on the full image, then a resize."""
    rendition = decoded(rendered_ok("pillow/icc_profile_big.jpg").renditions[2])
    with Image.open(corpus_dir / "pillow/icc_profile_big.jpg") as source:
        source.load()
        profile = ImageCms.ImageCmsProfile(io.BytesIO(source.info["icc_profile"]))
        srgb = ImageCms.profileToProfile(source, profile, ImageCms.createProfile("sRGB"))
        unconverted = source.resize(rendition.size, Image.Resampling.LANCZOS)
    expected = srgb.resize(rendition.size, Image.Resampling.LANCZOS)

    got = np.asarray(rendition, float)
    assert np.abs(got - np.asarray(expected, float)).mean() < 3
    assert np.abs(got - np.asarray(unconverted, float)).mean() > 6  # the profile matters here


def test_icc_conversion_keeps_transparency(corpus_bytes) -> None:
    """An RGBA PNG carrying a non-sRGB profile: converted, and its alpha survives."""
    profile = Image.open(io.BytesIO(corpus_bytes("pillow/icc_profile_big.jpg"))).info["icc_profile"]
    with Image.open(io.BytesIO(corpus_bytes("pillow/transparent.png"))) as source:
        plain = source.convert("RGBA")
    tagged = encoded(plain, "PNG", icc_profile=profile)

    result = imaging.render(tagged)
    untagged = imaging.render(encoded(plain, "PNG"))

    assert isinstance(result, imaging.Rendered)
    assert isinstance(untagged, imaging.Rendered)
    converted, original = decoded(result.renditions[0]), decoded(untagged.renditions[0])
    assert converted.mode == original.mode == "RGBA"
    alpha = np.asarray(converted.getchannel("A"), float)
    assert np.abs(alpha - np.asarray(original.getchannel("A"), float)).mean() < 2
    opaque = alpha == 255
    colours = np.asarray(converted.convert("RGB"), float)[opaque]
    assert np.abs(colours - np.asarray(original.convert("RGB"), float)[opaque]).mean() > 3


def test_16_bit_greyscale_is_scaled_not_clipped(corpus_bytes, rendered_ok) -> None:
    """16bit.cropped.tif uses values 291-694 of 0-65535: clipping makes it white, /257 black.
    It comes out stretched from its darkest to its brightest value."""
    data = corpus_bytes("pillow/16bit.cropped.tif")
    result = rendition_images(data)
    assert not isinstance(result, imaging.Rejected), result
    image = result[1][0]
    with Image.open(io.BytesIO(data)) as source:
        raw = np.asarray(source, dtype=float)
    stretched = (raw - raw.min()) * 255 / (raw.max() - raw.min())

    pixels = np.asarray(image, float)
    assert image.mode == "L"
    assert 20 < pixels.mean() < 235, pixels.mean()
    assert pixels.std() > 10  # a picture, not a flat field
    assert np.abs(pixels - stretched).max() <= 1
    assert decoded(rendered_ok("pillow/16bit.cropped.tif").renditions[0]).mode == "L"


def test_full_range_16_bit_maps_like_dividing_by_257() -> None:
    ramp = np.tile(np.linspace(0, 65535, 256).astype(np.uint16), (16, 1))
    data = encoded(Image.fromarray(ramp), "PNG")

    result = imaging.render(data)

    assert isinstance(result, imaging.Rendered)
    assert result.info.mode == "I;16"
    got = np.asarray(decoded(result.renditions[0]), float)
    assert np.abs(got - ramp / 257).max() < 6  # JPEG q82


def test_16_bit_rgb_is_8_bit_and_not_washed_out(rendered_ok) -> None:
    image = decoded(rendered_ok("pillow/tiff_16bit_RGB.tiff").renditions[0])

    assert image.mode == "RGB"
    assert 5 < np.asarray(image, float).mean() < 250
