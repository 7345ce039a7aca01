"""The engine's entry points: :func:`render`, :func:`describe` and, for tests and diagnostics,
:func:`rendition_images` (the renditions before encoding)."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace

from PIL import Image

from media_pipeline.imaging import decode, metadata, normalise
from media_pipeline.imaging.encode import encode
from media_pipeline.imaging.model import (
    DEFAULT_RENDITIONS,
    EncodeOptions,
    ImageInfo,
    Limits,
    Outcome,
    Rejected,
    Rejection,
    Rendered,
    Rendition,
    RenditionSpec,
)
from media_pipeline.imaging.resize import fit, pool, shrink

_HASH_IN_BACKGROUND = 1 << 20  # bytes; smaller inputs are hashed faster than a hand-off


def render(
    data: bytes,
    specs: Sequence[RenditionSpec] = DEFAULT_RENDITIONS,
    *,
    limits: Limits = Limits(),  # noqa: B008 - frozen, immutable default
    options: EncodeOptions = EncodeOptions(),  # noqa: B008
) -> Outcome:
    """Decode ``data`` once and make one rendition per spec (upright, sRGB, 8-bit, no metadata;
    JPEG when opaque, ``options.alpha_format`` when transparent), plus the metadata record.

    Returns :class:`Rejected` (corrupt, unsupported, too_large) for any input that cannot make
    renditions; never raises for bad input.
    """
    with decode.pillow_guard(limits):
        try:
            with _decoded(data, limits, draft_edge=_largest(specs)) as decoded:
                # Each rendition is encoded on a worker while the next one is resampled. Specs
                # that come out the same size share one image, encoded once (Pillow's save()
                # keeps state on the image, so one image must not be saved by two threads).
                # _chain yields such a shared image for consecutive specs, so comparing with the
                # previous one is enough (an id() would not do: a freed rendition's id is reused).
                jobs: dict[int, Future[Rendition]] = {}
                previous: Image.Image | None = None
                for index, image in _chain(decoded, specs):
                    if image is not previous:
                        job = encoders().submit(encode, "", image, options)
                        previous = image
                    jobs[index] = job
                renditions = tuple(
                    replace(jobs[index].result(), name=spec.name)
                    for index, spec in enumerate(specs)
                )
                return Rendered(decoded.info, renditions)
        except Rejection as rejection:
            return rejection.outcome()


def describe(data: bytes, *, limits: Limits = Limits()) -> Outcome:  # noqa: B008
    """The metadata record only (``renditions`` is empty). Rejects exactly what :func:`render`
    rejects: the first frame is still decoded, JPEG at 1/8 scale."""
    with decode.pillow_guard(limits):
        try:
            with _decoded(data, limits, draft_edge=1) as decoded:
                return Rendered(decoded.info)
        except Rejection as rejection:
            return rejection.outcome()


def rendition_images(
    data: bytes,
    specs: Sequence[RenditionSpec] = DEFAULT_RENDITIONS,
    *,
    limits: Limits = Limits(),  # noqa: B008
) -> tuple[ImageInfo, tuple[Image.Image, ...]] | Rejected:
    """The metadata record and the renditions as Pillow images, just before encoding.

    Internal (tests compare these with a reference resize); :func:`render` encodes the same
    images.
    """
    with decode.pillow_guard(limits):
        try:
            with _decoded(data, limits, draft_edge=_largest(specs)) as decoded:
                images = dict(_chain(decoded, specs))
                return decoded.info, tuple(images[index] for index in range(len(specs)))
        except Rejection as rejection:
            return rejection.outcome()


@functools.cache
def encoders() -> ThreadPoolExecutor:
    """Workers encoding finished renditions (libjpeg, libwebp and zlib release the GIL)."""
    return ThreadPoolExecutor(max_workers=2, thread_name_prefix="imaging-encode")


def _largest(specs: Sequence[RenditionSpec]) -> int:
    return max((spec.max_edge for spec in specs), default=1)


def _chain(decoded: _Decoded, specs: Sequence[RenditionSpec]) -> Iterator[tuple[int, Image.Image]]:
    """(spec index, finished image) from the largest rendition down: the largest is resampled
    from the decoded image, each smaller one from the one before."""
    working, source = normalise.prepare(decoded.image, decoded.orientation)
    upright = normalise.upright_size(decoded.header_size, decoded.orientation)
    previous: Image.Image | None = None
    for index in sorted(range(len(specs)), key=lambda i: -specs[i].max_edge):
        size = fit(upright, specs[index].max_edge)
        if previous is None:
            stored = normalise.upright_size(size, decoded.orientation)  # the same swap undoes it
            first = shrink(working, stored)
            previous = normalise.finish(first.copy() if first is working else first, source)
        elif previous.size != size:
            previous = shrink(previous, size)
        yield index, previous


@dataclass(frozen=True)
class _Decoded:
    image: Image.Image
    """The first frame, decoded (JPEG possibly at a reduced DCT scale), in stored orientation."""
    header_size: tuple[int, int]
    """Its size as stored in the file (before any DCT scaling)."""
    orientation: int
    """EXIF orientation still to apply (1 = none)."""
    info: ImageInfo


@contextmanager
def _decoded(data: bytes, limits: Limits, *, draft_edge: int) -> Iterator[_Decoded]:
    """Open, check, decode (JPEG at the smallest DCT scale still giving ``draft_edge`` on the
    longest side) and describe the first frame; the file is closed on the way out."""
    image = decode.open_image(data, limits)
    try:
        digest = _sha256(data)
        header_size = image.size
        frames, animated = decode.count_frames(image, limits)
        decode.load(image, fit(header_size, draft_edge), limits)
        exif = metadata.read_exif(image)
        info = metadata.image_info(
            image,
            exif,
            header_size=header_size,
            frames=frames,
            animated=animated,
            sha256=digest if isinstance(digest, str) else digest.result(),
            size=len(data),
        )
        yield _Decoded(image, header_size, metadata.orientation_to_apply(exif), info)
    finally:
        image.close()


def _sha256(data: bytes) -> str | Future[str]:
    if len(data) < _HASH_IN_BACKGROUND:
        return hashlib.sha256(data).hexdigest()
    return pool().submit(lambda: hashlib.sha256(data).hexdigest())
