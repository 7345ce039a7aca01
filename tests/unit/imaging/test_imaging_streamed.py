"""Large JPEG and PNG sources go through libvips (decode and resample in one pass, ``streamed``):
the renditions are those of Pillow's path in kind (formats, sizes, modes, orientation, colour)
and look like a single LANCZOS resize; whatever libvips cannot decode cleanly is Pillow's to judge.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from media_pipeline import imaging
from media_pipeline.imaging import streamed
from PIL import Image

from tests.unit.imaging.imaging_support import decoded, encoded, photo_like
from tests.unit.imaging.test_imaging_quality import assert_like_reference


@pytest.fixture
def streamed_calls(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """One entry per call of the libvips path: whether it made the largest rendition."""
    calls: list[bool] = []
    largest = streamed.largest_rendition

    def spy(*args: object) -> Image.Image | None:
        out = largest(*args)  # type: ignore[arg-type]
        calls.append(out is not None)
        return out

    monkeypatch.setattr(streamed, "largest_rendition", spy)
    return calls


def rotated_with_profile(image: Image.Image, icc: bytes) -> bytes:
    """``image`` as a JPEG stored sideways (EXIF orientation 6) with the profile ``icc``."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return encoded(image, "JPEG", quality=90, exif=exif.tobytes(), icc_profile=icc)


def both_ways(data: bytes, monkeypatch: pytest.MonkeyPatch) -> tuple[imaging.Produced, ...]:
    streamed_way = imaging.render(data)
    with monkeypatch.context() as patch:
        patch.setattr(streamed, "eligible", lambda *args: False)
        pillow_way = imaging.render(data)
    return streamed_way, pillow_way


def same_record(ours: imaging.Produced, pillows: imaging.Produced) -> bool:
    """The same metadata record but for the placeholder's bytes and the dominant colour, which
    a level of difference in a pixel may change."""
    assert isinstance(ours, imaging.Rendered)
    assert isinstance(pillows, imaging.Rendered)
    return ours.info._replace(placeholder=None, dominant_color=None) == pillows.info._replace(
        placeholder=None, dominant_color=None
    )


def kinds(outcome: imaging.Produced) -> list[tuple[str, int, int, str]]:
    assert isinstance(outcome, imaging.Rendered), outcome
    return [(r.format, r.width, r.height, decoded(r).mode) for r in outcome.renditions]


@pytest.mark.parametrize(
    ("mode", "image_format"),
    [("RGB", "JPEG"), ("L", "JPEG"), ("RGB", "PNG"), ("RGBA", "PNG"), ("LA", "PNG")],
)
def test_large_sources_come_out_as_from_pillows_path(
    mode: str, image_format: str, streamed_calls: list[bool], monkeypatch
) -> None:
    image = photo_like(2600, 1500, seed=21)
    if mode in ("RGBA", "LA"):
        image.putalpha(Image.radial_gradient("L").resize(image.size))
    data = encoded(image.convert(mode), image_format, **({"quality": 90} if mode != "RGBA" else {}))

    ours, pillows = both_ways(data, monkeypatch)

    assert streamed_calls == [True]
    assert kinds(ours) == kinds(pillows)
    assert same_record(ours, pillows)
    assert_like_reference(data)


def test_orientation_and_profile_are_applied_after_libvips(
    streamed_calls, corpus_bytes, monkeypatch
) -> None:
    wide = Image.open(io.BytesIO(corpus_bytes("pillow/icc_profile_big.jpg"))).info["icc_profile"]
    data = rotated_with_profile(photo_like(2600, 1500, seed=22), wide)

    ours, pillows = both_ways(data, monkeypatch)
    untagged = imaging.render(rotated_with_profile(photo_like(2600, 1500, seed=22), b""))

    assert streamed_calls == [True, True]
    assert kinds(ours)[0] == ("JPEG", 591, 1024, "RGB")  # upright
    assert kinds(ours) == kinds(pillows)
    converted, original = decoded(ours.renditions[1]), decoded(untagged.renditions[1])
    assert np.abs(np.asarray(converted, float) - np.asarray(original, float)).mean() > 3
    assert same_record(ours, pillows)
    assert_like_reference(data)


def test_an_alpha_channel_that_is_all_opaque_is_dropped_as_before(streamed_calls) -> None:
    data = encoded(photo_like(2600, 1500, seed=23).convert("RGBA"), "PNG", compress_level=1)

    outcome = imaging.render(data)

    assert streamed_calls == [True]
    assert {r.format for r in outcome.renditions} == {"JPEG"}


def test_a_truncated_large_jpeg_is_rejected_by_pillow_as_before(streamed_calls) -> None:
    data = encoded(photo_like(2600, 1500, seed=24), "JPEG", quality=90)

    outcome = imaging.render(data[: len(data) // 2])

    assert streamed_calls == [False]  # libvips refused it: Pillow decoded it and judged
    assert isinstance(outcome, imaging.Rejected)
    assert outcome.reason == "corrupt"
    assert outcome.message.startswith("image data cannot be decoded")


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(lambda: encoded(photo_like(600, 400, seed=1), "JPEG"), id="small"),
        pytest.param(
            lambda: encoded(photo_like(2600, 1500, seed=2).convert("CMYK"), "JPEG"), id="cmyk"
        ),
        pytest.param(
            lambda: encoded(photo_like(2600, 1500, seed=3).convert("P"), "PNG"), id="palette"
        ),
        pytest.param(
            lambda: encoded(photo_like(2600, 1500, seed=4).convert("I;16"), "PNG"), id="16-bit"
        ),
        pytest.param(lambda: encoded(photo_like(2600, 1500, seed=5), "WEBP"), id="webp"),
        pytest.param(
            lambda: encoded(
                photo_like(1600, 1000, seed=6),
                "PNG",
                save_all=True,
                append_images=[photo_like(1600, 1000, seed=7)],
            ),
            id="animated",
        ),
    ],
)
def test_other_sources_are_decoded_by_pillow(data, streamed_calls) -> None:
    outcome = imaging.render(data())

    assert isinstance(outcome, imaging.Rendered)
    assert streamed_calls == []


def test_the_jpeg_scale_is_pillows_draft_scale() -> None:
    data = encoded(photo_like(4000, 3000, seed=8), "JPEG", quality=80)
    for draft in [(1792, 1344), (1000, 750), (480, 360), (4000, 3000), (3000, 2000)]:
        image = Image.open(io.BytesIO(data))
        image.draft("RGB", draft)
        assert image.size[0] == -(-4000 // streamed.jpeg_scale((4000, 3000), draft)), draft
