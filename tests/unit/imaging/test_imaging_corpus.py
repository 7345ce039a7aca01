"""The corpus contract: every manifest row ends as the manifest says, and every rendition is what
the pipeline promises (sized right, upright, 8-bit sRGB, JPEG or WebP, nothing but pixels)."""

from __future__ import annotations

from contextlib import nullcontext
from fractions import Fraction
from math import floor

import pytest
from media_pipeline import imaging
from PIL import Image

from tests.support import ManifestRow
from tests.unit.imaging.imaging_support import decoded, grey_thumb, pixels_never_decoded

NAMES = [spec.name for spec in imaging.DEFAULT_RENDITIONS]


def expected_size(size: tuple[int, int], max_edge: int) -> tuple[int, int]:
    """Longest edge max_edge (or as is when smaller), the other edge rounded half up, >= 1px."""
    longest = max(size)
    if longest <= max_edge:
        return size
    width, height = (Fraction(edge * max_edge, longest) + Fraction(1, 2) for edge in size)
    return max(1, floor(width)), max(1, floor(height))


def test_render_ends_as_the_manifest_says(manifest_row: ManifestRow, rendered) -> None:
    outcome = rendered(manifest_row.file)

    if manifest_row.reason is None:
        assert isinstance(outcome, imaging.Rendered), outcome
        assert [r.name for r in outcome.renditions] == NAMES
    else:
        assert isinstance(outcome, imaging.Rejected), outcome.info
        assert outcome.reason == manifest_row.reason, outcome.message
        assert outcome.message


def test_describe_from_the_header_agrees_with_render(
    manifest_row: ManifestRow, corpus_bytes, rendered
) -> None:
    """describe() reads no pixels, yet its record is render()'s (which has decoded the image),
    but for the placeholder and dominant colour, which render() alone makes."""
    # Pillow's ICO opener itself decodes the icon (at most 256x256) to learn its mode
    icon = manifest_row.file.endswith(".ico")
    with nullcontext() if icon else pixels_never_decoded():
        outcome = imaging.describe(corpus_bytes(manifest_row.file))

    if manifest_row.reason is None:
        assert isinstance(outcome, imaging.Rendered), outcome
        assert outcome.renditions == ()
        assert (outcome.info.placeholder, outcome.info.dominant_color) == (None, None)
        info = rendered(manifest_row.file).info
        assert info.placeholder
        assert info._replace(placeholder=None, dominant_color=None) == outcome.info
    elif isinstance(outcome, imaging.Rejected):  # the header shows it: too large, unsupported
        assert outcome.reason == manifest_row.reason, outcome.message
    else:  # a sound header over pixel data that does not decode: render() rejects it
        assert manifest_row.reason == "corrupt", outcome.info


def test_renditions_are_sized_encoded_and_clean(render_row: ManifestRow, rendered_ok) -> None:
    result = rendered_ok(render_row.file)
    info = result.info

    for spec, rendition in zip(imaging.DEFAULT_RENDITIONS, result.renditions, strict=True):
        image = decoded(rendition)
        # size: longest edge = max_edge (never upscaled), aspect kept to the nearest pixel
        assert image.size == (rendition.width, rendition.height)
        assert image.size == expected_size((info.width, info.height), spec.max_edge)
        # format: JPEG when opaque, WebP when transparency is in use; 8-bit modes only
        assert image.format == rendition.format
        assert (rendition.content_type, rendition.extension) == {
            "JPEG": ("image/jpeg", "jpg"),
            "WEBP": ("image/webp", "webp"),
        }[rendition.format]
        if rendition.format == "JPEG":
            assert image.mode in ("RGB", "L")
        else:
            assert image.mode == "RGBA"
            assert image.getchannel("A").getextrema()[0] < 255, "alpha used"
        # nothing but pixels: no EXIF (so no GPS, no orientation), XMP or ICC profile
        assert not image.getexif()
        assert not {"exif", "xmp", "XML:com.adobe.xmp", "icc_profile"} & image.info.keys()
        assert b"Exif\x00\x00" not in rendition.data
        assert rendition.size == len(rendition.data)


def test_all_renditions_of_an_image_share_one_format(render_row: ManifestRow, rendered_ok) -> None:
    formats = {r.format for r in rendered_ok(render_row.file).renditions}

    assert len(formats) == 1


@pytest.mark.parametrize("n", range(9))
def test_landscape_photos_come_out_upright(n: int, rendered_ok) -> None:
    """orientation/Landscape_N is one 1800x1200 photo stored for EXIF orientation N."""
    result = rendered_ok(f"orientation/Landscape_{n}.jpg")
    reference = rendered_ok("orientation/Landscape_1.jpg")

    assert (result.info.width, result.info.height) == (1800, 1200)
    assert [(r.width, r.height) for r in result.renditions] == [(1024, 683), (512, 341), (128, 85)]
    for rendition, expected in zip(result.renditions, reference.renditions, strict=True):
        difference = abs(grey_thumb(decoded(rendition)) - grey_thumb(decoded(expected))).mean()
        assert difference < 3, f"{rendition.name}: mean abs difference {difference:.1f}"


@pytest.mark.parametrize("n", [3, 5, 6, 8])
def test_portrait_photos_come_out_upright(n: int, rendered_ok) -> None:
    result = rendered_ok(f"orientation/Portrait_{n}.jpg")
    reference = rendered_ok("orientation/Portrait_3.jpg")  # checked upright by the landscape test

    assert [(r.width, r.height) for r in result.renditions] == [(683, 1024), (341, 512), (85, 128)]
    for rendition, expected in zip(result.renditions, reference.renditions, strict=True):
        difference = abs(grey_thumb(decoded(rendition)) - grey_thumb(decoded(expected))).mean()
        assert difference < 3, f"{rendition.name}: mean abs difference {difference:.1f}"


@pytest.mark.parametrize(
    ("name", "by_hand"),
    [
        ("orientation/Landscape_1.jpg", None),  # orientation 1: upright as stored
        ("orientation/Portrait_3.jpg", Image.Transpose.ROTATE_180),
        ("pillow/hopper_orientation_6.jpg", Image.Transpose.ROTATE_270),
        ("pillow/hopper_orientation_8.jpg", Image.Transpose.ROTATE_90),
        ("pillow/hopper_orientation_6.webp", Image.Transpose.ROTATE_270),
        ("pillow/exif_imagemagick_orientation.png", Image.Transpose.ROTATE_180),
    ],
)
def test_upright_is_the_stored_pixels_turned_as_exif_says(
    name: str, by_hand: Image.Transpose | None, corpus_dir, rendered_ok
) -> None:
    """Anchors the comparisons above to the files themselves, independently of the engine, and
    shows the check tells an upright picture from a turned one."""
    rendition = decoded(rendered_ok(name).renditions[0])
    with Image.open(corpus_dir / name) as stored:
        pixels = stored.convert("RGB")
    upright = pixels.transpose(by_hand) if by_hand is not None else pixels
    wrong = upright.transpose(Image.Transpose.ROTATE_180)
    size = (rendition.width // 16, rendition.height // 16)

    got, right, turned = (grey_thumb(i, size) for i in (rendition, upright, wrong))
    assert abs(got - right).mean() < 3
    # as far from the picture turned wrong as the upright picture is (the ImageMagick test
    # pattern is nearly symmetric; the photos differ by far more than the bound)
    assert abs(got - turned).mean() > abs(right - turned).mean() - 3


def test_avif_rotation_and_mirror_boxes_are_applied(rendered_ok) -> None:
    """avif_rot1mir0.avif is stored 427x640 with irot=1 (90 degrees): upright it is landscape."""
    result = rendered_ok("pillow/avif_rot1mir0.avif")

    assert (result.info.width, result.info.height) == (640, 427)
    assert (result.renditions[0].width, result.renditions[0].height) == (640, 427)


def test_small_images_are_never_upscaled(rendered_ok) -> None:
    result = rendered_ok("pillow/hopper.ico")

    assert [(r.width, r.height) for r in result.renditions] == [(16, 16)] * 3


@pytest.mark.parametrize(
    ("name", "frames"),
    [
        ("pillow/chi.gif", 31),
        ("pillow/iss634.gif", 42),
        ("pillow/iss634.webp", 42),
        ("pillow/apng_dispose_op_background.png", 3),
        ("pillow/avif_star.avifs", 5),
        ("pillow/flower.jpg", 1),
    ],
)
def test_animations_render_their_first_frame_and_count_frames(
    name: str, frames: int, rendered_ok
) -> None:
    result = rendered_ok(name)

    assert result.info.frames == frames
    assert result.info.animated is (frames > 1)
    assert len(result.renditions) == 3


def test_first_frame_is_the_one_rendered(corpus_dir, rendered_ok) -> None:
    with Image.open(corpus_dir / "pillow/chi.gif") as gif:
        first = gif.convert("RGB")
        gif.seek(15)
        later = gif.convert("RGB")
    rendition = decoded(rendered_ok("pillow/chi.gif").renditions[0])

    assert abs(grey_thumb(rendition) - grey_thumb(first)).mean() < 3
    assert (
        abs(grey_thumb(rendition) - grey_thumb(later)).mean()
        > abs(grey_thumb(rendition) - grey_thumb(first)).mean()
    )


@pytest.mark.parametrize(
    "name",
    [
        "pillow/transparent.png",
        "pillow/transparent.webp",
        "pillow/transparent.gif",
        "pillow/p_trns_single.png",
        "pillow/rgb_trns.png",
        "pillow/l_trns.png",
        "pillow/1_trns.png",
        "pillow/uncompressed_la.png",
        "pillow/avif_transparency.avif",
    ],
)
def test_used_transparency_becomes_rgba_webp(name: str, rendered_ok) -> None:
    result = rendered_ok(name)

    assert result.info.has_alpha
    assert {(r.format, decoded(r).mode) for r in result.renditions} == {("WEBP", "RGBA")}


def test_alpha_format_png_gives_png(corpus_bytes) -> None:
    result = imaging.render(
        corpus_bytes("pillow/transparent.png"), options=imaging.EncodeOptions(alpha_format="PNG")
    )

    assert isinstance(result, imaging.Rendered)
    assert {(r.format, r.content_type, r.extension) for r in result.renditions} == {
        ("PNG", "image/png", "png")
    }
    assert all(decoded(r).mode == "RGBA" for r in result.renditions)


def test_unused_alpha_channel_gives_jpeg(rendered_ok) -> None:
    """hopper.ico is RGBA but opaque everywhere: no reason to pay for WebP."""
    result = rendered_ok("pillow/hopper.ico")

    assert result.info.has_alpha
    assert {r.format for r in result.renditions} == {"JPEG"}


def test_specs_are_followed_in_their_order(corpus_bytes) -> None:
    specs = (
        imaging.RenditionSpec("tiny", 32),
        imaging.RenditionSpec("huge", 4000),
        imaging.RenditionSpec("mid", 300),
    )

    result = imaging.render(corpus_bytes("orientation/Landscape_6.jpg"), specs)

    assert isinstance(result, imaging.Rendered)
    assert [(r.name, r.width, r.height) for r in result.renditions] == [
        ("tiny", 32, 21),
        ("huge", 1800, 1200),
        ("mid", 300, 200),
    ]


@pytest.mark.parametrize(
    ("options", "name", "expected"),
    [
        ({"opaque_format": "AVIF"}, "pillow/hopper_orientation_6.jpg", ("AVIF", "RGB")),
        ({"opaque_format": "AVIF"}, "pillow/hopper_gray.jpg", ("AVIF", "L")),
        ({"opaque_format": "WEBP"}, "pillow/hopper_gray.jpg", ("WEBP", "RGB")),
        ({"alpha_format": "AVIF"}, "pillow/transparent.png", ("AVIF", "RGBA")),
    ],
)
def test_webp_and_avif_out(options: dict, name: str, expected: tuple, corpus_bytes) -> None:
    result = imaging.render(corpus_bytes(name), options=imaging.EncodeOptions(**options))

    assert isinstance(result, imaging.Rendered), result
    types = {"AVIF": ("image/avif", "avif"), "WEBP": ("image/webp", "webp")}
    for spec, rendition in zip(imaging.DEFAULT_RENDITIONS, result.renditions, strict=True):
        image = decoded(rendition)
        assert (image.format, image.mode) == expected
        assert (rendition.content_type, rendition.extension) == types[expected[0]]
        assert image.size == (rendition.width, rendition.height)
        assert image.size == expected_size((result.info.width, result.info.height), spec.max_edge)
        assert not image.getexif()
