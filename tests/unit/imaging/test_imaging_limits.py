"""Limits, rejections and determinism: what is refused, how early, and with what message."""

from __future__ import annotations

import struct
import zlib

import pytest
from media_pipeline import imaging
from PIL import Image, ImageFile

from tests.unit.imaging.imaging_support import encoded, photo_like


def png_header(width: int, height: int) -> bytes:
    """A PNG with a sound header chunk and a few bytes of (undecodable) pixel data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(64)))


@pytest.fixture
def no_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("Image.open() must not be reached")

    monkeypatch.setattr(Image, "open", refuse)


@pytest.mark.usefixtures("no_decoding")
@pytest.mark.parametrize("call", [imaging.render, imaging.describe])
def test_too_many_bytes_is_refused_before_anything_is_parsed(call) -> None:
    outcome = call(b"\xff\xd8\xff" + bytes(2000), limits=imaging.Limits(max_bytes=1000))

    assert outcome == imaging.Rejected("too_large", "file is 2003 bytes, limit 1000 bytes")


def test_byte_limit_message_uses_mebibytes() -> None:
    outcome = imaging.render(bytes(26 * 2**20))

    assert outcome == imaging.Rejected("too_large", "file is 26.0 MiB, limit 25.0 MiB")


@pytest.mark.parametrize("call", [imaging.render, imaging.describe])
def test_too_many_pixels_is_refused_from_the_header(call, corpus_bytes) -> None:
    """truncated_jpeg.jpg has a sound 100x100 header and broken pixel data: a small pixel limit
    must refuse it as too large, which proves the check runs before any decoding."""
    outcome = call(
        corpus_bytes("pillow/truncated_jpeg.jpg"), limits=imaging.Limits(max_pixels=9999)
    )

    assert outcome == imaging.Rejected(
        "too_large", "image is 100x100 = 10000 pixels, limit 9999 pixels"
    )


def test_pixel_limit_message_names_dimensions_and_megapixels() -> None:
    outcome = imaging.render(png_header(9000, 6000))

    assert outcome == imaging.Rejected("too_large", "image is 9000x6000 = 54.0 MP, limit 50.0 MP")


def test_decompression_bombs_are_refused_while_parsing() -> None:
    outcome = imaging.render(png_header(20000, 20000))

    assert isinstance(outcome, imaging.Rejected)
    assert outcome.reason == "too_large"
    assert outcome.message == "image is 400.0 MP, limit 50.0 MP (decompression bomb check)"


def test_pillow_pixel_guard_is_ours_during_a_call_and_restored_after(
    monkeypatch: pytest.MonkeyPatch, corpus_bytes
) -> None:
    seen: list[int | None] = []
    load = ImageFile.ImageFile.load

    def spy(self: ImageFile.ImageFile):
        seen.append(Image.MAX_IMAGE_PIXELS)
        return load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", spy)
    before = Image.MAX_IMAGE_PIXELS

    imaging.render(corpus_bytes("pillow/hopper.bmp"), limits=imaging.Limits(max_pixels=123_456))

    assert seen
    assert set(seen) == {123_456}
    assert before == Image.MAX_IMAGE_PIXELS


@pytest.mark.parametrize(
    "data",
    [
        b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer\n%%EOF\n",
        b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect/></svg>',
        b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>',
        b"just some plain text, definitely not a picture\n" * 3,
        b"8BPS\x00\x01" + bytes(40),  # Photoshop
        b"\x00\x00\x00\x0cjP  \r\n\x87\n" + bytes(40),  # JPEG 2000: Pillow reads it, we do not
    ],
    ids=["pdf", "svg", "xml-svg", "text", "psd", "jpeg2000"],
)
@pytest.mark.parametrize("call", [imaging.render, imaging.describe])
def test_other_formats_are_unsupported(data: bytes, call) -> None:
    outcome = call(data)

    assert isinstance(outcome, imaging.Rejected)
    assert outcome.reason == "unsupported", outcome.message


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            b"GIF89a\x00\x00\x00\x00" + bytes(20),
            "has a GIF signature but its header cannot be parsed",
        ),
        (png_header(10, 10)[:20], "header cannot be decoded: OSError: Truncated File Read"),
    ],
    ids=["gif", "png"],
)
def test_a_known_signature_that_does_not_parse_is_corrupt(data: bytes, message: str) -> None:
    assert imaging.render(data) == imaging.Rejected("corrupt", message)


@pytest.mark.parametrize("data", [b"", b"\xff\xd8\xff\xe0"], ids=["empty", "jpeg-prefix-only"])
def test_nothing_to_decode_is_corrupt(data: bytes) -> None:
    outcome = imaging.render(data)

    assert isinstance(outcome, imaging.Rejected)
    assert outcome.reason == "corrupt"


def test_truncated_pixel_data_is_corrupt_with_a_precise_message(corpus_bytes) -> None:
    outcome = imaging.render(corpus_bytes("pillow/truncated_jpeg.jpg"))

    assert outcome == imaging.Rejected(
        "corrupt",
        "image data cannot be decoded: OSError: image file is truncated (8 bytes not processed)",
    )


@pytest.mark.parametrize(
    "name",
    [
        "orientation/Landscape_8.jpg",
        "pillow/transparent.png",
        "pillow/chi.gif",
        "pillow/pil_sample_cmyk.jpg",
        "pillow/icc_profile_big.jpg",
        "pillow/avif_hopper.heif",
    ],
)
def test_same_input_same_bytes(name: str, corpus_bytes) -> None:
    first = imaging.render(corpus_bytes(name))
    second = imaging.render(corpus_bytes(name))

    assert isinstance(first, imaging.Rendered)
    assert first == second


def test_big_image_renders_the_same_bytes_every_time(photo_12mp_jpeg: bytes) -> None:
    """Threads resample strips of the big ones: the result must not depend on their timing."""
    first = imaging.render(photo_12mp_jpeg)

    assert isinstance(first, imaging.Rendered)
    assert first == imaging.render(photo_12mp_jpeg)


def test_opaque_png_renders_as_jpeg() -> None:
    data = encoded(photo_like(300, 200, seed=1).convert("RGBA"), "PNG")

    outcome = imaging.render(data)

    assert isinstance(outcome, imaging.Rendered)
    assert {r.format for r in outcome.renditions} == {"JPEG"}


@pytest.mark.parametrize(
    "build",
    [
        lambda: imaging.EncodeOptions(alpha_format="GIF"),
        lambda: imaging.EncodeOptions(jpeg_quality=0),
        lambda: imaging.EncodeOptions(webp_quality=101),
        lambda: imaging.RenditionSpec("broken", 0),
        lambda: imaging.Limits(max_pixels=0),
    ],
    ids=["alpha-format", "jpeg-quality", "webp-quality", "max-edge", "limits"],
)
def test_bad_settings_fail_when_made(build) -> None:
    with pytest.raises(ValueError):
        build()
