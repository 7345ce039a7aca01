"""Helpers of the image-engine tests (plain functions; the fixtures are in conftest.py).

The corpus and its manifest are in tests/support.py, shared with the other tiers.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from unittest import mock

import numpy as np
from media_pipeline import imaging
from media_pipeline.imaging import decode, metadata, normalise
from PIL import Image, ImageFile


def decoded(rendition: imaging.Rendition) -> Image.Image:
    """A rendition's bytes decoded back, as a client would see them."""
    image = Image.open(io.BytesIO(rendition.data))
    image.load()
    return image


def flatten(image: Image.Image) -> Image.Image:
    """RGB; RGBA composited over mid grey (what is under transparent pixels does not matter)."""
    if image.mode != "RGBA":
        return image.convert("RGB")
    background = Image.new("RGBA", image.size, (128, 128, 128, 255))
    background.alpha_composite(image)
    return background.convert("RGB")


def grey_thumb(image: Image.Image, size: tuple[int, int] = (48, 32)) -> np.ndarray:
    """A tiny greyscale copy as floats, for 'looks like the same picture' comparisons."""
    return np.asarray(flatten(image).convert("L").resize(size, Image.Resampling.BOX), dtype=float)


def reference_rendition(data: bytes, size: tuple[int, int]) -> Image.Image:
    """The slow, obviously right way: full decode (no JPEG draft), normalise at full size
    (orientation, 8-bit, sRGB), one LANCZOS resize straight to ``size`` (no reduce, no chain)."""
    with Image.open(io.BytesIO(data)) as image, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # bad EXIF in the corpus; the engine ignores it too
        image.load()
        orientation = metadata.orientation_to_apply(metadata.read_exif(image))
        working, source = normalise.prepare(image, orientation)
        full = normalise.finish(working.copy(), source)
    return full.resize(size, Image.Resampling.LANCZOS)


def photo_like(width: int, height: int, *, seed: int, noise: float = 8.0) -> Image.Image:
    """A generated RGB picture like a phone photo: smooth gradients, a flat block with hard
    edges and sensor-like noise (the kind of picture the SSIM bar is set for: a grating of
    1-pixel lines, say, scores lower after any DCT-scaled decode or box reduce)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    pixels = np.empty((height, width, 3), np.float32)
    pixels[..., 0] = 127 + 100 * np.sin(x / 97.0) * np.cos(y / 131.0)
    pixels[..., 1] = 255 * x / width
    pixels[..., 2] = 255 * y / height
    pixels[height // 4 : height // 2, width // 4 : width // 2] = (30, 200, 60)
    pixels += rng.normal(0, noise, pixels.shape).astype(np.float32)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def encoded(image: Image.Image, image_format: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, image_format, **options)
    return buffer.getvalue()


class PixelsDecoded(AssertionError):
    """Raised by :func:`pixels_never_decoded` (not one of the errors the engine turns into a
    rejection, so it reaches the test)."""


def _image_file_classes(cls: type = ImageFile.ImageFile) -> Iterator[type]:
    yield cls
    for sub in cls.__subclasses__():
        yield from _image_file_classes(sub)


@contextmanager
def pixels_never_decoded() -> Iterator[None]:
    """Fail the test if any pixel is decoded meanwhile: every image file class's ``load()``
    (Pillow's plugins and pillow-heif's) and Pillow's decoder factory raise."""
    decode.register_heif()

    def refuse(*args: object, **kwargs: object) -> None:
        raise PixelsDecoded("pixels were decoded")

    with ExitStack() as stack:
        stack.enter_context(mock.patch.object(Image, "_getdecoder", refuse))
        for cls in set(_image_file_classes()):
            if "load" in vars(cls):
                stack.enter_context(mock.patch.object(cls, "load", refuse))
        yield
