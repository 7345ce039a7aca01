"""The two halves of the work done for every upload, as plugged into ``flow.process_object``.

Storage comes in from outside: the renditions half is given the bucket it writes to
(``objects.RenditionsBucket``) by its handler, so this module imports no S3 code, and
``scripts/render.py`` runs the same halves with none.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from media_pipeline import fingerprint, imaging
from media_pipeline.model import (
    FRAMING_ATTRIBUTE,
    PREVIEW_ATTRIBUTE,
    PREVIEW_FIELDS,
    Half,
    ObjectVersion,
    framed_settings,
)

if TYPE_CHECKING:
    from media_pipeline.objects import RenditionsBucket
    from media_pipeline.pipeline.duplicates import DuplicateFinder
    from media_pipeline.pipeline.flow import Related


class RenditionsWork:
    """Renditions half (the renditions worker's): renditions rendered from the image, written to
    the renditions bucket (``bucket``; None where nothing is stored, as in scripts/render.py)."""

    half = Half.RENDITIONS
    hash_while_reading = False
    # Decoding, resizing, encoding and three PUTs: a duplicate event must not do them again.
    reads_first = True

    def __init__(
        self,
        bucket: RenditionsBucket | None,
        specs: tuple[imaging.RenditionSpec, ...],
        limits: imaging.Limits,
        options: imaging.EncodeOptions,
        *,
        item: dict[str, Any] | None = None,
        duplicates: DuplicateFinder | None = None,
    ) -> None:
        """``duplicates``: finds and records the app's earlier images this one duplicates
        (None: none are looked for)."""
        self._bucket = bucket
        self._specs = specs
        self._limits = limits
        self._options = options
        self._duplicates = duplicates
        self._item = item
        framing = (item or {}).get(FRAMING_ATTRIBUTE) or {}
        focus, box = framing.get("focus"), framing.get("crop_box")
        self._focus = imaging.Focus(focus["x"], focus["y"]) if focus else None
        self._crop_box = imaging.CropBox(**box) if box else None

    def for_item(self, item: dict[str, Any] | None) -> RenditionsWork:
        """This half for the image ``item`` is: its cropped renditions placed as the app asked
        (``model.FRAMING_ATTRIBUTE``, set by ``PATCH /images/{id}``), its settings framed."""
        if not (item or {}).get(FRAMING_ATTRIBUTE):
            return self
        work = RenditionsWork(
            self._bucket,
            self._specs,
            self._limits,
            self._options,
            item=item,
            duplicates=self._duplicates,
        )
        work.__dict__["_base_settings"] = self._base_settings  # hashed once per worker
        return work

    @functools.cached_property
    def _fingerprints(self) -> dict[str, str]:
        return fingerprint.rendition_fingerprints(
            self._specs, self._options, focus=self._focus, crop_box=self._crop_box
        )

    @functools.cached_property
    def _base_settings(self) -> str:
        return fingerprint.settings_fingerprint(self._specs, self._options)

    @functools.cached_property
    def settings(self) -> str | None:
        """The fingerprint of the renditions settings, made when first asked for (by the flow's
        decision): hashing them (json, hashlib) is none of scripts/render.py's start-up. For an
        image whose app set its framing, with that framing's revision after it."""
        return framed_settings(self._base_settings, self._item)

    def produce(self, data: bytes) -> imaging.Produced:
        return imaging.render(
            data,
            self._specs,
            limits=self._limits,
            options=self._options,
            sha256=False,
            focus=self._focus,
            crop_box=self._crop_box,
        )

    def store(
        self,
        version: ObjectVersion,
        result: imaging.Rendered,
        existing: dict[str, dict[str, Any]] | None = None,
    ) -> dict[str, dict[str, Any]]:
        """Write the renditions, except those ``existing`` already holds under the same key."""
        return self._stored_in().put(
            version,
            result.renditions,
            fingerprints=self._fingerprints,
            alternates=result.alternates,
            existing=existing,
        )

    def attributes(self, result: imaging.Rendered) -> dict[str, Any]:
        """The placeholder and dominant colour, derived from the smallest renditions; the
        ThumbHash, the focal point and the cropped renditions' windows (``FEATURE_FIELDS``)."""
        info = result.info
        preview: dict[str, Any] = {name: getattr(info, name) for name in PREVIEW_FIELDS}
        features = result.features
        if features is not None:
            preview["thumbhash"] = features.thumbhash
            preview["focus"] = {
                **features.focus.to_dict(),
                "x": _fraction(features.focus.x),
                "y": _fraction(features.focus.y),
            }
            preview["crops"] = {
                name: [_fraction(edge) for edge in window]
                for name, window in features.crops.items()
            }
        return {PREVIEW_ATTRIBUTE: preview}

    def discard(
        self, version: ObjectVersion, value: dict[str, dict[str, Any]], recorded: Any = None
    ) -> None:
        self._stored_in().delete(value, keep=recorded)

    def retire(
        self, previous: dict[str, dict[str, Any]], current: dict[str, dict[str, Any]]
    ) -> None:
        self._stored_in().delete(previous, keep=current)

    def relate(
        self,
        version: ObjectVersion,
        result: imaging.Rendered,
        seen: dict[str, Any] | None,
    ) -> Related | None:
        """Whether the picture duplicates an earlier one of the app's (``duplicates``)."""
        if self._duplicates is None:
            return None
        return self._duplicates.relate(version, result, seen)

    def _stored_in(self) -> RenditionsBucket:
        if self._bucket is None:
            raise RuntimeError("this RenditionsWork was made without a bucket: it stores nothing")
        return self._bucket


class MetadataWork:
    """Metadata half: what the image is (dimensions, format, EXIF selection, hash...), from the
    header and a SHA-256 taken while the object downloads: no pixel is decoded."""

    half = Half.METADATA
    hash_while_reading = True
    # One download and a hash, nothing outside the item: a first delivery writes straight away.
    reads_first = False
    settings: str | None = None  # no settings that a reprocess would bring up to date

    def __init__(self, limits: imaging.Limits, *, include_gps: bool = False) -> None:
        self._limits = limits
        self._include_gps = include_gps

    def produce(self, data: bytes) -> imaging.Produced:
        return imaging.describe(
            data,
            limits=self._limits,
            include_gps=self._include_gps,
            sha256=getattr(data, "sha256", None),  # objects.Downloaded
        )

    def store(
        self, version: ObjectVersion, result: imaging.Rendered, existing: Any = None
    ) -> dict[str, Any]:
        record = result.info.to_dict()
        for name in PREVIEW_FIELDS:  # the renditions half's (PREVIEW_ATTRIBUTE)
            record.pop(name)
        return record

    def attributes(self, result: imaging.Rendered) -> dict[str, Any]:
        return {}

    def for_item(self, item: dict[str, Any] | None) -> MetadataWork:
        """The same for every image."""
        return self

    def discard(self, version: ObjectVersion, value: dict[str, Any], recorded: Any = None) -> None:
        """Nothing lives outside the media item."""

    def retire(self, previous: dict[str, Any], current: dict[str, Any]) -> None:
        """Nothing lives outside the media item."""

    def relate(self, version: ObjectVersion, result: imaging.Rendered, seen: Any) -> None:
        """The picture's hash is the renditions half's: nothing to relate."""


def _fraction(value: float) -> float:
    """A 0-1 coordinate as items and events keep it: four decimals (a tenth of a pixel of a
    1000 px picture), so that each takes a few bytes of the item, not seventeen digits."""
    return round(float(value), 4)
