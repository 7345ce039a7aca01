#!/usr/bin/env python3
"""Regenerate tests/data/thumbhash/: fixed pictures and what the reference ThumbHash encoder
(Evan Wallace's own ``thumbhash`` package on npm, ``rgbaToThumbHash``) makes of them, which
``tests/unit/imaging/test_thumbhash.py`` holds ``imaging.thumbhash`` to.

    python scripts/thumbhash_vectors.py      # needs node and npm (installs thumbhash@0.1.1
                                             # into a temporary directory)

The pictures: the engine's ThumbHash source of every sample that renders (the 64 px preview
source reduced to 32 px: what ``render()`` encodes), plus made-up ones for the edges of the
format (alpha gradients, 1x1, 100x7, 7x100, 100x100). Each is kept as an RGBA PNG (lossless:
the exact pixels both encoders read) beside ``vectors.json``, with what the reference decoder
(``thumbHashToRGBA``) draws from the reference hash (``*.decoded.png``).
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lambdas"))

from media_pipeline import imaging
from media_pipeline.imaging import preview, thumbhash
from media_pipeline.imaging.engine import rendition_images

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "data" / "thumbhash"
REFERENCE = "thumbhash@0.1.1"
NODE = """
import fs from 'fs';
import { rgbaToThumbHash, thumbHashToRGBA } from 'thumbhash';
const inputs = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const out = {};
for (const [name, { w, h, rgba }] of Object.entries(inputs)) {
  const hash = rgbaToThumbHash(w, h, Uint8Array.from(rgba));
  const decoded = thumbHashToRGBA(hash);
  out[name] = {
    hash: Buffer.from(hash).toString('base64'),
    decoded: { w: decoded.w, h: decoded.h, rgba: Array.from(decoded.rgba) },
  };
}
console.log(JSON.stringify(out));
"""


def made_up() -> dict[str, Image.Image]:
    pictures: dict[str, Image.Image] = {}
    gradient = Image.new("RGBA", (100, 100))
    gradient.putdata(
        [(x * 2, y * 2, 255 - x - y, min(255, x * 3)) for y in range(100) for x in range(100)]
    )
    pictures["made-alpha-gradient-100x100"] = gradient
    disc = Image.new("RGBA", (60, 40), (0, 0, 0, 0))
    ImageDraw.Draw(disc).ellipse((5, 5, 45, 35), fill=(220, 40, 30, 255))
    pictures["made-red-disc-on-clear-60x40"] = disc
    pictures["made-1x1"] = Image.new("RGB", (1, 1), (12, 200, 90))
    wide = Image.new("RGB", (100, 7))
    wide.putdata([(x * 2, 255 - x * 2, (x * 7) % 256) for y in range(7) for x in range(100)])
    pictures["made-stripe-100x7"] = wide
    pictures["made-stripe-7x100"] = wide.transpose(Image.Transpose.ROTATE_90)
    return pictures


def sample_sources() -> dict[str, Image.Image]:
    pictures = {}
    specs = (*imaging.DEFAULT_RENDITIONS, imaging.RenditionSpec("preview", preview.SOURCE_EDGE))
    for path in sorted((ROOT / "samples").iterdir()):
        if path.suffix in (".csv", ".md", ".txt"):
            continue
        result = rendition_images(path.read_bytes(), specs)
        if isinstance(result, imaging.Rejected):
            continue
        pictures[f"sample-{path.stem}"] = thumbhash.source(result[1][-1])
    return pictures


def main() -> int:
    pictures = {**sample_sources(), **made_up()}
    OUT.mkdir(parents=True, exist_ok=True)
    inputs = {}
    for name, picture in pictures.items():
        rgba = picture.convert("RGBA")
        rgba.save(OUT / f"{name}.png")
        inputs[name] = {"w": rgba.width, "h": rgba.height, "rgba": list(rgba.tobytes())}
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--silent", REFERENCE],
            cwd=tmp,
            check=True,
        )
        (Path(tmp) / "inputs.json").write_text(json.dumps(inputs))
        (Path(tmp) / "encode.mjs").write_text(NODE)
        done = subprocess.run(
            ["node", "encode.mjs", "inputs.json"],
            cwd=tmp,
            check=True,
            capture_output=True,
            text=True,
        )
    results = json.loads(done.stdout)
    hashes = {name: result["hash"] for name, result in results.items()}
    for name, result in results.items():
        decoded = result["decoded"]
        Image.frombytes("RGBA", (decoded["w"], decoded["h"]), bytes(decoded["rgba"])).save(
            OUT / f"{name}.decoded.png"
        )
    vectors = {
        "reference": f"npm {REFERENCE} (github.com/evanw/thumbhash): rgbaToThumbHash of each"
        " file, and thumbHashToRGBA of that hash (decoded)",
        "vectors": {
            name: {
                "file": f"{name}.png",
                "thumbhash": hashes[name],
                "decoded": f"{name}.decoded.png",
            }
            for name in sorted(hashes)
        },
    }
    (OUT / "vectors.json").write_text(json.dumps(vectors, indent=2) + "\n")
    for name in sorted(hashes):
        print(f"{name:40} {hashes[name]} ({len(base64.b64decode(hashes[name]))} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
