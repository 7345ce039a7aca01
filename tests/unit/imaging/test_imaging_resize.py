"""Rendition sizes and the resampling building block."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from media_pipeline import imaging
from media_pipeline.imaging import resize
from media_pipeline.imaging.resize import fit, shrink
from PIL import Image

from tests.unit.imaging.imaging_support import encoded, photo_like


@pytest.mark.parametrize(
    ("size", "edge", "expected"),
    [
        ((1800, 1200), 1024, (1024, 683)),  # 682.67
        ((1200, 1800), 512, (341, 512)),  # 341.33
        ((4000, 3000), 128, (128, 96)),
        ((1000, 10), 100, (100, 1)),  # exactly 1
        ((10000, 3), 100, (100, 1)),  # 0.03: at least 1px
        ((300, 200), 1024, (300, 200)),  # never upscaled
        ((16, 16), 128, (16, 16)),
        ((1025, 1025), 1024, (1024, 1024)),
        ((2048, 1023), 1024, (1024, 512)),  # 511.5 rounds half up
    ],
)
def test_fit(size: tuple[int, int], edge: int, expected: tuple[int, int]) -> None:
    assert fit(size, edge) == expected
    assert fit(size[::-1], edge) == expected[::-1]  # symmetric: same answer either way round


@pytest.fixture
def pillow_only(monkeypatch):
    """Every size resampled by Pillow (libvips takes sources of VIPS_MIN_PIXELS and more)."""
    monkeypatch.setattr(resize, "VIPS_MIN_PIXELS", sys.maxsize)


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "LA", "CMYK", "I;16", "F"])
def test_threaded_strips_match_one_resize(mode: str, pillow_only) -> None:
    """Big outputs are resampled as strips on threads. Each strip positions its filters from its
    own box, so floating-point rounding may move a rare pixel by one level, never more."""
    image = photo_like(1500, 1100, seed=5)
    if mode in ("RGBA", "LA"):
        image.putalpha(Image.radial_gradient("L").resize(image.size))
    image = image.convert(mode) if mode != "I;16" else image.convert("I").convert("I;16")

    got = shrink(image, (700, 513))  # 2.1x: no reduce() step, LANCZOS only

    assert got.mode == mode
    expected = image.resize((700, 513), Image.Resampling.LANCZOS)
    premultiplied = {"RGBA": "RGBa", "LA": "La"}.get(mode)
    if premultiplied:
        # compare premultiplied, as resampled: where alpha is low, unpremultiplying turns one
        # level into many; the round trip back adds a level of its own
        got, expected = got.convert(premultiplied), expected.convert(premultiplied)
    difference = np.abs(np.asarray(got, float) - np.asarray(expected, float))
    if mode == "F":
        assert difference.max() < 1e-3
    elif premultiplied:
        assert difference.max() <= 2
    else:
        assert difference.max() <= 1
        assert np.count_nonzero(difference) <= difference.size // 1000


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "LA", "CMYK"])
@pytest.mark.parametrize("size", [(700, 513), (380, 279)], ids=["2.1x", "3.9x"])
def test_large_sources_are_resampled_by_libvips_like_pillows_lanczos(
    mode: str, size: tuple[int, int], monkeypatch
) -> None:
    calls = []
    vips = resize._vips_lanczos
    monkeypatch.setattr(resize, "_vips_lanczos", lambda *a: calls.append(a[1]) or vips(*a))
    image = photo_like(1500, 1100, seed=5)  # 1.65 MP
    if mode in ("RGBA", "LA"):
        image.putalpha(Image.radial_gradient("L").resize(image.size))
    image = image.convert(mode)

    got = shrink(image, size)

    assert calls == [size]
    assert (got.mode, got.size) == (mode, size)
    expected = image.resize(size, Image.Resampling.LANCZOS)
    premultiplied = {"RGBA": "RGBa", "LA": "La"}.get(mode)
    if premultiplied:  # compared as resampled (see above)
        got, expected = got.convert(premultiplied), expected.convert(premultiplied)
    difference = np.abs(np.asarray(got, float) - np.asarray(expected, float))
    # the same filter, placed the same way: a level or two here and there, no shift, no blur
    assert difference.max() <= 3
    assert difference.mean() < 0.35


@pytest.mark.parametrize("vips", [True, False], ids=["libvips", "pillow"])
def test_threaded_strips_do_not_depend_on_timing(vips: bool, monkeypatch) -> None:
    if not vips:
        monkeypatch.setattr(resize, "VIPS_MIN_PIXELS", sys.maxsize)
    image = photo_like(1500, 1100, seed=6).convert("RGBA")

    results = {shrink(image, (1024, 751)).tobytes() for _ in range(5)}

    assert len(results) == 1


def test_shrink_keeps_an_image_of_the_right_size_as_is() -> None:
    image = Image.new("RGB", (64, 48))

    assert shrink(image, (64, 48)) is image


def test_transparent_pixels_do_not_bleed_colour() -> None:
    """Premultiplied resampling: the colour under fully transparent pixels must not leak."""
    image = Image.new("RGBA", (400, 400), (255, 0, 0, 0))  # invisible red
    image.paste((0, 0, 255, 255), (0, 0, 200, 400))  # opaque blue on the left

    out = np.asarray(shrink(image, (100, 100)))

    visible = out[..., 3] > 0
    assert out[visible][:, 0].max() < 8  # no red in anything visible


def test_the_later_renditions_of_a_large_source_are_resampled_by_libvips(monkeypatch) -> None:
    """libvips is loaded for a large source anyway: 1024 -> 512 px goes to it as well (a third
    of Pillow's time); smaller steps, and every step of a small source, stay with Pillow."""
    calls: list[tuple[int, int]] = []
    vips = resize._vips_lanczos
    monkeypatch.setattr(resize, "_vips_lanczos", lambda *a: calls.append(a[1]) or vips(*a))
    large = encoded(photo_like(2400, 1600, seed=9), "WEBP")  # Pillow decodes, libvips resamples
    small = encoded(photo_like(1000, 700, seed=9), "WEBP")

    assert isinstance(imaging.render(large), imaging.Rendered)
    assert calls == [(1024, 683), (512, 341)]
    calls.clear()
    assert isinstance(imaging.render(small), imaging.Rendered)
    assert calls == []
