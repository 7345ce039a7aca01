"""Duplicates, as the renditions half finds them: the picture's hash (``render()``'s
``features.perceptual_hash``) indexed and looked up in the app's band index
(``duplicates_index``) before the half is recorded, and what the deployment's policy makes of a
match (``DUPLICATES``: record, reject, off).

In order, for a new image of an app (the item's ``owner``; a direct S3 upload has none and is
not looked at):

1. its band items are written (before the lookup: of two copies processed at once, one sees
   the other, and only the later-created one names the earlier);
2. the 12 band keys are queried, and the closest earlier image within ``THRESHOLD`` is the
   original (ties to the earliest created). An image that is no copy but finds later copies
   that named nothing (they looked before it was indexed) names itself on them once it is
   recorded (``DuplicatesIndex.claim``): the two agree whichever looked first;
3. ``record``: a link ``of#<owner>#<original>`` is written, and the half records
   ``duplicate_of`` with ``perceptual_hash`` and ``hash_bands`` in its one write; once it is
   recorded the original is read again: deleted meanwhile, the image lets go of it (the
   delete, which marks the item before it looks for links, covers the other order).
   ``reject``: the image ends FAILED ``duplicate`` (the original in ``failure.duplicate_of``),
   and its band items are removed: a refused copy is nobody's original.

If the half is not recorded after all (a delete or a newer upload took the item over), what
was written is removed; a delivery that finds the half recorded by another keeps it (the same
keys). Keys an older version of the item indexed and the new one does not are removed once
the new one is recorded.
"""

from __future__ import annotations

from typing import Any

from media_pipeline.duplicates_index import (
    BANDS_ATTRIBUTE,
    DUPLICATE_OF,
    HASH_ATTRIBUTE,
    DuplicatesIndex,
    Match,
    Policy,
    closest,
    later,
)
from media_pipeline.imaging import Rendered, duplicates
from media_pipeline.media_store import MediaTable
from media_pipeline.model import OWNER_ATTRIBUTE, Failure, Half, ObjectVersion, Status
from media_pipeline.pipeline.flow import Related

REASON = "duplicate"


class DuplicateFinder:
    """Finds the original an image duplicates, under the deployment's ``policy``."""

    def __init__(self, index: DuplicatesIndex, table: MediaTable, policy: Policy) -> None:
        self._index = index
        self._table = table
        self._policy = policy

    def relate(
        self, version: ObjectVersion, result: Rendered, seen: dict[str, Any] | None
    ) -> Related | None:
        features = result.features
        if features is None:
            return None
        hash_ = features.perceptual_hash
        seen = seen or {}
        owner, created_at = seen.get(OWNER_ATTRIBUTE), seen.get("created_at")
        image_id = version.id
        old_bands = set(seen.get(BANDS_ATTRIBUTE) or ())
        old_original = (seen.get(DUPLICATE_OF) or {}).get("image_id")
        if self._policy is Policy.OFF or not owner or not created_at:
            return Related(
                attributes={HASH_ATTRIBUTE: hash_, BANDS_ATTRIBUTE: [], DUPLICATE_OF: None},
                recorded=lambda: self._retire(owner, image_id, old_bands, old_original, None),
            )
        bands = duplicates.bands(hash_)
        self._index.add(owner, image_id, hash_, bands, created_at)
        candidates = self._index.candidates(owner, bands)
        compare = {"distance": duplicates.distance, "threshold": duplicates.THRESHOLD}
        match = closest(image_id, created_at, hash_, candidates, **compare)
        copies = later(image_id, created_at, hash_, candidates, **compare)
        if match is not None and self._policy is Policy.REJECT:
            failure = Failure(
                Half.RENDITIONS.stage,
                REASON,
                f"the same picture as image {match.image_id} "
                f"({match.distance} of {duplicates.HASH_BITS} hash bits differ)",
                duplicate_of=match.to_dict(),
            )
            return Related(failure=failure, undo=lambda: self._index.remove(owner, image_id, bands))
        if match is not None:
            self._index.link(owner, match.image_id, image_id, match.distance)

        def undo() -> None:
            self._index.remove(owner, image_id, bands)
            if match is not None:
                self._index.unlink(owner, match.image_id, [image_id])

        def recorded() -> None:
            self._retire(owner, image_id, old_bands - set(bands), old_original, match)
            if match is not None:
                self._let_go_if_deleted(owner, image_id, match)
            elif self._policy is Policy.RECORD:
                # Later copies recorded before this image was indexed did not see it: an
                # original names them (a copy that names none; their image.ready has gone).
                for copy in copies:
                    self._index.claim(self._table.name, owner, image_id, copy)

        return Related(
            attributes={
                HASH_ATTRIBUTE: hash_,
                BANDS_ATTRIBUTE: list(bands),
                DUPLICATE_OF: match.to_dict() if match else None,
            },
            undo=undo,
            recorded=recorded,
        )

    def _retire(
        self,
        owner: str | None,
        image_id: str,
        stale_bands: set[str],
        old_original: str | None,
        match: Match | None,
    ) -> None:
        """Remove what an older version of the item indexed and this one does not."""
        if not owner:
            return
        if stale_bands:
            self._index.remove(owner, image_id, sorted(stale_bands))
        if old_original and (match is None or match.image_id != old_original):
            self._index.unlink(owner, old_original, [image_id])

    def _let_go_if_deleted(self, owner: str, image_id: str, match: Match) -> None:
        """The original was deleted while this image was being recorded: name it no more."""
        original = self._table.get(match.image_id)
        if original is None or original.get("status") == Status.DELETED:
            self._index.release(self._table.name, image_id, match.image_id)
            self._index.unlink(owner, match.image_id, [image_id])
