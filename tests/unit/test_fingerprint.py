"""Settings fingerprints: what changes a rendition's key, and what does not."""

from __future__ import annotations

from media_pipeline.fingerprint import rendition_fingerprints, settings_fingerprint
from media_pipeline.imaging import DEFAULT_RENDITIONS, EncodeOptions, RenditionSpec
from media_pipeline.imaging.features import CropBox, Focus


def test_the_same_settings_always_give_the_same_fingerprints():
    assert settings_fingerprint(DEFAULT_RENDITIONS, EncodeOptions()) == settings_fingerprint(
        tuple(DEFAULT_RENDITIONS), EncodeOptions()
    )


def test_a_resized_rendition_changes_only_its_own_fingerprint():
    resized = (
        RenditionSpec("large", 1024),
        RenditionSpec("medium", 400),
        RenditionSpec("small", 128),
    )
    before = rendition_fingerprints(DEFAULT_RENDITIONS, EncodeOptions())
    after = rendition_fingerprints(resized, EncodeOptions())
    assert {n for n in before if before[n] != after[n]} == {"medium"}
    assert settings_fingerprint(resized, EncodeOptions()) != settings_fingerprint(
        DEFAULT_RENDITIONS, EncodeOptions()
    )


def test_a_quality_or_format_change_changes_every_rendition():
    before = rendition_fingerprints(DEFAULT_RENDITIONS, EncodeOptions())
    for options in (EncodeOptions(jpeg_quality=70), EncodeOptions(opaque_format="WEBP")):
        after = rendition_fingerprints(DEFAULT_RENDITIONS, options)
        assert all(before[n] != after[n] for n in before)


def test_a_renamed_set_changes_the_set_fingerprint():
    renamed = (RenditionSpec("big", 1024), *DEFAULT_RENDITIONS[1:])
    assert settings_fingerprint(renamed, EncodeOptions()) != settings_fingerprint(
        DEFAULT_RENDITIONS, EncodeOptions()
    )


CROPPED = (
    *DEFAULT_RENDITIONS,
    RenditionSpec("square", 256, (1, 1)),
    RenditionSpec("card", 640, (16, 9)),
)


def test_uncropped_renditions_keep_the_fingerprints_of_the_release_before_crops() -> None:
    """Keys of existing renditions must not move: these are main's values before issue 20."""
    assert rendition_fingerprints(DEFAULT_RENDITIONS, EncodeOptions(extra_formats=("AVIF",))) == {
        "large": "46791ecf",
        "medium": "c1e20983",
        "small": "9914bd1d",
        "large.AVIF": "eae4eb77",
        "medium.AVIF": "408d3701",
        "small.AVIF": "c30426f9",
    }
    assert settings_fingerprint(DEFAULT_RENDITIONS, EncodeOptions()) == "1fe61fb87c9c"


def test_an_images_focal_point_changes_only_its_cropped_renditions_fingerprints() -> None:
    options = EncodeOptions(extra_formats=("WEBP",))
    auto = rendition_fingerprints(CROPPED, options)
    for place in (
        {"focus": Focus(0.2, 0.7)},
        {"crop_box": CropBox(0, 0, 0.5, 0.5)},
        {"focus": Focus(0.2, 0.7), "crop_box": CropBox(0, 0, 0.5, 0.5)},
    ):
        moved = rendition_fingerprints(CROPPED, options, **place)
        changed = {name for name in auto if auto[name] != moved[name]}
        assert changed == {"square", "card", "square.WEBP", "card.WEBP"}, place
    again = rendition_fingerprints(CROPPED, options, focus=Focus(0.2, 0.7))
    assert again == rendition_fingerprints(CROPPED, options, focus=Focus(0.2, 0.7))
    other = rendition_fingerprints(CROPPED, options, focus=Focus(0.3, 0.7))
    assert other["square"] != again["square"]


def test_a_cropped_renditions_shape_is_in_its_fingerprint_in_lowest_terms() -> None:
    def fingerprint(spec: RenditionSpec) -> str:
        return rendition_fingerprints((spec,), EncodeOptions())[spec.name]

    card = fingerprint(RenditionSpec("card", 640, (16, 9)))
    assert card == fingerprint(RenditionSpec("card", 640, (32, 18)))
    assert card != fingerprint(RenditionSpec("card", 640, (4, 3)))
    assert card != fingerprint(RenditionSpec("card", 640, (16, 9), upscale=True))
    assert card != fingerprint(RenditionSpec("card", 640))


def test_the_settings_fingerprint_is_the_deployments_not_an_images() -> None:
    """A reprocess compares it with what an item was made with: an image whose app set a focal
    point is not made with other settings."""
    assert settings_fingerprint(CROPPED, EncodeOptions()) != settings_fingerprint(
        DEFAULT_RENDITIONS, EncodeOptions()
    )
