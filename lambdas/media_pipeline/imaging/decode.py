"""Stage 1: bytes -> an opened, checked and decoded first frame.

Limits come first: the byte size before anything is parsed, the header's width*height before any
pixel is decoded, Pillow's decompression-bomb guard during decoding. Every way Pillow (or
pillow-heif) can fail on hostile or broken bytes is turned into a :class:`Rejection` here, so the
later stages only ever see an image that decoded.
"""

from __future__ import annotations

import functools
import importlib
import io
import re
import struct
import warnings
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from PIL import (
    BmpImagePlugin,
    GifImagePlugin,
    Image,
    ImageFile,
    JpegImagePlugin,
    PngImagePlugin,
    UnidentifiedImageError,
    WebPImagePlugin,
)

from media_pipeline.imaging.model import Limits, Rejection

# Plugins register their format with Image.OPEN when imported, so Image.open() never has to import
# all of Pillow's ~40 plugins (cold starts) to find ours. Image.open() imports the first four anyway
# (Pillow's preinit()), every image's placeholder is a WebP; the others are imported when a file's
# first bytes call for them (and the JPEG opener imports MPO's for multi-picture files itself).
_PLUGINS = (BmpImagePlugin, GifImagePlugin, JpegImagePlugin, PngImagePlugin, WebPImagePlugin)
_LAZY_PLUGINS: tuple[tuple[str, Callable[[bytes], bool]], ...] = (
    ("TiffImagePlugin", lambda prefix: prefix[:2] in (b"II", b"MM")),
    ("IcoImagePlugin", lambda prefix: prefix.startswith(b"\x00\x00\x01\x00")),
    ("AvifImagePlugin", lambda prefix: prefix[4:8] == b"ftyp"),  # libavif: tens of ms to load
)


def import_plugins(prefix: bytes | None) -> None:
    """Import the plugins a file starting with ``prefix`` may need (a superset of what Pillow's
    own signature checks accept), or every plugin of ours if ``prefix`` is None."""
    for module, may_be in _LAZY_PLUGINS:
        if prefix is None or may_be(prefix):
            importlib.import_module(f"PIL.{module}")
    if prefix is None or _may_be_heif(prefix):
        register_heif()


@functools.cache
def register_heif() -> None:
    """HEIF/HEIC through libheif (pillow-heif), imported when a file may need it: libheif and
    its codecs take tens of ms to load, paid by every cold start that imported it up front. No
    embedded thumbnails, depth or auxiliary images: we always decode the primary image itself
    (a thumbnail would not prove the image decodes)."""
    import pillow_heif  # noqa: PLC0415 - deliberately lazy (see above)

    pillow_heif.register_heif_opener(thumbnails=False, depth_images=False, aux_images=False)


def _may_be_heif(prefix: bytes) -> bool:
    """An ISO base media file (``ftyp`` box first): HEIF, or AVIF, which Pillow opens itself."""
    return prefix[4:8] == b"ftyp"


FORMATS: tuple[str, ...] = (
    "JPEG",  # its opener returns MPO for multi-picture files
    "PNG",
    "GIF",
    "WEBP",
    "TIFF",
    "BMP",
    "ICO",
    "AVIF",
    "HEIF",
)
"""Pillow openers the engine uses (JPEG includes MPO, PNG includes APNG). Nothing else is opened.
Imported when a file's first bytes may need them (:func:`import_plugins`)."""

JPEG_FORMATS = frozenset({"JPEG", "MPO"})

# What Pillow and its plugins raise on bytes they cannot make sense of.
DECODE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # incl. UnidentifiedImageError, "image file is truncated", "broken data stream"
    ValueError,
    SyntaxError,  # Pillow's "not a valid <format> file"
    EOFError,
    IndexError,
    KeyError,
    TypeError,
    OverflowError,
    RuntimeError,  # libheif / libavif decoder errors
    struct.error,
    zlib.error,
)
_DECOMPRESSION_LIMITS = ("Decompressed data too large", "Too much memory used in text chunks")
_BOMB_PIXELS = re.compile(r"\((\d+) pixels\)")


@contextmanager
def pillow_guard(limits: Limits) -> Iterator[None]:
    """Pillow's process-wide settings for one call: our pixel limit, strict (non-truncated)
    decoding, decompression-bomb warnings raised as errors and other warnings silenced (bad EXIF
    and the like are not our caller's business). Restored afterwards; one process runs one
    invocation at a time, so this is safe enough without a lock."""
    saved = Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES
    Image.MAX_IMAGE_PIXELS = limits.max_pixels
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES = saved


def open_image(data: bytes, limits: Limits) -> ImageFile.ImageFile:
    """Identify the image and check the limits, without decoding pixels."""
    if len(data) > limits.max_bytes:
        raise Rejection(
            "too_large", f"file is {_bytes(len(data))}, limit {_bytes(limits.max_bytes)}"
        )
    if not data:
        raise Rejection("corrupt", "file is empty (0 bytes)")
    import_plugins(data[:16])
    formats = tuple(name for name in FORMATS if name in Image.OPEN)
    try:
        with warnings.catch_warnings():
            # Pillow's guard stays on inside open() (plugins check frame and icon sizes while
            # parsing), but only its hard error (over twice the limit) stops it there: the check
            # below reports anything over the limit with the image's own dimensions.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=formats)
    except UnidentifiedImageError:
        raise unidentified(data[:16]) from None
    except (Image.DecompressionBombError, *DECODE_ERRORS) as error:
        raise failure("header", error, limits) from None
    width, height = image.size
    if width < 1 or height < 1:
        raise Rejection("corrupt", f"{image.format} header gives an empty image ({width}x{height})")
    if width * height > limits.max_pixels:
        raise Rejection(
            "too_large",
            f"image is {width}x{height} = {_pixels(width * height)}, "
            f"limit {_pixels(limits.max_pixels)}",
        )
    return image


def count_frames(image: ImageFile.ImageFile, limits: Limits) -> tuple[int, bool]:
    """Frame (or page) count and whether the image is animated; leaves it on frame 0.

    Done before loading: counting seeks through GIF and TIFF files, which would throw away a
    frame 0 decoded earlier.
    """
    try:
        frames = int(getattr(image, "n_frames", 1))
        animated = bool(getattr(image, "is_animated", frames > 1))
        if image.tell() != 0:
            image.seek(0)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning, *DECODE_ERRORS) as error:
        raise failure("frame table", error, limits) from None
    return max(frames, 1), animated


def load(image: ImageFile.ImageFile, draft: tuple[int, int] | None, limits: Limits) -> None:
    """Decode the first frame. JPEG is decoded at the smallest DCT scale (1/2, 1/4, 1/8) that
    still gives at least ``draft`` pixels: a fraction of the work of a full decode."""
    if draft and image.format in JPEG_FORMATS:
        image.draft(image.mode, draft)
    try:
        image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning, *DECODE_ERRORS) as error:
        raise failure("image data", error, limits) from None


_PNG_METADATA_CHUNKS = frozenset({b"tEXt", b"zTXt", b"iTXt", b"eXIf"})


def read_png_trailer(image: ImageFile.ImageFile, data: bytes, limits: Limits) -> None:
    """Add the metadata chunks a PNG stores after its image data (EXIF, text: ImageMagick puts
    its orientation there) to ``image.info``, as Pillow does only once the pixels are decoded.

    Chunks are walked by their length fields; no image data is decompressed. Pillow's own chunk
    readers parse them (with its limits on text), and it stops where Pillow stops: at IEND, or at
    the next frame of an animated PNG.
    """
    if image.format != "PNG":
        return
    stream = PngImagePlugin.PngStream(io.BytesIO(data))
    if isinstance(image, PngImagePlugin.PngImageFile) and image.png is not None:
        stream.text_memory = image.png.text_memory  # the limit counts the chunks before IDAT too
    position, after_data = 8, False
    try:
        while position + 8 <= len(data):
            length, chunk = struct.unpack_from(">I4s", data, position)
            position += 8
            if chunk == b"IEND" or (after_data and chunk == b"fcTL" and image.is_animated):
                break
            if chunk in (b"IDAT", b"fdAT"):
                after_data = True
            elif after_data and chunk in _PNG_METADATA_CHUNKS:
                stream.fp.seek(position)
                try:
                    stream.call(chunk, position, length)
                except UnicodeDecodeError:
                    break  # as Pillow's load_end()
            position += length + 4  # data, CRC
    except DECODE_ERRORS as error:
        raise failure("metadata", error, limits) from None
    image.info.update(stream.im_info)


def failure(stage: str, error: BaseException, limits: Limits) -> Rejection:
    """The rejection for an error Pillow raised while reading the ``stage`` of a file."""
    text = str(error) or type(error).__name__
    if isinstance(error, Image.DecompressionBombError | Image.DecompressionBombWarning):
        found = _BOMB_PIXELS.search(text)
        size = _pixels(int(found.group(1))) if found else "too many pixels"
        return Rejection(
            "too_large",
            f"image is {size}, limit {_pixels(limits.max_pixels)} (decompression bomb check)",
        )
    if isinstance(error, ValueError) and text.startswith(_DECOMPRESSION_LIMITS):
        return Rejection("too_large", f"{stage}: compressed metadata expands too far: {text}")
    if isinstance(error, OSError) and text.startswith("decoder ") and "not available" in text:
        return Rejection("unsupported", f"{stage}: {text}")
    return Rejection("corrupt", f"{stage} cannot be decoded: {type(error).__name__}: {text}")


def unidentified(prefix: bytes) -> Rejection:
    """Corrupt or unsupported? Ask Pillow's own format sniffers about the file's first bytes."""
    import_plugins(None)
    for name in FORMATS:
        verdict = _sniff(name, prefix)
        if isinstance(verdict, str):
            return Rejection("unsupported", f"{name}: {verdict}")
        if verdict:
            return Rejection("corrupt", f"has a {name} signature but its header cannot be parsed")
    Image.init()  # every Pillow plugin, only to name what the file is
    for name in Image.OPEN:
        if name not in FORMATS and _sniff(name, prefix):
            return Rejection("unsupported", f"{name} images are not accepted")
    return Rejection("unsupported", f"not an image in an accepted format ({', '.join(FORMATS)})")


def _sniff(name: str, prefix: bytes) -> bool | str:
    accept = Image.OPEN[name][1]
    if accept is None:
        return False
    try:
        return accept(prefix)
    except DECODE_ERRORS:
        return False


def _bytes(count: int) -> str:
    return f"{count / 2**20:.1f} MiB" if count >= 2**20 else f"{count} bytes"


def _pixels(count: int) -> str:
    return f"{count / 1e6:.1f} MP" if count >= 100_000 else f"{count} pixels"
