"""Cropped renditions: the window (inside the picture, of the right shape, around the point of
interest), the pixels (like a crop of the full picture resized once), the focal point (given,
from a crop box, or found), and what the samples' hand-marked points of interest say of it."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from media_pipeline import imaging
from media_pipeline.imaging import crops
from media_pipeline.imaging.engine import rendition_images
from media_pipeline.imaging.features import CropBox, Focus
from PIL import Image

from tests.unit.imaging.imaging_support import encoded, photo_like, reference_rendition
from tests.unit.imaging.test_imaging_quality import SSIM_MIN, ssim

SAMPLES = Path(__file__).resolve().parents[3] / "samples"
Spec = imaging.RenditionSpec
ASPECTS = {"square": (1, 1), "card": (16, 9), "story": (9, 16), "portrait": (4, 5)}
CROPPED = tuple(Spec(name, 320, aspect) for name, aspect in ASPECTS.items())


def points_of_interest() -> list[tuple[str, tuple[float, float, float, float]]]:
    with (SAMPLES / "points_of_interest.csv").open() as handle:
        return [
            (row["file"], tuple(float(row[k]) for k in ("left", "top", "right", "bottom")))
            for row in csv.DictReader(handle)
        ]


# ---------------------------------------------------------------------------------------------
# Geometry
# ---------------------------------------------------------------------------------------------

sizes = st.tuples(st.integers(1, 5000), st.integers(1, 5000))
aspects = st.tuples(st.integers(1, 40), st.integers(1, 40))
fractions = st.floats(0, 1)


@st.composite
def boxes(draw: st.DrawFn) -> CropBox | None:
    if draw(st.booleans()):
        return None
    left, right = sorted(draw(st.lists(fractions, min_size=2, max_size=2, unique=True)))
    top, bottom = sorted(draw(st.lists(fractions, min_size=2, max_size=2, unique=True)))
    return CropBox(left, top, right, bottom)


@settings(max_examples=400, deadline=None)
@given(sizes, aspects, st.integers(1, 2000), st.booleans(), fractions, fractions, boxes())
# found by Hypothesis: the 13:8 spec's 9x6 output (3:2) did not fit its 9x5.6 window
@example((9, 20), (13, 8), 9, False, 0.0, 0.0, CropBox(0.0, 0.03125, 1.0, 0.3125))
def test_a_window_is_inside_the_picture_of_the_outputs_shape_and_never_enlarged(
    size, aspect, edge, upscale, x, y, box
) -> None:
    spec = Spec("c", edge, aspect, upscale)
    out, extent = crops.plan(spec, size, box)
    left, top, right, bottom = crops.place(extent, size, Focus(x, y), box)
    bounds = crops._bounds(size, box)
    if box is not None:  # the box, grown to a pixel at least
        assert bounds[0] <= max(box.left * size[0], 0) + 1
        assert bounds[2] >= box.right * size[0] - 1
    slack = 1e-6 * max(size)
    assert bounds[0] - slack <= left < right <= bounds[2] + slack
    assert bounds[1] - slack <= top < bottom <= bounds[3] + slack
    assert (right - left) / (bottom - top) == pytest.approx(out[0] / out[1], rel=1e-9)
    assert max(out) <= edge
    assert min(out) >= 1
    if upscale:
        assert out == crops.crop_size(spec)
    else:  # never more pixels than the window has (a picture under a pixel wide aside)
        assert out[0] <= max(1.0, right - left + 1e-6)
        assert out[1] <= max(1.0, bottom - top + 1e-6)


@settings(max_examples=200, deadline=None)
@given(sizes, aspects, fractions, fractions)
def test_a_window_is_centred_on_the_focus_unless_an_edge_is_in_the_way(size, aspect, x, y) -> None:
    _out, extent = crops.plan(Spec("c", 512, aspect), size)
    left, top, right, bottom = crops.place(extent, size, Focus(x, y))
    centre = ((left + right) / 2, (top + bottom) / 2)
    for axis, (low, high, full) in enumerate(((left, right, size[0]), (top, bottom, size[1]))):
        wanted = (x, y)[axis] * full
        at_edge = low <= 1e-9 * full or high >= full * (1 - 1e-9)
        assert at_edge or centre[axis] == pytest.approx(wanted, abs=1e-6 * full)


@pytest.mark.parametrize(
    ("size", "spec", "out"),
    [
        ((1, 1), Spec("c", 640, (16, 9)), (1, 1)),
        ((1000, 3), Spec("c", 640, (1, 1)), (3, 3)),
        ((3, 1000), Spec("c", 640, (16, 9)), (3, 1)),
        ((100, 100), Spec("c", 640, (16, 9)), (100, 56)),
        ((4000, 3000), Spec("c", 640, (16, 9)), (640, 360)),
        ((4000, 3000), Spec("c", 640, (9, 16)), (360, 640)),
        ((100, 100), Spec("c", 640, (16, 9), upscale=True), (640, 360)),
    ],
)
def test_tiny_and_extreme_pictures_give_crops_no_larger_than_themselves(size, spec, out) -> None:
    assert crops.plan(spec, size)[0] == out


def test_a_crop_box_bounds_every_cropped_rendition() -> None:
    box = CropBox(0.5, 0.0, 1.0, 0.5)
    for spec in CROPPED:
        _, extent = crops.plan(spec, (1000, 800), box)
        left, top, right, bottom = crops.place(extent, (1000, 800), Focus(0.0, 1.0), box)
        assert left >= 500 - 1e-6
        assert right <= 1000 + 1e-6
        assert top >= -1e-6
        assert bottom <= 400 + 1e-6


def test_the_focus_an_app_gives_is_kept_in_its_crop_box_and_a_box_alone_gives_its_centre():
    box = CropBox(0.2, 0.2, 0.6, 0.4)
    assert crops.focus_for(Focus(0.9, 0.1), box) == Focus(0.6, 0.2, "given")
    assert crops.focus_for(None, box) == Focus(0.4, 0.3, "crop_box")
    assert crops.focus_for(Focus(0.3, 0.7), None) == Focus(0.3, 0.7, "given")
    assert crops.focus_for(None, None) is None


@pytest.mark.parametrize(
    "bad",
    [
        lambda: Focus(1.5, 0.5),
        lambda: Focus(float("nan"), 0.5),
        lambda: Focus(True, 0.5),
        lambda: Focus("0.5", 0.5),
        lambda: CropBox(0.5, 0, 0.5, 1),
        lambda: CropBox(0, 0.9, 1, 0.1),
        lambda: CropBox(-0.1, 0, 1, 1),
        lambda: Spec("c", 256, (0, 1)),
        lambda: Spec("c", 256, (1, 1, 1)),
        lambda: Spec("c", 256, None, upscale=True),
    ],
)
def test_bad_crop_input_is_refused_where_it_is_made(bad) -> None:
    with pytest.raises(ValueError):
        bad()


# ---------------------------------------------------------------------------------------------
# Through render()
# ---------------------------------------------------------------------------------------------


def test_cropped_renditions_come_out_at_their_size_in_the_specs_order() -> None:
    data = encoded(photo_like(1200, 800, seed=3), "JPEG", quality=90)
    specs = (imaging.DEFAULT_RENDITIONS[0], *CROPPED, *imaging.DEFAULT_RENDITIONS[1:])
    outcome = imaging.render(data, specs)
    assert isinstance(outcome, imaging.Rendered)
    assert [r.name for r in outcome.renditions] == [s.name for s in specs]
    sizes = {r.name: (r.width, r.height) for r in outcome.renditions}
    assert sizes == {
        "large": (1024, 683),
        "square": (320, 320),
        "card": (320, 180),
        "story": (180, 320),
        "portrait": (256, 320),
        "medium": (512, 341),
        "small": (128, 85),
    }
    for rendition in outcome.renditions:
        with Image.open(io.BytesIO(rendition.data)) as image:
            assert image.size == (rendition.width, rendition.height)
    assert outcome.features is not None
    assert set(outcome.features.crops) == set(ASPECTS)


def test_a_crop_larger_than_every_other_rendition_decodes_enough_pixels() -> None:
    """A 10:1 panorama's square needs a full-picture step of 2560 px: no upscaling, no blur."""
    data = encoded(photo_like(3000, 300, seed=5), "JPEG", quality=92)
    spec = Spec("square", 256, (1, 1))
    result = rendition_images(data, (Spec("small", 128), spec), focus=Focus(0.3, 0.5))
    assert not isinstance(result, imaging.Rejected)
    _, (_, square) = result
    assert square.size == (256, 256)
    full = reference_rendition(data, (3000, 300))
    left = 0.3 * 3000 - 150
    reference = full.resize((256, 256), Image.Resampling.LANCZOS, box=(left, 0, left + 300, 300))
    assert ssim(square, reference) >= SSIM_MIN


@pytest.mark.parametrize("name", ["landscape-exif-rotated.jpg", "transparent.png", "flower.webp"])
def test_crops_look_like_the_full_picture_cropped_and_resized_once(name: str) -> None:
    """Upright (EXIF orientation applied), sRGB, transparency kept: the window of the slow,
    obviously right picture (full decode, normalised), one LANCZOS resize."""
    data = (SAMPLES / name).read_bytes()
    result = rendition_images(data, CROPPED)
    outcome = imaging.render(data, CROPPED)
    assert not isinstance(result, imaging.Rejected)
    assert isinstance(outcome, imaging.Rendered)
    info, images = result
    full = reference_rendition(data, (info.width, info.height))
    for spec, image in zip(CROPPED, images, strict=True):
        left, top, right, bottom = outcome.features.crops[spec.name]
        box = (left * info.width, top * info.height, right * info.width, bottom * info.height)
        reference = full.resize(image.size, Image.Resampling.LANCZOS, box=box)
        assert image.mode == reference.mode
        score = ssim(image, reference)
        assert score >= SSIM_MIN, f"{name} {spec.name}: SSIM {score:.4f}"


def test_the_same_input_gives_the_same_bytes_and_features() -> None:
    data = (SAMPLES / "landscape-exif-rotated.jpg").read_bytes()
    specs = (*imaging.DEFAULT_RENDITIONS, *CROPPED)
    first, second = imaging.render(data, specs), imaging.render(data, specs)
    assert first == second


def test_a_given_focus_moves_the_crops_and_leaves_the_other_renditions_alone() -> None:
    data = (SAMPLES / "landscape-exif-rotated.jpg").read_bytes()
    specs = (*imaging.DEFAULT_RENDITIONS, *CROPPED)
    auto = imaging.render(data, specs)
    left = imaging.render(data, specs, focus=Focus(0.0, 0.5))
    assert isinstance(auto, imaging.Rendered)
    assert isinstance(left, imaging.Rendered)
    assert auto.features.focus.source == "auto"
    assert left.features.focus == Focus(0.0, 0.5, "given")
    for before, after in zip(auto.renditions, left.renditions, strict=True):
        if before.name in ASPECTS and before.name != "card":  # card spans the whole width
            assert before.data != after.data, before.name
        elif before.name not in ASPECTS:
            assert before.data == after.data, before.name
    assert left.features.crops["square"][0] == 0.0  # as far left as the picture allows
    assert auto.features.thumbhash == left.features.thumbhash


def test_a_crop_box_is_where_the_crops_come_from_and_is_reported() -> None:
    data = (SAMPLES / "flower.webp").read_bytes()
    box = CropBox(0.25, 0.25, 0.75, 0.75)
    outcome = imaging.render(data, CROPPED, crop_box=box)
    assert isinstance(outcome, imaging.Rendered)
    assert outcome.features.crop_box == box
    assert outcome.features.focus == Focus(0.5, 0.5, "crop_box")
    for left, top, right, bottom in outcome.features.crops.values():
        assert 0.25 - 1e-6 <= left < right <= 0.75 + 1e-6
        assert 0.25 - 1e-6 <= top < bottom <= 0.75 + 1e-6


def test_bad_bytes_are_still_a_rejection_with_crops_asked_for() -> None:
    for data in ((SAMPLES / "broken.jpg").read_bytes(), b"", b"GIF89a" + b"\0" * 20):
        outcome = imaging.render(data, CROPPED, focus=Focus(0.5, 0.5))
        assert isinstance(outcome, imaging.Rejected), outcome


def test_features_can_be_left_out() -> None:
    data = (SAMPLES / "flower.webp").read_bytes()
    with_features = imaging.render(data)
    without = imaging.render(data, features=False)
    assert isinstance(with_features, imaging.Rendered)
    assert isinstance(without, imaging.Rendered)
    assert without.features is None
    assert without.renditions == with_features.renditions
    assert without.info == with_features.info


# ---------------------------------------------------------------------------------------------
# The point of interest, against the hand-marked samples
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "box"), points_of_interest(), ids=str)
def test_every_crop_of_a_sample_keeps_its_marked_point_of_interest(name: str, box) -> None:
    """samples/points_of_interest.csv marks, by eye, what each sample is of. Every cropped
    rendition placed around the point of interest render() finds must keep that box whole where
    the box fits in its window, and the box's centre where it does not."""
    specs = tuple(Spec(name_, 256, aspect) for name_, aspect in ASPECTS.items())
    outcome = imaging.render((SAMPLES / name).read_bytes(), specs)
    assert isinstance(outcome, imaging.Rendered)
    left, top, right, bottom = box
    for crop, (c_left, c_top, c_right, c_bottom) in outcome.features.crops.items():
        eps = 1e-6
        fits = right - left <= c_right - c_left + eps and bottom - top <= c_bottom - c_top + eps
        if fits:
            kept = (
                c_left - eps <= left
                and right <= c_right + eps
                and c_top - eps <= top
                and bottom <= c_bottom + eps
            )
        else:
            x, y = (left + right) / 2, (top + bottom) / 2
            kept = c_left <= x <= c_right and c_top <= y <= c_bottom
        assert kept, f"{name} {crop}: window {(c_left, c_top, c_right, c_bottom)} vs box {box}"


def test_the_point_of_interest_is_the_same_whatever_the_stored_orientation(corpus_dir) -> None:
    """The same photo stored in each EXIF orientation: the focal point is of the upright
    picture, so it hardly moves (each file also carries its orientation's digit, drawn on it)."""
    focuses = []
    for orientation in range(1, 9):
        data = (corpus_dir / f"orientation/Landscape_{orientation}.jpg").read_bytes()
        outcome = imaging.render(data, ())
        assert isinstance(outcome, imaging.Rendered)
        focuses.append(outcome.features.focus)
    assert max(f.x for f in focuses) - min(f.x for f in focuses) < 0.05
    assert max(f.y for f in focuses) - min(f.y for f in focuses) < 0.05


def test_a_flat_or_entirely_transparent_picture_has_its_centre_as_point_of_interest() -> None:
    for image in (Image.new("RGB", (64, 48), (30, 60, 90)), Image.new("RGBA", (40, 40))):
        assert crops.find_focus(image) == Focus(0.5, 0.5, "auto")


def test_an_object_off_centre_is_found() -> None:
    image = Image.new("RGB", (64, 48), (240, 240, 240))
    image.paste((200, 30, 30), (44, 6, 58, 18))
    focus = crops.find_focus(image)
    assert 44 / 64 <= focus.x <= 58 / 64
    assert 6 / 48 <= focus.y <= 18 / 48
