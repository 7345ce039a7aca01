"""Settings fingerprints: what changes a rendition's key, and what does not."""

from __future__ import annotations

from media_pipeline.fingerprint import rendition_fingerprints, settings_fingerprint
from media_pipeline.imaging import DEFAULT_RENDITIONS, EncodeOptions, RenditionSpec


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
