"""What :func:`media_pipeline.imaging.render` learns about a picture besides its renditions, for
apps to use as the image arrives (issue 20): where its point of interest is and how each cropped
rendition was cut (``crops``), a ThumbHash placeholder (``thumbhash``) and a perceptual hash for
finding near-duplicates (``duplicates``).

Value types only (named tuples, as ``model``): what goes in (:class:`Focus`, :class:`CropBox`,
checked on construction, so an app's values are validated where they are parsed, never inside
``render()``) and what comes out (:class:`Features`). All coordinates are fractions 0-1 of the
*displayed* picture: upright (EXIF orientation applied), x to the right, y down.
"""

from __future__ import annotations

import math
from typing import Any, Literal, NamedTuple

from media_pipeline.imaging.model import _checked

FocusSource = Literal["auto", "given", "crop_box"]
"""Where a focal point came from: found in the pixels (``auto``), given by the app (``given``),
or the centre of the app's crop box (``crop_box``, when a box is given without a point)."""


def _check_fraction(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a number from 0 to 1, not {value!r}")
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be from 0 to 1, not {value!r}")


@_checked
class Focus(NamedTuple):
    """A point of interest: ``x``, ``y`` in 0-1 of the upright picture."""

    x: float
    y: float
    source: FocusSource = "given"

    def _check(self) -> None:
        _check_fraction("focus x", self.x)
        _check_fraction("focus y", self.y)
        if self.source not in ("auto", "given", "crop_box"):
            raise ValueError(f"focus source must be auto, given or crop_box, not {self.source!r}")

    def to_dict(self) -> dict[str, Any]:
        return {"x": float(self.x), "y": float(self.y), "source": self.source}


@_checked
class CropBox(NamedTuple):
    """The part of the upright picture the app chose: cropped renditions are cut from inside it
    (each the largest window of its aspect ratio in the box, around the focal point). Edges in
    0-1, ``left < right``, ``top < bottom``."""

    left: float
    top: float
    right: float
    bottom: float

    def _check(self) -> None:
        for name, value in self._asdict().items():
            _check_fraction(f"crop box {name}", value)
        if not (self.left < self.right and self.top < self.bottom):
            raise ValueError(f"crop box must have left < right and top < bottom, not {self}")

    def to_dict(self) -> dict[str, float]:
        return {name: float(value) for name, value in self._asdict().items()}


Window = tuple[float, float, float, float]
"""``(left, top, right, bottom)`` in 0-1 of the upright picture."""


class Features(NamedTuple):
    """Found by ``render()`` in the first frame (upright, sRGB), beside the renditions."""

    focus: Focus
    """The focal point the cropped renditions were placed around (``source`` says whence)."""
    crop_box: CropBox | None
    """The app's crop box, as given; None when there was none."""
    crops: dict[str, Window]
    """Each cropped rendition's window by name: what part of the picture it shows."""
    thumbhash: str
    """ThumbHash of the picture (``imaging.thumbhash``), base64 (standard alphabet, padded):
    ~25-35 bytes from which an app draws a blurred placeholder with its aspect ratio and
    transparency."""
    perceptual_hash: str
    """128-bit perceptual hash (``imaging.duplicates``), 32 hex digits: near-duplicates of the
    picture (re-encoded, resized, slightly cropped or brightened) differ in few bits."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able copy (plain str/float/dict/list/None values), as a record or an event
        would carry it."""
        return {
            "focus": self.focus.to_dict(),
            "crop_box": None if self.crop_box is None else self.crop_box.to_dict(),
            "crops": {name: list(window) for name, window in self.crops.items()},
            "thumbhash": self.thumbhash,
            "perceptual_hash": self.perceptual_hash,
        }
