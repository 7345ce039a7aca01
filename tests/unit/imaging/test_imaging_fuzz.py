"""Hostile bytes: mutated corpus files end as Rendered or Rejected, never as an exception, the
same way in render() and describe(), within a bounded amount of memory."""

from __future__ import annotations

import multiprocessing
import resource
import struct
import zlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from media_pipeline import imaging
from PIL import Image

from tests.support import CORPUS
from tests.unit.imaging.imaging_support import encoded

SEEDS = (  # small files of every accepted format and the odd modes, so examples stay fast
    "pillow/flower.jpg",
    "pillow/exif_gps.jpg",
    "pillow/pil_sample_cmyk.jpg",
    "pillow/transparent.png",
    "pillow/p_trns_single.png",
    "pillow/uncompressed_la.png",
    "pillow/apng_dispose_op_background.png",
    "pillow/chi.gif",
    "pillow/flower.webp",
    "pillow/hopper_orientation_6.webp",
    "pillow/hopper.tif",
    "pillow/16bit.cropped.tif",
    "pillow/tiff_strip_cmyk_jpeg.tif",
    "pillow/hopper.bmp",
    "pillow/hopper.ico",
    "pillow/avif_hopper.avif",
    "pillow/avif_star.avifs",
    "pillow/avif_hopper.heif",
)
LIMITS = imaging.Limits(max_pixels=50_000_000)
MEMORY_BOUND_MB = 512

position = st.one_of(st.integers(0, 600), st.integers(0, 1 << 20))  # headers matter most
mutation = st.one_of(
    st.tuples(st.just("flip"), position, st.integers(0, 7)),
    st.tuples(st.just("set"), position, st.sampled_from([0x00, 0x01, 0x7F, 0x80, 0xFF])),
    st.tuples(st.just("insert"), position, st.binary(min_size=1, max_size=16)),
    st.tuples(st.just("delete"), position, st.integers(1, 64)),
    st.tuples(st.just("truncate"), position, st.just(0)),
)


def mutate(data: bytes, mutations: list[tuple[str, int, object]]) -> bytes:
    out = bytearray(data)
    for kind, where, value in mutations:
        if not out:
            break
        at = where % len(out)
        if kind == "flip":
            out[at] ^= 1 << value
        elif kind == "set":
            out[at] = value
        elif kind == "insert":
            out[at:at] = value
        elif kind == "delete":
            del out[at : at + value]
        else:
            del out[at:]
    return bytes(out)


def max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


@pytest.fixture(scope="module")
def seeds() -> dict[str, bytes]:
    if not (CORPUS / "manifest.csv").is_file():
        pytest.skip(f"the shared image corpus is not at {CORPUS}")
    return {name: Path(CORPUS, name).read_bytes() for name in SEEDS}


def assert_settles(data: bytes) -> None:
    rendered = imaging.render(data, limits=LIMITS)
    described = imaging.describe(data, limits=LIMITS)

    assert isinstance(rendered, imaging.Rendered | imaging.Rejected)
    assert isinstance(described, imaging.Rendered | imaging.Rejected)
    if isinstance(described, imaging.Rejected):  # what the header shows, render() sees too
        assert described.reason in ("corrupt", "unsupported", "too_large")
        assert rendered == described
    elif isinstance(rendered, imaging.Rejected):  # the header parses, the pixels do not
        assert rendered.reason in ("corrupt", "too_large"), rendered
    else:  # render() adds the placeholder and dominant colour to the same record
        assert rendered.info.placeholder
        assert rendered.info._replace(placeholder=None, dominant_color=None) == described.info


@settings(
    max_examples=800,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    name=st.sampled_from(SEEDS),
    mutations=st.lists(mutation, min_size=1, max_size=4),
)
def test_mutated_files_end_as_an_outcome(seeds: dict[str, bytes], name: str, mutations) -> None:
    assert_settles(mutate(seeds[name], mutations))


@settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(
    signature=st.sampled_from(
        [
            b"\xff\xd8\xff",
            b"\x89PNG\r\n\x1a\n",
            b"GIF89a",
            b"RIFF\x00\x00\x00\x00WEBPVP8 ",
            b"II*\x00",
            b"MM\x00*",
            b"BM",
            b"\x00\x00\x01\x00",
            b"\x00\x00\x00\x1cftypavif",
            b"\x00\x00\x00\x18ftypheic",
        ]
    ),
    tail=st.binary(max_size=256),
)
def test_a_signature_and_garbage_ends_as_an_outcome(signature: bytes, tail: bytes) -> None:
    assert_settles(signature + tail)


def big_rgba_png(width: int, height: int) -> bytes:
    """An RGBA PNG with its alpha in use, built row by row (no big temporary in this process)."""
    row = b"\x00" + (bytes(range(256)) * (width * 4 // 256 + 1))[: width * 4]
    packer = zlib.compressobj(1)
    pixels = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + b"".join(
        struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        for kind, body in ((b"IHDR", header), (b"IDAT", pixels), (b"IEND", b""))
    )


def render_worst_case() -> tuple[set[str], str | None, float]:
    """The worst case the limits allow: a 49 MP RGBA image with its alpha in use (decoded, then
    premultiplied: two full-size copies at once), and a 49 MP header over a little pixel data;
    the rendition formats, the truncated file's rejection and how far peak memory grew."""
    big = big_rgba_png(7000, 7000)
    before = max_rss_mb()
    rendered = imaging.render(big, limits=LIMITS)
    truncated = imaging.render(big[: len(big) // 50], limits=LIMITS)
    grown = max_rss_mb() - before
    formats = (
        {r.format for r in rendered.renditions} if isinstance(rendered, imaging.Rendered) else set()
    )
    return formats, getattr(truncated, "reason", None), grown


def test_memory_stays_bounded_near_the_pixel_limit() -> None:
    # In a fresh process: the peak is a high-water mark, which an earlier test of this one could
    # have raised past anything this case adds.
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as fresh:
        formats, truncated, grown = fresh.submit(render_worst_case).result(timeout=600)

    assert formats == {"WEBP"}
    assert truncated == "corrupt"
    assert grown < MEMORY_BOUND_MB, f"peak memory grew by {grown:.0f} MB"


def test_bombs_from_the_corpus_are_refused_cheaply(seeds: dict[str, bytes]) -> None:
    before = max_rss_mb()
    for name in ("decompression_bomb.gif", "decompression_bomb.ico", "png_decompression_dos.png"):
        outcome = imaging.render(Path(CORPUS, "pillow", name).read_bytes(), limits=LIMITS)
        assert outcome.reason == "too_large", name

    assert max_rss_mb() - before < 64


def test_many_frames_are_counted_without_decoding_them() -> None:
    frames = [Image.new("RGB", (64, 64), (i, 255 - i, i // 2)) for i in range(200)]
    data = encoded(frames[0], "GIF", save_all=True, append_images=frames[1:])

    outcome = imaging.describe(data)

    assert isinstance(outcome, imaging.Rendered)
    assert outcome.info.frames == 200
