#!/usr/bin/env python3
"""Render local image files exactly as the thumbnail and metadata Lambdas do.

    python scripts/render.py FILE... --out DIR [--json]

Each file goes through the workers' own code (media_pipeline.pipeline.halves:
RenditionsWork.produce for the renditions, MetadataWork.produce/store for the metadata record)
with the settings the Lambdas read from their environment: RENDITIONS, JPEG_QUALITY,
WEBP_QUALITY, AVIF_QUALITY, OPAQUE_FORMAT, ALPHA_FORMAT, MAX_UPLOAD_BYTES, MAX_PIXELS and
INCLUDE_GPS, whose defaults are the Terraform defaults. Renditions are written to
DIR/<file stem>-<rendition name>.<ext>.

With --json, one JSON line per input on stdout:
  {"file", "outcome", "reason", "message", "renditions": [{"name", "width", "height", "format",
   "bytes", "path"}], "metadata": {...}}
``outcome`` is "rendered" or "rejected" (``reason`` corrupt, unsupported or too_large, with a
human ``message``; both null when rendered). A rejected image is an outcome, not an error: the
exit status is 0. It is 2 for usage errors: bad arguments or settings, or a FILE that cannot be
read (reported on stderr; the other files are still rendered).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse

# Runnable from a checkout with any Python that has the layer's packages (make install gives
# .venv, where media_pipeline is installed already).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lambdas"))

from media_pipeline import imaging
from media_pipeline.config.env import ConfigError
from media_pipeline.config.rendering import (
    encode_options_from_env,
    include_gps_from_env,
    limits_from_env,
    renditions_from_env,
)
from media_pipeline.pipeline.halves import MetadataWork, RenditionsWork

USAGE_ERROR = 2


class Renderer:
    """The two workers' halves, built as the handlers build them (no AWS clients needed)."""

    def __init__(self, env: dict[str, str], out: Path) -> None:
        limits = limits_from_env(env)
        self.renditions = RenditionsWork(
            None, renditions_from_env(env), limits, encode_options_from_env(env)
        )
        self.metadata = MetadataWork(limits, include_gps=include_gps_from_env(env))
        self.out = out
        self._stems: set[str] = set()

    def run(self, name: str, data: bytes) -> dict[str, Any]:
        produced = self.renditions.produce(data)
        described = self.metadata.produce(data)
        record: dict[str, Any] = {
            "file": name,
            "outcome": "rendered",
            "reason": None,
            "message": None,
            "renditions": [],
            "metadata": {},
        }
        if isinstance(described, imaging.Rendered):
            record["metadata"] = self.metadata.store(None, described)  # type: ignore[arg-type]
        if isinstance(produced, imaging.Rejected):
            record.update(outcome="rejected", reason=produced.reason, message=produced.message)
            return record
        stem = self._stem(Path(name).stem)
        for rendition in produced.renditions:
            path = self.out / f"{stem}-{rendition.name}.{rendition.extension}"
            path.write_bytes(rendition.data)
            record["renditions"].append(
                {
                    "name": rendition.name,
                    "width": rendition.width,
                    "height": rendition.height,
                    "format": rendition.format,
                    "bytes": rendition.size,
                    "path": str(path),
                }
            )
        return record

    def _stem(self, stem: str) -> str:
        """The file's stem, made unique among the inputs (a/x.jpg and b/x.jpg both render)."""
        unique, count = stem, 1
        while unique in self._stems:
            count += 1
            unique = f"{stem}~{count}"
        self._stems.add(unique)
        return unique


def summary(record: dict[str, Any]) -> str:
    if record["outcome"] == "rejected":
        return f"{record['file']}: rejected ({record['reason']}): {record['message']}"
    parts = ", ".join(
        f"{r['name']} {r['width']}x{r['height']} {r['format']} {r['bytes']} B"
        for r in record["renditions"]
    )
    meta = record["metadata"]
    return (
        f"{record['file']}: rendered {meta.get('format')} {meta.get('width')}x"
        f"{meta.get('height')} -> {parts}"
    )


def _json(record: dict[str, Any]) -> str:
    import json  # noqa: PLC0415 - --json alone: start-up is most of a small image's run

    return json.dumps(record)


def parser() -> argparse.ArgumentParser:
    import argparse  # noqa: PLC0415 - see plain_args

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="image files to render")
    parser.add_argument("--out", required=True, type=Path, help="directory for the renditions")
    parser.add_argument("--json", action="store_true", help="one JSON line per input")
    return parser


def plain_args(argv: Sequence[str]) -> SimpleNamespace | None:
    """The arguments of the usual command line, ``FILE... --out DIR [--json]`` (options before
    or after the files, no argument starting with "-"), read as :func:`parser` reads them but
    without argparse: importing it and building the parser is ~22 M instructions (~5 ms), a
    fifth of what a small image's run costs over a bare Pillow script (make bench). None for
    anything else (help, --out=DIR, abbreviations, errors ...): :func:`parser` reads those."""
    files: list[str] = []
    out: str | None = None
    as_json = False
    closed = False  # an option came after the files: argparse takes no more of them
    items = iter(argv)
    for item in items:
        if item == "--out" and out is None:
            out = next(items, "-")
            if out.startswith("-"):
                return None
            closed = bool(files)
        elif item == "--json" and not as_json:
            as_json = True
            closed = bool(files)
        elif item.startswith("-") or closed:
            return None
        else:
            files.append(item)
    if out is None or not files:
        return None
    return SimpleNamespace(files=files, out=Path(out), json=as_json)


def main(argv: Sequence[str] | None = None) -> int:
    args = plain_args(sys.argv[1:] if argv is None else argv) or parser().parse_args(argv)

    try:
        renderer = Renderer(dict(os.environ), args.out)
    except (ConfigError, ValueError) as error:
        parser().error(str(error))
    args.out.mkdir(parents=True, exist_ok=True)

    status = 0
    for name in args.files:
        try:
            data = Path(name).read_bytes()
        except OSError as error:
            print(f"{name}: cannot read: {error.strerror or error}", file=sys.stderr)
            status = USAGE_ERROR
            continue
        record = renderer.run(name, data)
        print(_json(record) if args.json else summary(record), flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
