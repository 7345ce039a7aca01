"""scripts/upload.py against the local stack: uploads over the API, waits, reports, exits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"


def run_cli(local_stack, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DEVSTACK_STATE_DIR": str(local_stack.state_dir)}
    for name in ("MEDIA_API_URL", "MEDIA_API_KEY", "MEDIA_API_CA_BUNDLE"):
        env.pop(name, None)
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "upload.py"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_the_cli_reports_each_result_and_fails_if_any_image_failed(local_stack, outputs):
    result = run_cli(
        local_stack,
        "--json",
        str(SAMPLES / "transparent.png"),
        str(SAMPLES / "broken.jpg"),
        str(SAMPLES / "README.md"),
    )

    assert result.returncode == 1, result.stderr
    png, broken, readme = json.loads(result.stdout)
    assert png["status"] == "READY"
    assert {r["format"] for r in png["renditions"].values()} == {"WEBP"}  # it has alpha
    assert all(r["url"].startswith("https://") for r in png["renditions"].values())
    assert (broken["status"], broken["failure"]["reason"]) == ("FAILED", "corrupt")
    assert readme["status"] == "REFUSED"
    assert "415" in readme["error"]


def test_the_cli_prints_a_table_and_succeeds_when_every_image_is_ready(local_stack, outputs):
    result = run_cli(
        local_stack,
        "--api-url",
        outputs["api_url"],
        "--api-key",
        outputs["api_key"],
        "--ca-bundle",
        str(local_stack.ca_bundle),
        str(SAMPLES / "portrait-exif-rotated.jpg"),
    )

    assert result.returncode == 0, result.stdout + result.stderr
    header, row = result.stdout.strip().splitlines()
    assert header.split()[:4] == ["FILE", "IMAGE", "ID", "STATUS"]
    assert "READY" in row
    assert "large 683x1024 JPEG" in row


def test_the_cli_refuses_a_wrong_api_key(local_stack, outputs):
    result = run_cli(
        local_stack,
        "--api-key",
        "wrong",
        "--api-url",
        outputs["api_url"],
        "--ca-bundle",
        str(local_stack.ca_bundle),
        str(SAMPLES / "flower.webp"),
    )
    assert result.returncode == 1
    assert "HTTP 403: Forbidden" in result.stdout
