"""scripts/upload.py against either backend: uploads over the API, waits, reports, exits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import ON_LOCALSTACK

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"


@pytest.fixture(scope="module")
def cli_env(request, outputs) -> dict[str, str]:
    """Where the CLI finds the API by default: the embedded stack's outputs (its state
    directory), or LocalStack's given as MEDIA_API_URL / MEDIA_API_KEY."""
    env = dict(os.environ)
    for name in ("MEDIA_API_URL", "MEDIA_API_KEY", "MEDIA_API_CA_BUNDLE"):
        env.pop(name, None)
    if ON_LOCALSTACK:
        env |= {"MEDIA_API_URL": outputs["api_url"], "MEDIA_API_KEY": outputs["api_key"]}
    else:
        env["DEVSTACK_STATE_DIR"] = str(request.getfixturevalue("local_stack").state_dir)
    return env


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "upload.py"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def trust(ca_bundle: str | None) -> list[str]:
    return ["--ca-bundle", ca_bundle] if ca_bundle else []


def test_the_cli_reports_each_result_and_fails_if_any_image_failed(cli_env, outputs):
    result = run_cli(
        cli_env,
        "--json",
        str(SAMPLES / "transparent.png"),
        str(SAMPLES / "broken.jpg"),
        str(SAMPLES / "README.md"),
    )

    assert result.returncode == 1, result.stderr
    png, broken, readme = json.loads(result.stdout)
    assert png["status"] == "READY"
    assert {r["format"] for r in png["renditions"].values()} == {"WEBP"}  # it has alpha
    scheme = outputs["api_url"].split("://")[0]  # https on the embedded stack, http on LocalStack
    assert all(r["url"].startswith(f"{scheme}://") for r in png["renditions"].values())
    assert (broken["status"], broken["failure"]["reason"]) == ("FAILED", "corrupt")
    assert readme["status"] == "REFUSED"
    assert "415" in readme["error"]


def test_the_cli_prints_a_table_and_succeeds_when_every_image_is_ready(cli_env, outputs, ca_bundle):
    result = run_cli(
        cli_env,
        "--api-url",
        outputs["api_url"],
        "--api-key",
        outputs["api_key"],
        *trust(ca_bundle),
        str(SAMPLES / "portrait-exif-rotated.jpg"),
    )

    assert result.returncode == 0, result.stdout + result.stderr
    header, row = result.stdout.strip().splitlines()
    assert header.split()[:4] == ["FILE", "IMAGE", "ID", "STATUS"]
    assert "READY" in row
    assert "large 683x1024 JPEG" in row


def test_the_cli_refuses_a_wrong_api_key(cli_env, outputs, ca_bundle):
    result = run_cli(
        cli_env,
        "--api-key",
        "wrong",
        "--api-url",
        outputs["api_url"],
        *trust(ca_bundle),
        str(SAMPLES / "flower.webp"),
    )
    assert result.returncode == 1
    assert "HTTP 403: Forbidden" in result.stdout
