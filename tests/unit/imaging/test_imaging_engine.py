"""The engine's own bookkeeping between resampling and encoding."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
from concurrent.futures import Executor, Future
from pathlib import Path

import pytest
from media_pipeline.imaging import engine, resize
from media_pipeline.imaging.model import EncodeOptions, RenditionSpec
from PIL import Image

SAMPLE = Path(__file__).resolve().parents[3] / "samples" / "landscape-exif-rotated.jpg"
LAMBDAS = Path(__file__).resolve().parents[3] / "lambdas"
ENCODE_ALL = engine.encode_all
SPECS = (RenditionSpec("large", 1024), RenditionSpec("medium", 512), RenditionSpec("small", 128))


class EncodeAtOnce(Executor):
    """Each encode done before the next rendition is resampled: the timing of an idle encoder,
    under which a finished rendition is freed at once and Python reuses its id()."""

    def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def]
        future: Future = Future()
        future.set_result(fn(*args, **kwargs))
        return future


def test_each_rendition_is_encoded_from_its_own_image_however_fast_encoding_is(monkeypatch):
    # A regression: renditions were told apart by id(); with the chain holding only the image
    # before, a finished rendition was freed, its id() reused, and "small" came out 1024 px wide.
    monkeypatch.setattr(engine, "encoders", EncodeAtOnce)

    def chain(decoded, specs):  # the real chain's shape: each image resized from the one before
        image = None
        for index, spec in enumerate(specs):
            size = (spec.max_edge, spec.max_edge // 2)
            image = Image.new("RGB", size) if image is None else image.resize(size)
            yield index, image

    monkeypatch.setattr(engine, "_chain", chain)
    specs = tuple(RenditionSpec(f"w{edge}", edge) for edge in (64, 32, 16, 8))
    for _ in range(50):
        outcome = engine.render(SAMPLE.read_bytes(), specs)
        assert [r.width for r in outcome.renditions] == [64, 32, 16, 8]


def test_specs_of_the_same_size_share_one_encode(monkeypatch):
    calls = []
    monkeypatch.setattr(engine, "encoders", EncodeAtOnce)
    monkeypatch.setattr(engine, "encode_all", lambda *a: calls.append(a[1].size) or ENCODE_ALL(*a))
    specs = (*SPECS, RenditionSpec("huge", 4096), RenditionSpec("also-small", 128))
    outcome = engine.render(SAMPLE.read_bytes(), specs)
    widths = {r.name: r.width for r in outcome.renditions}
    assert widths == {"large": 1024, "medium": 512, "small": 128, "huge": 1800, "also-small": 128}
    assert sorted(calls) == sorted([(1800, 1200), (1024, 683), (512, 341), (128, 85)])


def test_one_thread_makes_the_same_bytes_as_two(photo_12mp_jpeg, corpus_bytes):
    """make bench compares with libvips at equal threads: the engine on one thread must be the
    same engine (the same strips, the same order), only slower."""
    inputs = (photo_12mp_jpeg, corpus_bytes("pillow/transparent.png"), SAMPLE.read_bytes())
    two = [engine.render(data) for data in inputs]
    resize.set_threads(1)
    try:
        one = [engine.render(data) for data in inputs]
        assert resize.pool() is resize.INLINE
        assert engine.encoders() is resize.INLINE
    finally:
        resize.set_threads(2)
    assert one == two
    assert resize.pool() is not resize.INLINE


IMPORTS_PROBE = """
import json, sys
from pathlib import Path
import pytest
from PIL import Image
from media_pipeline import imaging
loaded = {}
for name in sys.argv[1:]:
    outcome = imaging.render(Path(name).read_bytes())
    assert isinstance(outcome, imaging.Rendered), outcome
    loaded[Path(name).name] = {
        "heif": "pillow_heif" in sys.modules,
        "avif": "PIL.AvifImagePlugin" in sys.modules,
        "every_plugin": Image._initialized > 1,
        "thread_pool": "concurrent.futures" in sys.modules,
    }
print(json.dumps(loaded))
"""


def test_a_cold_start_imports_what_the_formats_met_need(tmp_path):
    """libheif and libavif take tens of ms to load: paid only when such a file comes; small
    images start no thread pool (concurrent.futures)."""
    samples = SAMPLE.parent
    names = ["transparent.png", "cmyk.jpg", "flower.webp", "iphone-style.heif"]
    done = subprocess.run(
        [sys.executable, "-c", IMPORTS_PROBE, *(str(samples / name) for name in names)],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(LAMBDAS)},  # this checkout's engine
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout)
    nothing = {"heif": False, "avif": False, "every_plugin": False, "thread_pool": False}
    assert loaded["transparent.png"] == nothing  # and its WebP rendition did not need init()
    assert loaded["cmyk.jpg"] == loaded["flower.webp"] == nothing
    assert loaded["iphone-style.heif"]["heif"] is True
    assert loaded["iphone-style.heif"]["every_plugin"] is False


def test_the_thumbnail_half_does_not_hash_what_the_metadata_half_hashes():
    data = SAMPLE.read_bytes()

    hashed, unhashed = engine.render(data), engine.render(data, sha256=False)

    assert unhashed.info.sha256 == ""
    assert hashed.info.sha256 == hashlib.sha256(data).hexdigest()
    assert unhashed.renditions == hashed.renditions


def test_extra_formats_make_alternates_of_every_rendition(corpus_bytes):
    options = EncodeOptions(extra_formats=("AVIF", "WEBP"))
    outcome = engine.render(SAMPLE.read_bytes(), SPECS, options=options)
    assert [r.format for r in outcome.renditions] == ["JPEG"] * len(SPECS)
    assert [(r.name, r.format) for r in outcome.alternates] == [
        (spec.name, image_format) for spec in SPECS for image_format in ("AVIF", "WEBP")
    ]
    sizes = {r.name: (r.width, r.height) for r in outcome.renditions}
    for alternate in outcome.alternates:
        assert (alternate.width, alternate.height) == sizes[alternate.name]
        with Image.open(io.BytesIO(alternate.data)) as image:
            assert image.format == alternate.format
            assert image.size == sizes[alternate.name]
    # a transparent image's primary format is WebP already: only AVIF is added, with alpha
    transparent = engine.render(corpus_bytes("pillow/transparent.png"), SPECS, options=options)
    assert {r.format for r in transparent.renditions} == {"WEBP"}
    assert {r.format for r in transparent.alternates} == {"AVIF"}
    with Image.open(io.BytesIO(transparent.alternates[0].data)) as image:
        assert image.mode == "RGBA"
    # and none without extra formats
    assert engine.render(SAMPLE.read_bytes(), SPECS).alternates == ()


def test_extra_formats_are_checked():
    with pytest.raises(ValueError, match="extra_formats"):
        EncodeOptions(extra_formats=("JPEG",))
    with pytest.raises(ValueError, match="extra_formats"):
        EncodeOptions(extra_formats=("WEBP", "WEBP"))
    assert EncodeOptions(extra_formats=("AVIF",)).formats(alpha=True) == ("WEBP", "AVIF")
    assert EncodeOptions(opaque_format="AVIF", extra_formats=("AVIF", "WEBP")).formats(
        alpha=False
    ) == ("AVIF", "WEBP")
