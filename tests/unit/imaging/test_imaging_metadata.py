"""The metadata record: what the image is, selected EXIF, never GPS coordinates."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import struct
import zlib

import numpy as np
import pytest
from media_pipeline import imaging
from PIL import ExifTags, Image

from tests.unit.imaging.imaging_support import (
    decoded,
    encoded,
    grey_thumb,
    pixels_never_decoded,
)


def described(data: bytes) -> imaging.ImageInfo:
    outcome = imaging.describe(data)
    assert isinstance(outcome, imaging.Rendered), outcome
    assert outcome.renditions == ()
    return outcome.info


def previewed(data: bytes, specs=imaging.DEFAULT_RENDITIONS) -> imaging.ImageInfo:
    """render()'s record: with the placeholder and dominant colour it makes on the way."""
    outcome = imaging.render(data, specs)
    assert isinstance(outcome, imaging.Rendered), outcome
    return outcome.info


def test_camera_and_capture_time_come_from_exif(corpus_bytes) -> None:
    info = described(corpus_bytes("pillow/flower.jpg"))

    assert info.exif == {
        "camera_make": "Canon",
        "camera_model": "Canon PowerShot S40",
        "taken_at": "2003-12-14T12:01:44",
    }


def test_gps_is_flagged_and_its_coordinates_never_leave(corpus_dir, corpus_bytes) -> None:
    data = corpus_bytes("pillow/exif_gps.jpg")
    with Image.open(corpus_dir / "pillow/exif_gps.jpg") as source:
        gps = source.getexif().get_ifd(ExifTags.IFD.GPSInfo)
    assert gps, "the corpus file carries GPS data"

    info = described(data)
    record = json.dumps(info.to_dict())

    assert info.has_gps is True
    assert info.gps is None
    assert "gps" not in record.lower().replace('"has_gps"', "").replace('"gps": null', "")
    for value in gps.values():
        for part in value if isinstance(value, tuple) else (value,):
            text = str(part)
            if len(text) > 2:  # long enough to be a coordinate, not a version byte
                assert text not in record, f"GPS value {text!r} leaked"
    assert described(corpus_bytes("pillow/flower.jpg")).has_gps is False


def test_exif_strings_are_cleaned_and_only_selected_tags_kept() -> None:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "  ACME\x00\x00 "
    exif[ExifTags.Base.Model] = "Model\x00 9"
    exif[ExifTags.Base.Software] = "\x00\x00"
    exif[ExifTags.Base.Artist] = "Somebody"  # not selected
    exif[ExifTags.Base.ImageDescription] = "holiday at home"  # not selected
    details = exif.get_ifd(ExifTags.IFD.Exif)
    details[ExifTags.Base.DateTimeOriginal] = "2024:02:29 23:59:58"
    details[ExifTags.Base.OffsetTimeOriginal] = "+05:30"
    details[ExifTags.Base.LensModel] = "EF 50mm f/1.8\x00"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (51.0, 28.0, 38.0)
    data = encoded(Image.new("RGB", (40, 30), "teal"), "JPEG", exif=exif)

    info = described(data)

    assert info.exif == {
        "camera_make": "ACME",
        "camera_model": "Model 9",
        "lens_model": "EF 50mm f/1.8",
        "taken_at": "2024-02-29T23:59:58+05:30",
    }
    assert info.has_gps is True
    assert "51.0" not in json.dumps(info.to_dict())


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ("2001:02:03 04:05:06", "2001-02-03T04:05:06"),
        ("0000:00:00 00:00:00", None),
        ("    :  :     :  :  ", None),
        ("yesterday noon", "yesterday noon"),
    ],
)
def test_capture_time_is_iso_8601_when_parseable(stamp: str, expected: str | None) -> None:
    exif = Image.Exif()
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] = stamp
    data = encoded(Image.new("RGB", (8, 8)), "JPEG", exif=exif)

    assert described(data).exif.get("taken_at") == expected


def test_icc_profile_is_described(corpus_bytes) -> None:
    assert described(corpus_bytes("pillow/icc_profile_big.jpg")).icc_profile == "TIFF RGB"
    assert described(corpus_bytes("pillow/icc_profile.png")).icc_profile == "sRGB IEC61966-2.1"
    assert described(corpus_bytes("pillow/flower.jpg")).icc_profile is None


def test_hash_and_size_are_of_the_input_bytes(corpus_bytes) -> None:
    data = corpus_bytes("orientation/Landscape_5.jpg")

    info = described(data)

    assert info.sha256 == hashlib.sha256(data).hexdigest()
    assert info.bytes == len(data)


def test_hash_of_a_large_input_is_right_too(photo_12mp_jpeg: bytes) -> None:
    """Inputs over 1 MiB are hashed on a worker thread while they decode."""
    info = described(photo_12mp_jpeg)

    assert info.sha256 == hashlib.sha256(photo_12mp_jpeg).hexdigest()
    assert (info.width, info.height, info.bytes) == (4000, 3000, len(photo_12mp_jpeg))


@pytest.mark.parametrize(
    ("name", "fields"),
    [
        ("orientation/Landscape_6.jpg", ("JPEG", "RGB", 1800, 1200, 6, 1, False)),
        ("orientation/Landscape_0.jpg", ("JPEG", "RGB", 1800, 1200, None, 1, False)),
        ("orientation/Portrait_5.jpg", ("JPEG", "RGB", 1200, 1800, 5, 1, False)),
        ("pillow/16bit.cropped.tif", ("TIFF", "I;16", 64, 64, None, 1, False)),
        ("pillow/pil_sample_cmyk.jpg", ("JPEG", "CMYK", 100, 100, 1, 1, False)),
        ("pillow/avif_hopper.heif", ("HEIF", "RGB", 128, 128, None, 1, False)),
        ("pillow/avif_rot1mir0.avif", ("AVIF", "RGB", 640, 427, 5, 1, False)),
        ("pillow/chi.gif", ("GIF", "P", 320, 240, None, 31, True)),
        ("pillow/iss634.webp", ("WEBP", "RGBA", 245, 245, None, 42, True)),
        ("pillow/transparent.png", ("PNG", "RGBA", 200, 150, None, 1, True)),
        ("pillow/uncompressed_la.png", ("PNG", "LA", 128, 128, None, 1, True)),
        ("pillow/hopper.bmp", ("BMP", "RGB", 128, 128, None, 1, False)),
        ("pillow/hopper.ico", ("ICO", "RGBA", 16, 16, None, 1, True)),
    ],
)
def test_what_the_image_is(name: str, fields: tuple, corpus_bytes) -> None:
    info = described(corpus_bytes(name))

    assert (
        info.format,
        info.mode,
        info.width,
        info.height,
        info.orientation,
        info.frames,
        info.has_alpha,
    ) == fields
    assert info.animated is (info.frames > 1)


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return (
        struct.pack(">I", len(payload))
        + kind
        + payload
        + struct.pack(">I", zlib.crc32(kind + payload))
    )


def test_png_exif_after_the_image_data_is_read_without_decoding_it() -> None:
    # GIVEN a PNG whose EXIF (orientation 6, a camera) comes after IDAT, where Pillow finds it
    # only once the pixels are decoded
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    exif[ExifTags.Base.Make] = "ACME"
    png = encoded(Image.new("RGB", (40, 30), (10, 200, 30)), "PNG")
    end = png.rindex(b"IEND") - 4
    data = png[:end] + png_chunk(b"eXIf", exif.tobytes()) + png[end:]

    # WHEN it is described, no pixel decoded
    with pixels_never_decoded():
        info = described(data)

    # THEN the record has it, as render()'s (which decoded the image) does
    assert (info.orientation, info.width, info.height) == (6, 30, 40)
    assert info.exif == {"camera_make": "ACME"}
    assert previewed(data)._replace(placeholder=None, dominant_color=None) == info


def test_record_is_plain_json(corpus_bytes) -> None:
    info = described(corpus_bytes("pillow/flower.jpg"))

    record = info.to_dict()

    assert json.loads(json.dumps(record)) == record
    assert set(record) == {
        "width",
        "height",
        "format",
        "mode",
        "frames",
        "animated",
        "orientation",
        "has_alpha",
        "icc_profile",
        "exif",
        "has_gps",
        "sha256",
        "bytes",
        "placeholder",
        "gps",
        "dominant_color",
    }
    assert record["exif"]["camera_make"] == "Canon"


@pytest.mark.parametrize("name", ["pillow/hopper_bad_exif.jpg", "pillow/invalid-exif.jpg"])
def test_broken_exif_leaves_the_fields_out_not_the_image(name: str, corpus_bytes) -> None:
    info = described(corpus_bytes(name))

    assert info.exif == {}
    assert isinstance(imaging.render(corpus_bytes(name)), imaging.Rendered)


def placeholder_image(info: imaging.ImageInfo) -> Image.Image:
    prefix = "data:image/webp;base64,"
    assert info.placeholder is not None
    assert info.placeholder.startswith(prefix)
    image = Image.open(io.BytesIO(base64.b64decode(info.placeholder.removeprefix(prefix))))
    image.load()
    return image


@pytest.mark.parametrize("name", ["orientation/Landscape_6.jpg", "orientation/Portrait_8.jpg"])
def test_placeholder_is_a_tiny_upright_preview(name: str, corpus_bytes, rendered_ok) -> None:
    info = previewed(corpus_bytes(name))
    tiny = placeholder_image(info)

    assert max(tiny.size) == 24
    assert abs(tiny.width / tiny.height - info.width / info.height) < 0.1
    assert len(info.placeholder) < 1000
    small = decoded(rendered_ok(name).renditions[-1])
    difference = np.abs(grey_thumb(tiny, (12, 8)) - grey_thumb(small, (12, 8))).mean()
    assert difference < 8, "the placeholder is not the picture the renditions show"


@pytest.mark.parametrize(
    "specs",
    [(imaging.RenditionSpec("tiny", 16),), (imaging.RenditionSpec("only", 2000),)],
    ids=["smaller-than-the-placeholder", "one-large"],
)
def test_placeholder_and_colour_do_not_depend_on_the_renditions_asked_for(
    specs, corpus_bytes
) -> None:
    data = corpus_bytes("orientation/Portrait_8.jpg")
    default = previewed(data)

    info = previewed(data, specs)

    assert max(placeholder_image(info).size) == 24
    difference = grey_thumb(placeholder_image(info)) - grey_thumb(placeholder_image(default))
    assert np.abs(difference).mean() < 4
    assert info.dominant_color == default.dominant_color


def test_placeholder_keeps_transparency(corpus_bytes) -> None:
    tiny = placeholder_image(previewed(corpus_bytes("pillow/transparent.png")))
    assert tiny.mode == "RGBA"
    assert tiny.getchannel("A").getextrema()[0] < 128


def test_dominant_color_is_the_most_common_opaque_colour() -> None:
    image = Image.new("RGBA", (300, 200), (20, 40, 220, 0))  # most pixels: transparent blue
    image.paste((200, 30, 30, 255), (0, 0, 120, 200))  # red, opaque
    image.paste((30, 180, 60, 255), (120, 0, 180, 200))  # less green, opaque
    info = previewed(encoded(image, "PNG"))
    assert info.dominant_color is not None
    red, green, blue = (int(info.dominant_color[i : i + 2], 16) for i in (1, 3, 5))
    assert (red > 180, green < 60, blue < 60) == (True, True, True), info.dominant_color


def test_entirely_transparent_image_has_no_dominant_colour() -> None:
    info = previewed(encoded(Image.new("RGBA", (40, 30), (255, 0, 0, 0)), "PNG"))
    assert info.dominant_color is None
    assert info.placeholder is not None


def photo_with_position() -> bytes:
    exif = Image.Exif()
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (51.0, 28.0, 38.0)
    gps[ExifTags.GPS.GPSLongitudeRef] = "W"
    gps[ExifTags.GPS.GPSLongitude] = (0.0, 0.0, 5.31)
    gps[ExifTags.GPS.GPSAltitudeRef] = b"\x00"
    gps[ExifTags.GPS.GPSAltitude] = 35.5
    return encoded(Image.new("RGB", (40, 30), "teal"), "JPEG", exif=exif)


def test_gps_position_only_when_configured() -> None:
    data = photo_with_position()

    assert described(data).gps is None
    outcome = imaging.describe(data, include_gps=True)
    assert isinstance(outcome, imaging.Rendered)
    assert outcome.info.has_gps is True
    assert outcome.info.gps == {"latitude": 51.477222, "longitude": -0.001475, "altitude": 35.5}
    assert json.loads(json.dumps(outcome.info.to_dict()))["gps"] == outcome.info.gps


def test_unreadable_gps_position_is_left_out(corpus_bytes) -> None:
    """The corpus file has a GPS IFD with a latitude but no references: flagged, not guessed."""
    outcome = imaging.describe(corpus_bytes("pillow/exif_gps.jpg"), include_gps=True)
    assert isinstance(outcome, imaging.Rendered)
    assert outcome.info.has_gps is True
    assert outcome.info.gps is None
