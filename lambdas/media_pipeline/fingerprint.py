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
    from media_pipeline.imaging.features import CropBox, Focus


def _digest(value: Any, length: int) -> str:
    # Imported when a fingerprint is first made, not with the module: scripts/render.py imports
    # it (through pipeline.halves) and makes none.
    import hashlib  # noqa: PLC0415
    import json  # noqa: PLC0415

    text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def crop_settings(
    spec: RenditionSpec, focus: Focus | None = None, crop_box: CropBox | None = None
) -> dict[str, Any] | None:
    """What a cropped rendition's window depends on besides the picture: its aspect ratio
    (reduced), whether it may be enlarged, and where it is placed -- the app's focal point and
    crop box for this image if it gave them, else the version of the point-of-interest detector.
    None for an uncropped rendition, whose fingerprint is what it always was. Per image: an
    image whose focal point changes gets new keys for its cropped renditions only."""
    if spec.aspect is None:
        return None
    import math  # noqa: PLC0415 - see _digest

    from media_pipeline.imaging.crops import AUTO_FOCUS_VERSION  # noqa: PLC0415 - workers only

    divisor = math.gcd(*spec.aspect)
    place: dict[str, Any] = {}
    if focus is not None:
        place["focus"] = [round(focus.x, 6), round(focus.y, 6)]
    if crop_box is not None:
        place["crop_box"] = [round(edge, 6) for edge in crop_box]
    if not place:
        place["auto"] = AUTO_FOCUS_VERSION
    return {
        "aspect": [spec.aspect[0] // divisor, spec.aspect[1] // divisor],
        "upscale": spec.upscale,
        **place,
    }


def rendition_fingerprint(
    spec: RenditionSpec,
    options: EncodeOptions,
    *,
    focus: Focus | None = None,
    crop_box: CropBox | None = None,
) -> str:
    """What one rendition's pixels and bytes depend on: its size and every encoding option of
    its primary format (chosen per image from the options), and for a cropped rendition where
    it is cut (:func:`crop_settings`). The extra formats are left out: adding or removing one
    keeps the primary renditions' keys (and their cached copies)."""
    encode = {k: v for k, v in options._asdict().items() if k != "extra_formats"}
    crop = crop_settings(spec, focus, crop_box)
    return _digest(
        {"max_edge": spec.max_edge, "encode": encode, **({"crop": crop} if crop else {})}, 8
    )


def alternate_fingerprint(
    spec: RenditionSpec,
    options: EncodeOptions,
    image_format: str,
    *,
    focus: Focus | None = None,
    crop_box: CropBox | None = None,
) -> str:
    """What a rendition in an extra format depends on: its size, the format and that format's
    own settings (quality; libavif's speed, libwebp's method), and where a cropped one is cut."""
    from media_pipeline.imaging.encode import settings_of  # noqa: PLC0415 - workers only

    crop = crop_settings(spec, focus, crop_box)
    return _digest(
        {
            "max_edge": spec.max_edge,
            "format": image_format,
            **settings_of(image_format, options),
            **({"crop": crop} if crop else {}),
        },
        8,
    )


def rendition_fingerprints(
    specs: tuple[RenditionSpec, ...],
    options: EncodeOptions,
    *,
    focus: Focus | None = None,
    crop_box: CropBox | None = None,
) -> dict[str, str]:
    """Each rendition's fingerprint by name, and each alternate's by ``name.FORMAT``; with an
    image's ``focus`` / ``crop_box`` (as given to ``render()``), its cropped renditions'."""
    place = {"focus": focus, "crop_box": crop_box}
    fingerprints = {spec.name: rendition_fingerprint(spec, options, **place) for spec in specs}
    for spec in specs:
        for image_format in options.extra_formats:
            key = f"{spec.name}.{image_format}"
            fingerprints[key] = alternate_fingerprint(spec, options, image_format, **place)
    return fingerprints


def settings_fingerprint(specs: tuple[RenditionSpec, ...], options: EncodeOptions) -> str:
    """The fingerprint of the whole set: rendition names and their fingerprints (the
    alternates' too: a new extra format makes every image's settings outdated, and a
    reprocess adds it). The deployment's settings: no image's own focal point or crop box (an
    image whose app set them is not 'made with other settings' for a reprocess)."""
    return _digest(rendition_fingerprints(specs, options), 12)
