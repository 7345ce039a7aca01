"""The engine's entry points: :func:`render`, :func:`describe` and, for tests and diagnostics,
:func:`rendition_images` (the renditions before encoding)."""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from PIL import Image

from media_pipeline.imaging import (
    crops,
    decode,
    duplicates,
    metadata,
    normalise,
    preview,
    resize,
    streamed,
    thumbhash,
)
from media_pipeline.imaging.encode import encode_all
from media_pipeline.imaging.features import CropBox, Features, Focus
from media_pipeline.imaging.model import (
    DEFAULT_RENDITIONS,
    EncodeOptions,
    ImageInfo,
    Limits,
    Produced,
    Rejected,
    Rejection,
    Rendered,
    Rendition,
    RenditionSpec,
)
from media_pipeline.imaging.resize import INLINE, Job, Runner, fit, pool, shrink, threads

if TYPE_CHECKING:
    from concurrent.futures import Executor

_HASH_IN_BACKGROUND = 1 << 20  # bytes; smaller inputs are hashed faster than a hand-off
ENCODE_IN_BACKGROUND = 512 * 512
"""Renditions of at least this many pixels are encoded on a worker thread; a smaller one encodes
in a millisecond or two, less than the hand-off (and, in a fresh process, than starting the
thread pool: a small image never starts one)."""
DRAFT_GAP = 1.75
"""A JPEG is decoded at a DCT scale (1/2, 1/4, 1/8) only if LANCZOS still shrinks the result by
at least this factor to the largest rendition. DCT scaling is a crude filter: fine detail it
aliases must be averaged out by the final filter, or the rendition drifts from a LANCZOS resize
of the full image. Measured SSIM of a noisy photo-like 1024 px rendition: 0.984 with 1.3 left,
0.988 with 1.46 (3000x2000 at 1/2), 0.987 with 1.6, 0.992 with 1.75 and more; 0.975 for a 24 MP
picture with fine stripes at 1/4 (1.46 left). Pillow's thumbnail() and libvips leave 2.0; 1.75
still lets a 12 MP (4000 or 4032 px wide) photo decode at 1/2.
"""


def render(
    data: bytes,
    specs: Sequence[RenditionSpec] = DEFAULT_RENDITIONS,
    *,
    limits: Limits = Limits(),  # noqa: B008 - frozen, immutable default
    options: EncodeOptions = EncodeOptions(),  # noqa: B008
    sha256: bool = True,
    focus: Focus | None = None,
    crop_box: CropBox | None = None,
    features: bool = True,
) -> Produced:
    """Decode ``data`` once and make one rendition per spec (upright, sRGB, 8-bit, no metadata;
    JPEG when opaque, ``options.alpha_format`` when transparent), plus the metadata record with
    the placeholder and dominant colour, made from the smallest renditions for almost nothing.
    ``sha256=False`` leaves the record's hash empty (the thumbnail worker, which stores no
    record: a 20 MB PNG takes ~30 ms to hash).

    Specs with an ``aspect`` are cropped renditions (``crops``), placed around ``focus`` if
    given, else the centre of ``crop_box`` if given, else the point of interest found in the
    pixels; ``crop_box`` also bounds them. ``Rendered.features`` says which focal point was used
    and what each crop shows, with the ThumbHash and the perceptual hash (``features``).
    ``features=False`` skips the ThumbHash, the perceptual hash and the search for a point of
    interest (crops are then centred unless a focus or box is given; ``Rendered.features`` is
    None): the engine as it was before them, for comparisons.

    Returns :class:`Rejected` (corrupt, unsupported, too_large) for any input that cannot make
    renditions; never raises for bad input.
    """
    with decode.pillow_guard(limits):
        try:
            draft_edge = functools.partial(_draft_edge, specs, crop_box)
            with _decoded(data, limits, draft_edge=draft_edge, sha256=sha256) as decoded:
                # Each rendition is encoded on a worker while the next one is resampled. Specs
                # that come out the same size share one image, encoded once (Pillow's save()
                # keeps state on the image, so one image must not be saved by two threads).
                # _Made yields such a shared image for consecutive specs, so comparing with the
                # previous one is enough (an id() would not do: a freed rendition's id is reused).
                jobs: dict[int, Job[tuple[Rendition, ...]]] = {}
                previous: Image.Image | None = None
                made = _Made(decoded, specs, focus, crop_box, analyse=features)
                for index, image in made.images():
                    if image is not previous:
                        big = image.width * image.height >= ENCODE_IN_BACKGROUND
                        job = (encoders() if big else INLINE).submit(encode_all, "", image, options)
                        previous = image
                    jobs[index] = job
                encoded = [
                    [r._replace(name=spec.name) for r in jobs[index].result()]
                    for index, spec in enumerate(specs)
                ]
                return Rendered(
                    decoded.info._replace(**made.preview),
                    tuple(formats[0] for formats in encoded),
                    tuple(r for formats in encoded for r in formats[1:]),
                    made.features,
                )
        except Rejection as rejection:
            return rejection.outcome()


def describe(
    data: bytes,
    *,
    limits: Limits = Limits(),  # noqa: B008
    include_gps: bool = False,
    sha256: str | None = None,
) -> Produced:
    """The metadata record only (``renditions`` is empty; no placeholder or dominant colour:
    :func:`render` makes those), and the GPS position if ``include_gps``.

    Reads the header alone (dimensions, mode, frame table, EXIF, ICC, PNG text chunks) and hashes
    the bytes (unless ``sha256`` is given, e.g. hashed while they were downloaded): no pixel is
    decoded. So it rejects what the header shows (too large, unsupported, a header that does not
    parse); pixel data that does not decode is :func:`render`'s to reject.
    """
    with decode.pillow_guard(limits):
        try:
            image = decode.open_image(data, limits)
            try:
                digest = sha256 or _sha256(data)
                frames, animated = decode.count_frames(image, limits)
                decode.read_png_trailer(image, data, limits)
                exif = metadata.read_exif(image)
                info = metadata.image_info(
                    image,
                    exif,
                    header_size=image.size,
                    frames=frames,
                    animated=animated,
                    sha256=digest if isinstance(digest, str) else digest.result(),
                    size=len(data),
                )
            finally:
                image.close()
            if include_gps and info.has_gps:
                info = info._replace(gps=metadata.gps_position(exif))
            return Rendered(info)
        except Rejection as rejection:
            return rejection.outcome()


def rendition_images(
    data: bytes,
    specs: Sequence[RenditionSpec] = DEFAULT_RENDITIONS,
    *,
    limits: Limits = Limits(),  # noqa: B008
    focus: Focus | None = None,
    crop_box: CropBox | None = None,
) -> tuple[ImageInfo, tuple[Image.Image, ...]] | Rejected:
    """The metadata record and the renditions (cropped ones too) as Pillow images, just before
    encoding.

    Internal (tests compare these with a reference resize); :func:`render` encodes the same
    images.
    """
    with decode.pillow_guard(limits):
        try:
            draft_edge = functools.partial(_draft_edge, specs, crop_box)
            with _decoded(data, limits, draft_edge=draft_edge) as decoded:
                images = dict(_Made(decoded, specs, focus, crop_box).images())
                return decoded.info, tuple(images[index] for index in range(len(specs)))
        except Rejection as rejection:
            return rejection.outcome()


def encoders() -> Runner:
    """Workers encoding finished renditions (libjpeg, libwebp and zlib release the GIL)."""
    return _encoders() if threads() > 1 else INLINE


@functools.cache
def _encoders() -> Executor:
    from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415 - see resize._Inline

    return ThreadPoolExecutor(max_workers=2, thread_name_prefix="imaging-encode")


def _draft_edge(
    specs: Sequence[RenditionSpec], crop_box: CropBox | None, header_size: tuple[int, int]
) -> int:
    """The longest edge of the largest full-picture rendition the chain makes for a picture
    stored at ``header_size``: the largest uncropped spec, the preview source, or what a
    cropped one needs to be cut from (``crops.source_edge``, the same for both orientations)."""
    return max(
        (
            preview.SOURCE_EDGE,
            *(spec.max_edge for spec in specs if spec.aspect is None),
            *(crops.source_edge(s, header_size, crop_box) for s in specs if s.aspect is not None),
        )
    )


class _Made:
    """The finished renditions of one decoded picture, in the order the chain makes them
    (:meth:`images`): the uncropped renditions from the largest down, each from the one before,
    then the cropped ones, each cut from the smallest full-picture rendition still large enough
    (a full-picture step of its own, never encoded, where none is). One more, smallest step at
    the end of the chain is the preview source: the placeholder and dominant colour
    (``preview``), the point of interest (``crops.find_focus``), the ThumbHash and the
    perceptual hash are made from it (``preview`` and ``features`` once :meth:`images` is
    done)."""

    def __init__(
        self,
        decoded: _Decoded,
        specs: Sequence[RenditionSpec],
        focus: Focus | None,
        crop_box: CropBox | None,
        *,
        analyse: bool = True,
    ) -> None:
        self._decoded = decoded
        self._specs = specs
        self._focus = focus
        self._crop_box = crop_box
        self._analyse = analyse
        self.preview: dict[str, str | None] = {}
        self.features: Features | None = None

    def images(self) -> Iterator[tuple[int, Image.Image]]:
        """(spec index, finished image) for every spec."""
        specs, box = self._specs, self._crop_box
        upright = (self._decoded.info.width, self._decoded.info.height)
        header = self._decoded.header_size
        cropped = [i for i, spec in enumerate(specs) if spec.aspect is not None]
        # The full-picture steps: uncropped specs, sources for crops that need more than any of
        # them (one step serves every crop it is large enough for), the preview source.
        steps = [spec for spec in specs if spec.aspect is None]
        roles: list[int | None] = [i for i, spec in enumerate(specs) if spec.aspect is None]
        needs = {i: crops.source_edge(specs[i], header, box) for i in cropped}
        for need in sorted(set(needs.values()), reverse=True):
            if not any(step.max_edge >= need for step in steps):
                steps.append(RenditionSpec("crop-source", need))
                roles.append(None)
        steps.append(RenditionSpec("preview", preview.SOURCE_EDGE))
        roles.append(None)
        sources = {
            i: min(
                (s for s in range(len(steps)) if steps[s].max_edge >= needs[i]),
                key=lambda s: steps[s].max_edge,
            )
            for i in cropped
        }
        # Crops are shrunk as the chain's later steps are: by libvips from a large source.
        large = self._decoded.resampled or math.prod(self._decoded.image.size) >= (
            resize.VIPS_MIN_PIXELS
        )
        later = resize.VIPS_CHAIN_MIN_PIXELS if large else None
        kept: dict[int, Image.Image] = {}
        small: Image.Image | None = None
        last: Image.Image | None = None
        for step, image in _chain(self._decoded, steps):
            if step in sources.values():
                kept[step] = image
            if step == len(steps) - 1:
                # a copy when a rendition being encoded shares the image (preview saves it)
                small = image.copy() if image is last else image
                continue
            role = roles[step]
            if role is not None:
                last = image
                yield role, image
        assert small is not None
        self.preview = preview.preview(small)

        chosen = crops.focus_for(self._focus, box)
        if chosen is None:
            chosen = crops.find_focus(small) if self._analyse else Focus(0.5, 0.5, "auto")
        windows = {}
        for i in cropped:
            out, extent = crops.plan(specs[i], upright, box)
            window = crops.place(extent, upright, chosen, box)
            image, window = crops.cut(kept[sources[i]], window, upright, out, vips_min_pixels=later)
            windows[specs[i].name] = crops.normalised(window, upright)
            yield i, image
        if self._analyse:
            self.features = Features(
                focus=chosen,
                crop_box=box,
                crops=windows,
                thumbhash=thumbhash.encode_base64(thumbhash.source(small)),
                perceptual_hash=duplicates.perceptual_hash(small),
            )


def _chain(decoded: _Decoded, specs: Sequence[RenditionSpec]) -> Iterator[tuple[int, Image.Image]]:
    """(spec index, finished image) from the largest rendition down: the largest is resampled
    from the decoded image, each smaller one from the one before."""
    if decoded.resampled:  # libvips made the largest rendition: 8-bit L/LA/RGB/RGBA, alpha used
        working = decoded.image
        source = normalise.Source(decoded.orientation, working.info.get("icc_profile") or None)
    else:
        working, source = normalise.prepare(decoded.image, decoded.orientation)
    upright = normalise.upright_size(decoded.header_size, decoded.orientation)
    # A source large enough for libvips: the later, smaller steps may go to it too.
    large = decoded.resampled or working.width * working.height >= resize.VIPS_MIN_PIXELS
    later = resize.VIPS_CHAIN_MIN_PIXELS if large else None
    previous: Image.Image | None = None
    for index in sorted(range(len(specs)), key=lambda i: -specs[i].max_edge):
        size = fit(upright, specs[index].max_edge)
        if previous is None:
            stored = normalise.upright_size(size, decoded.orientation)  # the same swap undoes it
            first = shrink(working, stored)
            previous = normalise.finish(first.copy() if first is working else first, source)
        elif previous.size != size:
            previous = shrink(previous, size, vips_min_pixels=later)
        yield index, previous


class _Decoded:
    """A decoded first frame and what the renditions still need of its header (a plain class:
    see ``normalise.Source``)."""

    __slots__ = ("exif", "header_size", "image", "info", "orientation", "resampled")

    def __init__(
        self,
        image: Image.Image,
        header_size: tuple[int, int],
        orientation: int,
        exif: Image.Exif,
        info: ImageInfo,
        *,
        resampled: bool = False,
    ) -> None:
        self.image = image
        """The first frame, decoded (JPEG possibly at a reduced DCT scale), in stored
        orientation; or, if ``resampled``, already resampled to the largest rendition by libvips
        (``streamed``)."""
        self.header_size = header_size
        """Its size as stored in the file (before any DCT scaling)."""
        self.orientation = orientation
        """EXIF orientation still to apply (1 = none)."""
        self.exif = exif
        self.info = info
        self.resampled = resampled


@contextmanager
def _decoded(
    data: bytes,
    limits: Limits,
    *,
    draft_edge: int | Callable[[tuple[int, int]], int],
    sha256: bool = True,
) -> Iterator[_Decoded]:
    """Open, check, decode (JPEG at the smallest DCT scale still giving ``DRAFT_GAP`` times
    ``draft_edge`` on the longest side) and describe the first frame; the file is closed on the
    way out."""
    image = decode.open_image(data, limits)
    try:
        digest = _sha256(data) if sha256 else ""
        header_size = image.size
        if callable(draft_edge):  # it depends on the picture's size (cropped renditions)
            draft_edge = draft_edge(header_size)
        frames, animated = decode.count_frames(image, limits)
        draft = _draft_size(header_size, draft_edge)
        resampled = None
        if streamed.eligible(image, data, frames, draft):
            decode.read_png_trailer(image, data, limits)  # EXIF after the pixels: orientation
            exif = metadata.read_exif(image)
            orientation = metadata.orientation_to_apply(exif)
            upright = fit(normalise.upright_size(header_size, orientation), draft_edge)
            stored = normalise.upright_size(upright, orientation)
            resampled = streamed.largest_rendition(image, data, stored, draft)
        if resampled is None:
            decode.load(image, draft, limits)
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
        orientation = metadata.orientation_to_apply(exif)
        if resampled is not None:
            yield _Decoded(resampled, header_size, orientation, exif, info, resampled=True)
        else:
            yield _Decoded(image, header_size, orientation, exif, info)
    finally:
        image.close()


def _draft_size(header_size: tuple[int, int], edge: int) -> tuple[int, int]:
    """The least size a JPEG may be decoded at (DCT scaling) to make renditions of ``edge``."""
    width, height = fit(header_size, edge)
    return (
        min(header_size[0], math.ceil(width * DRAFT_GAP)),
        min(header_size[1], math.ceil(height * DRAFT_GAP)),
    )


def _sha256(data: bytes) -> str | Job[str]:
    if len(data) < _HASH_IN_BACKGROUND:
        return hashlib.sha256(data).hexdigest()
    return pool().submit(lambda: hashlib.sha256(data).hexdigest())
