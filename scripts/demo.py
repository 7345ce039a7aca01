#!/usr/bin/env python3
"""make demo: the whole product on the embedded local stack, with the sample images.

Brings the stack up (or reuses a running one), uploads every file in samples/, waits for each
one's notification on the app events queue, prints what happened, copies the renditions to out/
for a person to look at, and stops the stack it started (unless --keep). Exits 0 only if every
image ended as samples/manifest.csv says.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import sys
import time
from pathlib import Path

from devstack import stack
from devstack.pipeline import Pipeline

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"
OUT = ROOT / "out"


def expected_outcomes() -> dict[str, str]:
    with (SAMPLES / "manifest.csv").open(newline="") as handle:
        return {row["file"]: row["expect"] for row in csv.DictReader(handle)}


def outcome_of(body: dict) -> str:
    return "render" if body["type"] == "image.ready" else f"reject:{body['failure']['reason']}"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--keep", action="store_true", help="leave the stack running afterwards")
    parser.add_argument(
        "--timeout", type=float, default=120, help="seconds to wait for all notifications"
    )
    args = parser.parse_args()

    started = time.monotonic()
    was_running = stack.running() is not None
    running = stack.up(watch_pid=None if args.keep or was_running else os.getpid())
    try:
        return run_demo(running, args.timeout, started)
    finally:
        if not args.keep and not was_running:
            stack.down()
            print("\nThe stack is stopped (make demo KEEP=1 leaves it running).")
        elif was_running:
            print(f"\nYour stack is still running on {running.endpoint} (make down stops it).")


def run_demo(running: stack.Stack, timeout: float, started: float) -> int:
    pipeline = Pipeline.for_local_stack(running.outputs(), running.endpoint, running.ca_bundle)
    expected = expected_outcomes()
    print(
        f"\n==> uploading {len(expected)} sample images to s3://{pipeline.outputs['uploads_bucket']}"
    )
    uploads = {name: pipeline.upload((SAMPLES / name).read_bytes(), name) for name in expected}
    results = pipeline.wait_for([u.id for u in uploads.values()], timeout=timeout)

    shutil.rmtree(OUT, ignore_errors=True)
    rows, failures = [], []
    for name, upload in uploads.items():
        notification = results[upload.id]
        body = notification.body
        got = outcome_of(body)
        renditions = body["image"]["renditions"]
        metadata = body["image"]["metadata"] or {}
        for rendition_name, rendition in renditions.items():
            target = (
                OUT / Path(name).stem / f"{rendition_name}.{rendition['key'].rsplit('.', 1)[-1]}"
            )
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(pipeline.download(rendition))
        rows.append(
            (
                upload.id[:10],
                name,
                body["image"]["status"]
                + ("" if got == "render" else f" ({body['failure']['reason']})"),
                ", ".join(
                    f"{n} {r['width']}x{r['height']} {r['format']}" for n, r in renditions.items()
                )
                or "-",
                f"{metadata.get('width', '?')}x{metadata.get('height', '?')}" if metadata else "-",
                f"{notification.received_at - upload.uploaded_at:.2f}",
                "ok" if got == expected[name] else f"EXPECTED {expected[name]}",
            )
        )
        if got != expected[name]:
            failures.append(name)

    print_table(("id", "file", "status", "renditions", "size", "s", "check"), rows)
    latencies = sorted(results[u.id].received_at - u.uploaded_at for u in uploads.values())
    median, worst = latencies[len(latencies) // 2], latencies[-1]
    print(f"\nupload -> notification: median {median:.2f} s, max {worst:.2f} s")
    print(f"renditions copied to {OUT.relative_to(ROOT)}/")
    print(f"whole demo: {time.monotonic() - started:.0f} s")
    if failures:
        print(
            f"\nFAILED: {', '.join(failures)} did not end as samples/manifest.csv says",
            file=sys.stderr,
        )
        return 1
    print("\nEvery image ended as expected.")
    if "api_url" in pipeline.outputs:
        print(
            "\nThe same, the way apps do it (the upload API; make demo KEEP=1 keeps the stack):"
            f"\n  .venv/bin/python scripts/upload.py samples/flower.webp    # CLI"
            f"\n  make web    # then open {stack.web_origins(running.port)[0]}/    (browser demo)"
        )
    return 0


def print_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)))


if __name__ == "__main__":
    sys.exit(main())
