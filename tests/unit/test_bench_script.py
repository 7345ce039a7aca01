"""scripts/bench.py runs (a smoke test on one small input; the numbers are make bench's job)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench.py"


def test_quick_bench_prints_each_comparison_for_its_input() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--no-cold", "--no-rss"],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("gen-4mp.webp")]
    assert len(rows) == 1
    sections = [
        part.replace("*", "").replace("^", "").replace("x", "").split()
        for part in rows[0].split("|")
    ]
    one, two, tutorial, cpu, ssim = (list(map(float, s)) for s in sections[1:])
    for engine, vips, ratio in (one, two):  # at equal threads: engine ms, pyvips ms, their ratio
        assert engine > 0
        assert vips > 0
        assert abs(ratio - engine / vips) < 0.01
    assert tutorial[0] > 0
    renditions, metadata, share = cpu  # CPU ms per image of each half
    assert renditions > 0
    assert metadata > 0
    assert abs(share - metadata / renditions) < 0.01
    assert len(ssim) == 3
    assert min(ssim) > 0.9
    assert "gen-4mp.webp:" in done.stdout.split("Targets")[1]

    features = done.stdout.split("Crops, ThumbHash and perceptual hash")[1].split("Whole process")[
        0
    ]
    (row,) = [line for line in features.splitlines() if line.strip().startswith("gen-4mp.webp")]
    cells = row.replace("x", "").split()[1:]
    before, with_features, ratio, with_crops, crops_ratio, plain, like_for_like = cells
    assert abs(float(ratio) - float(with_features) / float(before)) < 0.01
    assert abs(float(crops_ratio) - float(with_crops) / float(before)) < 0.01
    assert abs(float(like_for_like) - float(with_crops) / float(plain)) < 0.01
    assert "all inputs (sum)" in features

    whole = done.stdout.split("Whole process")[1]
    (process,) = [line for line in whole.splitlines() if line.strip().startswith("gen-4mp.webp")]
    times = process.split("|")[1].split()
    assert len(times) == 4
    assert all(float(ms) > 0 for ms in times)
    assert "render.py no slower than the tutorial code on any input:" in whole
