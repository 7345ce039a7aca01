"""scripts/cost.py: billed Lambda time per image, priced, from the local runtime's journal."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "cost.py"


def journal(path: Path, thumbnail_ms: float, metadata_ms: float) -> Path:
    """Two images: one thumbnail invocation each (the first a cold start), one metadata
    invocation for both, one notifier invocation per image."""
    entries = [
        {"function": "mp-thumbnail", "duration_ms": thumbnail_ms, "init_ms": 500, "items": ["a"]},
        {"function": "mp-thumbnail", "duration_ms": thumbnail_ms, "items": ["b"]},
        {"function": "mp-metadata", "duration_ms": metadata_ms, "items": ["a", "b"]},
        {"function": "mp-notifier", "duration_ms": 9.2, "items": ["s1"]},
        {"function": "mp-notifier", "duration_ms": 9.2, "items": ["s2"]},
        {"function": "mp-api", "duration_ms": 40, "items": []},  # not per image: left out
    ]
    path.write_text("".join(json.dumps(entry) + "\n" for entry in entries))
    return path


def test_cost_per_image_of_each_function_and_against_a_baseline(tmp_path: Path) -> None:
    after = journal(tmp_path / "after.jsonl", thumbnail_ms=99.3, metadata_ms=20)
    before = journal(tmp_path / "before.jsonl", thumbnail_ms=199.3, metadata_ms=300)

    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--journal", str(after), "--baseline", str(before)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr
    rows = {line.split()[0]: line.split()[1:] for line in done.stdout.splitlines()[3:]}
    # thumbnail: (100 + 500 + 100) ms / 2 images at 1024 MB; metadata: 20 ms / 2 at 512 MB
    assert rows["thumbnail"][:3] == ["1024", "2", "350"]
    assert rows["metadata"][:3] == ["512", "1", "10"]
    assert rows["thumbnail"][4] == "450"  # baseline: (200 + 500 + 200) / 2
    assert rows["metadata"][4] == "150"
    thumbnail_usd = 1e6 * (0.350 * 1.0 * 0.0000133334 + 1 * 0.20 / 1e6)
    assert float(rows["thumbnail"][3]) == round(thumbnail_usd, 2)
    total, baseline_total = map(float, rows["Lambda"])
    assert baseline_total > total


def test_cpu_time_per_image_is_priced_at_the_cpu_share_lambda_gives_the_memory() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--cpu-ms", "thumbnail=100", "metadata=100"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr
    rows = {line.split()[0]: line.split()[1:] for line in done.stdout.splitlines()[1:]}
    # 1024 MB is 1024/1769 of a vCPU: 100 ms of CPU bill 173 ms; 512 MB twice as long
    assert rows["thumbnail"][:3] == ["1024", "100.0", "173"]
    assert rows["metadata"][:3] == ["512", "100.0", "346"]
    # CPU-bound work costs the same GB-seconds at either size (below one vCPU)
    assert rows["thumbnail"][3] == rows["metadata"][3] == "2.50"
    assert rows["image"] == ["work", "5.01"]
