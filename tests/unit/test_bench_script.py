"""scripts/bench.py runs (a smoke test on one small input; the numbers are make bench's job)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench.py"


def test_quick_bench_prints_a_row_for_each_approach() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--no-cold", "--no-rss"],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    (row,) = [line for line in done.stdout.splitlines() if line.startswith("gen-4mp.webp")]
    timings = row.split("|")[1].replace("*", "").split()
    assert len(timings) == 3
    assert all(float(ms) > 0 for ms in timings)  # engine, tutorial, pyvips
    ssim = [float(score) for score in row.split("|")[-1].split()]
    assert len(ssim) == 3
    assert min(ssim) > 0.9
    assert "gen-4mp.webp:" in done.stdout.split("Targets")[1]
