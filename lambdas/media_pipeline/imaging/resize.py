"""Stage 3: rendition sizes and high-quality, fast downscaling.

:func:`shrink` is Pillow's LANCZOS with three things added for speed that keep it looking like a
single LANCZOS resize of the whole image (the tests hold it to SSIM >= 0.99 against one):

* an exact integer :meth:`~PIL.Image.Image.reduce` first when shrinking by a large factor (as
  Pillow's ``reducing_gap``), with the remaining box kept fractional so geometry stays exact;
* alpha premultiplied once for the whole step (Pillow would redo it for every call);
* big outputs resampled as horizontal strips on two threads (Pillow releases the GIL while
  resampling). The strips depend on the sizes alone, never on the CPU count or on timing, so
  the bytes are the same on every run and machine. (Each strip places its filters from its own
  box: floating-point rounding can move a rare pixel by one level against an unsplit resize.)
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from types import ModuleType
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

if TYPE_CHECKING:
    from concurrent.futures import Executor

from PIL import Image

REDUCING_GAP = 2.0
"""After reduce(), LANCZOS still shrinks by at least this factor: Pillow's thumbnail() default.
Larger is closer to a pure LANCZOS resize, smaller is faster but lets the box filter of
reduce() alias fine detail (1.9, which turns the common 3.9x shrink of a 12 MP image into
reduce(2) + LANCZOS, saved ~35 ms on a 12 MP PNG but made its 1024 px WebP ~25% bigger)."""

STRIPS = 2
_PARALLEL_MIN_PIXELS = 128 * 128  # output area below which threads cost more than they save
_PREMULTIPLIED = {"RGBA": "RGBa", "LA": "La"}
_NO_REDUCE = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})  # Pillow cannot reduce() these


def fit(size: tuple[int, int], max_edge: int) -> tuple[int, int]:
    """The size whose longest edge is ``max_edge``, aspect kept (nearest pixel, at least 1px).
    Never larger than ``size``: small images keep their size."""
    width, height = size
    longest = max(width, height)
    if longest <= max_edge:
        return size
    if width >= height:
        return max_edge, _scale(height, max_edge, longest)
    return _scale(width, max_edge, longest), max_edge


def _scale(edge: int, numerator: int, denominator: int) -> int:
    """edge * numerator / denominator rounded half up, in exact integer arithmetic, >= 1."""
    return max(1, (2 * edge * numerator + denominator) // (2 * denominator))


def shrink(
    image: Image.Image, size: tuple[int, int], *, vips_min_pixels: int | None = None
) -> Image.Image:
    """``image`` resampled to ``size`` (no larger than it) with LANCZOS; same object if equal.
    Sources of ``vips_min_pixels`` (default :data:`VIPS_MIN_PIXELS`) and more go to libvips."""
    if image.size == size:
        return image
    mode = image.mode
    source = image.convert(_PREMULTIPLIED[mode]) if mode in _PREMULTIPLIED else image
    box = (0.0, 0.0, float(image.width), float(image.height))
    factor_x = max(1, int(image.width / size[0] / REDUCING_GAP))
    factor_y = max(1, int(image.height / size[1] / REDUCING_GAP))
    pixels = source.width * source.height
    if (
        source.mode in _VIPS_BANDS
        and pixels >= (VIPS_MIN_PIXELS if vips_min_pixels is None else vips_min_pixels)
        and pixels * _VIPS_BANDS[source.mode] <= VIPS_MAX_BYTES
    ):
        out = _vips_lanczos(source, size)
        return out.convert(mode) if out.mode != mode else out
    if (factor_x > 1 or factor_y > 1) and mode not in _NO_REDUCE:
        source = source.reduce((factor_x, factor_y))
        box = (0.0, 0.0, image.width / factor_x, image.height / factor_y)
    out = _lanczos(source, size, box)
    return out.convert(mode) if out.mode != mode else out


VIPS_MIN_PIXELS = 1_000_000
"""Sources of at least this many pixels are resampled by libvips (its Lanczos-3 is vectorised:
~3.5x Pillow's on a 12 MP JPEG decoded at 1/2, ~9x on a 12 MP RGBA PNG, same filter, same
reducing gap, SSIM >= 0.99 against Pillow's). Smaller ones stay with Pillow, and so does every
image of a process that meets no large one: loading libvips costs ~15 ms once."""
VIPS_CHAIN_MIN_PIXELS = 400_000
"""The renditions after the first of a large source (libvips loaded for it already) go to libvips
from this many pixels: 1024x683 -> 512x341 takes 2.4 ms there against 6.6 ms in Pillow (RGBA:
2.6 against 8.6), one thread; from 512 px Pillow's reduce() path is faster (0.8 ms to 128 px).
Chosen by the source's size alone, so the same input always gives the same bytes."""
VIPS_MAX_BYTES = 64 * 2**20
"""... and of at most this many bytes of pixels (16 MP RGBA, 22 MP RGB). Handing a source to
libvips copies it (``tobytes``) next to the decoded and premultiplied images; beyond this the
copy would push a worker near its memory (a 49 MP RGBA PNG peaked 712 MB instead of under
512 MB), so larger sources take Pillow's path, whose box reduce comes first and is cheap."""
_VIPS_BANDS = {"L": 1, "La": 2, "RGB": 3, "YCbCr": 3, "RGBa": 4, "RGBX": 4, "CMYK": 4}
"""8-bit modes whose channels resample independently (alpha premultiplied already)."""


@functools.cache
def _pyvips() -> ModuleType:
    import pyvips  # noqa: PLC0415 - loaded when the first large image comes (see VIPS_MIN_PIXELS)

    pyvips.concurrency_set(threads())
    return pyvips


def _vips_lanczos(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """``image`` resampled to ``size`` by libvips: ``resize`` with Lanczos-3, whose reducing gap
    (2.0: a box shrink by int(factor / 2) first) is ours; the threads are the engine's."""
    bands = _VIPS_BANDS[image.mode]
    source = _pyvips().Image.new_from_memory(
        image.tobytes(), image.width, image.height, bands, "uchar"
    )
    out = vips_resample(source, size).write_to_memory()
    return Image.frombuffer(image.mode, size, out, "raw", image.mode, 0, 1)


def vips_resample(image: Any, size: tuple[int, int]) -> Any:
    """The libvips image ``image`` resampled to exactly ``size``: Lanczos-3 after a box shrink
    that leaves ``REDUCING_GAP`` (libvips' ``resize``, the same scheme as :func:`shrink`)."""
    out = image.resize(
        size[0] / image.width, vscale=size[1] / image.height, kernel="lanczos3", gap=REDUCING_GAP
    )
    if (out.width, out.height) != size:  # rounding: never seen, but the size is the contract
        out = out.crop(0, 0, min(out.width, size[0]), min(out.height, size[1])).embed(
            0, 0, size[0], size[1], extend="copy"
        )
    return out


def _lanczos(
    image: Image.Image, size: tuple[int, int], box: tuple[float, float, float, float]
) -> Image.Image:
    width, height = size
    if width * height < _PARALLEL_MIN_PIXELS or height < STRIPS:
        return image.resize(size, Image.Resampling.LANCZOS, box=box)
    left, top, right, bottom = box
    step = (bottom - top) / height
    rows = [height * i // STRIPS for i in range(STRIPS + 1)]

    def strip(index: int) -> Image.Image:
        first, last = rows[index], rows[index + 1]
        strip_box = (left, top + first * step, right, top + last * step)
        return image.resize((width, last - first), Image.Resampling.LANCZOS, box=strip_box)

    out = Image.new(image.mode, size)
    for first, part in zip(rows[:-1], pool().map(strip, range(STRIPS)), strict=True):
        out.paste(part, (0, first))
    out.info = image.info.copy()
    return out


_T = TypeVar("_T")
_T_co = TypeVar("_T_co", covariant=True)


class Job(Protocol[_T_co]):
    """What a runner's ``submit`` returns (a ``Future``, or a job :data:`INLINE` ran)."""

    def result(self) -> _T_co: ...


class Runner(Protocol):
    """Where jobs run: a thread pool (``concurrent.futures``), or :data:`INLINE`."""

    def submit(self, fn: Callable[..., _T], /, *args: Any, **kwargs: Any) -> Job[_T]: ...

    def map(self, fn: Callable[..., _T], /, *iterables: Iterable[Any]) -> Iterator[_T]: ...


class _Done(Generic[_T]):
    """A job run at once: its result, or the error it raised (handed over by ``result()``, as a
    Future does)."""

    def __init__(self, fn: Callable[..., _T], args: tuple[Any, ...], kwargs: dict[str, Any]):
        self._error: BaseException | None = None
        try:
            self._value: _T | None = fn(*args, **kwargs)
        except BaseException as error:  # handed to the caller, as a pool does
            self._value, self._error = None, error

    def result(self) -> _T:
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]


class _Inline:
    """Runs each job at once on the calling thread (the engine on one thread, and small jobs).
    Not a ``concurrent.futures`` executor: that module (with logging, traceback and friends) is
    ~5 ms of a cold start, imported only when a job is big enough for a thread (:func:`pool`)."""

    def submit(self, fn: Callable[..., _T], /, *args: Any, **kwargs: Any) -> _Done[_T]:
        return _Done(fn, args, kwargs)

    def map(self, fn: Callable[..., _T], /, *iterables: Iterable[Any]) -> Iterator[_T]:
        return iter([fn(*args) for args in zip(*iterables, strict=False)])  # eager, as a pool


INLINE: Runner = _Inline()
_threads = [2]  # a cell: set_threads() changes it


def set_threads(count: int) -> None:
    """The threads the engine uses: 2 (the default) resamples big outputs as two strips in
    parallel, hashes large inputs while they decode and encodes each rendition while the next is
    resampled; 1 does all of that on the calling thread, in the same order and with the same
    strips (so the same bytes). make bench compares with libvips at equal threads with it."""
    if count not in (1, 2):
        raise ValueError(f"the engine runs on 1 or 2 threads, not {count}")
    _threads[0] = count
    if _pyvips.cache_info().currsize:
        _pyvips().concurrency_set(count)


def threads() -> int:
    return _threads[0]


def pool() -> Runner:
    """The engine's resampling workers (also hash large inputs while they decode)."""
    return _pool() if threads() > 1 else INLINE


@functools.cache
def _pool() -> Executor:
    from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415 - see _Inline

    return ThreadPoolExecutor(max_workers=STRIPS, thread_name_prefix="imaging")
