"""scripts/quality.py runs (samples only: the figures are make quality's job)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import CORPUS, CORPUS_MISSING

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "quality.py"


@pytest.mark.skipif(not CORPUS.is_dir(), reason=CORPUS_MISSING)
def test_quick_quality_prints_recall_false_positives_bands_and_crops() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick"],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    (all_copies,) = [line for line in out.splitlines() if line.strip().startswith("all copies")]
    assert float(all_copies.split()[-1]) >= 0.9
    (different,) = [line for line in out.splitlines() if "different corpus photos" in line]
    pairs, false_positives = map(int, different.split()[3:5])
    assert pairs == 10  # five sample photos
    assert false_positives == 0
    assert " 12 x 10 " in out
    (engine,) = [line for line in out.splitlines() if line.strip().startswith("engine (")]
    kept, total = map(int, engine.split(")")[1].split()[0].split("/"))
    assert total == 78
    assert kept >= 70
