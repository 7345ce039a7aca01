"""The browser demo (web/, served by scripts/web.py) in headless Chromium on the local stack:
pick images, watch them upload with presigned POSTs, see the renditions the pipeline made and the
image as an app shows it (a ``<picture>`` of the CDN's URLs).

Needs Debian's chromium and playwright-core from npm, both installed by `make browser`
(which `.ci/run` runs); skipped with one line if they are not there.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from devstack import stack

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


@pytest.fixture(scope="module")
def web_page(local_stack):
    if not (Path(CHROMIUM).is_file() and shutil.which("node")):
        pytest.skip(f"no browser: {CHROMIUM} or node missing (run `make browser`)")
    if not (ROOT / "node_modules" / "playwright-core").is_dir():
        pytest.skip("playwright-core is not installed (run `make browser`)")
    port = stack.web_port(local_stack.port)
    env = {**os.environ, "DEVSTACK_STATE_DIR": str(local_stack.state_dir)}
    server = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "scripts" / "web.py"),
            *("--port", str(port), "--watch-pid", str(os.getpid()), "--exit-after", "600"),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 15
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                pytest.fail(f"scripts/web.py did not start on port {port}")
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}/"
    server.terminate()
    server.wait(timeout=10)


@pytest.mark.embedded_only("make web serves the page for the embedded stack")
def test_the_page_uploads_picked_images_and_shows_their_renditions(web_page):
    files = [SAMPLES / "landscape-exif-rotated.jpg", SAMPLES / "transparent.png"]
    files.append(SAMPLES / "broken.jpg")
    result = subprocess.run(
        ["node", str(ROOT / "tests" / "e2e" / "browser" / "drive.mjs"), web_page]
        + [str(f) for f in files],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    shown = {card["name"]: card for card in json.loads(result.stdout)["images"]}

    assert set(shown) == {f.name for f in files}
    for name in ("landscape-exif-rotated.jpg", "transparent.png"):
        card = shown[name]
        assert card["status"] == "READY", card
        assert {r["name"] for r in card["renditions"]} == {"large", "medium", "small", "square"}
        for rendition in card["renditions"]:
            # the browser fetched each presigned URL and decoded an image of the stated size
            assert rendition["natural_width"] > 0, rendition
            assert (rendition["natural_width"], rendition["natural_height"]) == (
                rendition["width"],
                rendition["height"],
            )
    # AND the picture: Chromium took WebP from the CDN (the photo's alternate, the stack's extra
    # format; the transparent PNG's own rendition format), at a width it chose from the srcset,
    # after showing the placeholder
    photo, transparent = shown["landscape-exif-rotated.jpg"], shown["transparent.png"]
    assert [source["type"] for source in photo["picture"]["sources"]] == ["image/webp"]
    assert transparent["picture"]["sources"] == []  # already WebP: no alternate in it
    for picture, srcset in (
        (photo["picture"], photo["picture"]["sources"][0]["srcset"]),
        (transparent["picture"], transparent["picture"]["img_srcset"]),
    ):
        offered = [entry.rsplit(" ", 1)[0] for entry in srcset.split(", ")]
        assert picture["current_src"] in offered, picture
        assert urlsplit(picture["current_src"]).path.endswith(".webp"), picture
        assert picture["natural_width"] > 0, picture
        assert picture["placeholder"] == "replaced", picture
        # the ThumbHash, drawn by the page (web/thumbhash.js) at the picture's aspect ratio
        assert picture["placeholder_kind"] == "thumbhash", picture
    # 1800x1200 upright: landscape, at the hash's approximate 7:5
    assert photo["picture"]["placeholder_size"] == "32x23"
    assert transparent["picture"]["placeholder_size"] is not None
    assert shown["broken.jpg"]["status"] == "FAILED"
    assert shown["broken.jpg"]["picture"] is None
    assert shown["broken.jpg"]["detail"].startswith("corrupt:")
