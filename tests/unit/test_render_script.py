"""scripts/render.py: the workers' code path on local files, one JSON line per input."""

from __future__ import annotations

import csv
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"
SCRIPT = ROOT / "scripts" / "render.py"


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env=env,
    )


def sample_manifest() -> dict[str, str]:
    with (SAMPLES / "manifest.csv").open(newline="") as handle:
        return {row["file"]: row["expect"] for row in csv.DictReader(handle)}


def test_every_sample_ends_as_its_manifest_says_with_files_as_described(tmp_path: Path) -> None:
    expected = sample_manifest()
    files = [str(SAMPLES / name) for name in expected]
    done = run(*files, "--out", str(tmp_path), "--json")
    assert done.returncode == 0, done.stderr

    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [line["file"] for line in lines] == files  # one line per input, `file` as given
    for line in lines:
        expect = expected[Path(line["file"]).name]
        assert set(line) == {"file", "outcome", "reason", "message", "renditions", "metadata"}
        if expect != "render":
            assert (line["outcome"], f"reject:{line['reason']}") == ("rejected", expect)
            assert line["message"]
            assert line["renditions"] == []
            continue
        assert (line["outcome"], line["reason"], line["message"]) == ("rendered", None, None)
        assert [r["name"] for r in line["renditions"]] == ["large", "medium", "small"]
        meta = line["metadata"]
        assert len(meta["sha256"]) == 64
        assert meta["bytes"] == Path(line["file"]).stat().st_size
        for rendition in line["renditions"]:
            path = Path(rendition["path"])
            assert path.parent == tmp_path
            assert path.stat().st_size == rendition["bytes"]
            with Image.open(path) as image:
                assert image.format == rendition["format"]
                assert image.size == (rendition["width"], rendition["height"])
                assert not image.getexif()
            # renditions keep the upright aspect the metadata reports
            assert (
                abs(rendition["width"] / rendition["height"] - meta["width"] / meta["height"])
                < 0.02
            )


def test_sideways_sample_comes_out_upright_with_terraform_defaults(tmp_path: Path) -> None:
    done = run(str(SAMPLES / "landscape-exif-rotated.jpg"), "--out", str(tmp_path), "--json")
    line = json.loads(done.stdout)
    assert line["metadata"]["orientation"] == 6
    assert [(r["width"], r["height"], r["format"]) for r in line["renditions"]] == [
        (1024, 683, "JPEG"),
        (512, 341, "JPEG"),
        (128, 85, "JPEG"),
    ]


def test_settings_come_from_the_environment_like_the_workers(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "RENDITIONS": "tiny:64", "MAX_PIXELS": "1000"}
    done = run(str(SAMPLES / "flower.webp"), "--out", str(tmp_path), "--json", env=env)
    line = json.loads(done.stdout)
    assert (line["outcome"], line["reason"]) == ("rejected", "too_large")

    env["MAX_PIXELS"] = "50000000"
    done = run(str(SAMPLES / "flower.webp"), "--out", str(tmp_path), "--json", env=env)
    (rendition,) = json.loads(done.stdout)["renditions"]
    assert (rendition["name"], rendition["width"], rendition["height"]) == ("tiny", 64, 48)


def test_same_stem_twice_and_unreadable_files(tmp_path: Path) -> None:
    other = tmp_path / "in"
    other.mkdir()
    copy = other / "flower.webp"
    copy.write_bytes((SAMPLES / "flower.webp").read_bytes())
    out = tmp_path / "out"
    done = run(
        str(SAMPLES / "flower.webp"),
        str(tmp_path / "missing.jpg"),
        str(copy),
        "--out",
        str(out),
        "--json",
    )
    assert done.returncode == 2  # an unreadable input is a usage error, reported on stderr
    assert "missing.jpg: cannot read" in done.stderr
    paths = [r["path"] for line in done.stdout.splitlines() for r in json.loads(line)["renditions"]]
    assert len(paths) == len(set(paths)) == 6


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert run(str(SAMPLES / "cmyk.jpg")).returncode == 2  # --out missing
    env = {"PATH": "/usr/bin:/bin", "JPEG_QUALITY": "many"}
    done = run(str(SAMPLES / "cmyk.jpg"), "--out", str(tmp_path), env=env)
    assert done.returncode == 2
    assert "JPEG_QUALITY" in done.stderr


def load_render() -> ModuleType:
    spec = importlib.util.spec_from_file_location("render_script", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("argv", "plain"),
    [
        (["a.jpg", "--out", "d"], True),
        (["a.jpg", "b c.png", "--out", "d", "--json"], True),
        (["--out", "d", "--json", "a.jpg", "b.jpg"], True),
        (["--json", "a.jpg", "--out", ""], True),
        (["a.jpg", "--out", "d", "b.jpg"], False),  # argparse: unrecognized b.jpg
        (["a.jpg", "--out=d"], False),
        (["a.jpg", "--ou", "d"], False),  # an abbreviation argparse accepts
        (["a.jpg", "--out", "d", "--out", "e"], False),
        (["a.jpg", "--out", "-d"], False),
        (["-", "--out", "d"], False),
        (["--", "a.jpg", "--out", "d"], False),
        (["a.jpg", "--out"], False),
        (["a.jpg"], False),
        (["--out", "d"], False),
        (["--help"], False),
    ],
)
def test_the_usual_command_line_is_read_without_argparse_as_argparse_reads_it(argv, plain):
    render = load_render()
    read = render.plain_args(argv)
    assert (read is not None) is plain
    if read is not None:
        assert vars(read) == vars(render.parser().parse_args(argv))


# Run as make bench runs it: the modules a small image's run ends with.
MODULES_PROBE = """
import runpy, sys
sys.argv = sys.argv[1:]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
except SystemExit as done:
    assert not done.code, done.code
print(" ".join(sorted(sys.modules)))
"""
# What render.py does not need for a small JPEG without an ICC profile: argparse (the usual
# command line), json (no --json), the workers' settings dataclasses, the settings fingerprints
# (json), secrets/random (new item ids), datetime (no EXIF date), S3, threads, LittleCMS, and
# dataclasses itself (with inspect and ast: the engine's value types are named tuples).
NOT_NEEDED = (
    "argparse",
    "dataclasses",
    "inspect",
    "json",
    "media_pipeline.config.workers",
    "secrets",
    "random",
    "datetime",
    "media_pipeline.objects",
    "botocore",
    "concurrent.futures",
    "PIL.ImageCms",
)


def test_a_small_image_starts_no_more_than_the_engine_needs(tmp_path: Path) -> None:
    """make bench compares render.py's whole process with a bare Pillow script: on a small
    image, start-up is most of it (issue 12)."""
    sample = str(SAMPLES / "cmyk.jpg")
    done = subprocess.run(
        [sys.executable, "-c", MODULES_PROBE, str(SCRIPT), sample, "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    modules = set(done.stdout.splitlines()[-1].split())
    assert "media_pipeline.pipeline.halves" in modules  # the workers' code path
    assert sorted(modules.intersection(NOT_NEEDED)) == []
