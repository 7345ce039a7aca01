"""Fingerprints of the renditions settings (sizes, formats, qualities).

Each rendition's fingerprint is part of its key, so a rendition made with other settings never
has the key of the current one; the fingerprint of the whole set is stored on the media item
(``renditions_settings``), so ``scripts/reprocess.py`` can find the images made with other
settings and the thumbnail worker can tell which renditions it must rewrite (only those whose
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
    """What one rendition's pixels and bytes depend on: its size and every encoding option
    (the format is chosen per image from the options)."""
    return _digest({"max_edge": spec.max_edge, "encode": options._asdict()}, 8)


def rendition_fingerprints(
    specs: tuple[RenditionSpec, ...], options: EncodeOptions
) -> dict[str, str]:
    return {spec.name: rendition_fingerprint(spec, options) for spec in specs}


def settings_fingerprint(specs: tuple[RenditionSpec, ...], options: EncodeOptions) -> str:
    """The fingerprint of the whole set: rendition names and their fingerprints."""
    return _digest(rendition_fingerprints(specs, options), 12)
