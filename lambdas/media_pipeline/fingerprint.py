"""Fingerprints of the renditions settings (sizes, formats, qualities).

Each rendition's fingerprint is part of its key, so a rendition made with other settings never
has the key of the current one; the fingerprint of the whole set is stored on the media item
(``renditions_settings``), so ``scripts/reprocess.py`` can find the images made with other
settings and the renditions worker can tell which renditions it must rewrite (only those whose
key changed).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the reconciler and the API run without the image stack (no Pillow layer)
    from media_pipeline.imaging import EncodeOptions, RenditionSpec


def _digest(value: Any, length: int) -> str:
    # Imported when a fingerprint is first made, not with the module: scripts/render.py imports
    # it (through pipeline.halves) and makes none.
    import hashlib  # noqa: PLC0415
    import json  # noqa: PLC0415

    text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def rendition_fingerprint(spec: RenditionSpec, options: EncodeOptions) -> str:
    """What one rendition's pixels and bytes depend on: its size and every encoding option of
    its primary format (chosen per image from the options). The extra formats are left out:
    adding or removing one keeps the primary renditions' keys (and their cached copies)."""
    encode = {k: v for k, v in options._asdict().items() if k != "extra_formats"}
    return _digest({"max_edge": spec.max_edge, "encode": encode}, 8)


def alternate_fingerprint(spec: RenditionSpec, options: EncodeOptions, image_format: str) -> str:
    """What a rendition in an extra format depends on: its size, the format and that format's
    own settings (quality; libavif's speed, libwebp's method)."""
    from media_pipeline.imaging.encode import settings_of  # noqa: PLC0415 - workers only

    return _digest(
        {"max_edge": spec.max_edge, "format": image_format, **settings_of(image_format, options)},
        8,
    )


def rendition_fingerprints(
    specs: tuple[RenditionSpec, ...], options: EncodeOptions
) -> dict[str, str]:
    """Each rendition's fingerprint by name, and each alternate's by ``name.FORMAT``."""
    fingerprints = {spec.name: rendition_fingerprint(spec, options) for spec in specs}
    for spec in specs:
        for image_format in options.extra_formats:
            key = f"{spec.name}.{image_format}"
            fingerprints[key] = alternate_fingerprint(spec, options, image_format)
    return fingerprints


def settings_fingerprint(specs: tuple[RenditionSpec, ...], options: EncodeOptions) -> str:
    """The fingerprint of the whole set: rendition names and their fingerprints (the
    alternates' too: a new extra format makes every image's settings outdated, and a
    reprocess adds it)."""
    return _digest(rendition_fingerprints(specs, options), 12)
