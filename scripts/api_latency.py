#!/usr/bin/env python3
"""Measure the upload API on a running stack: request latency and upload -> READY time.

    python scripts/api_latency.py [--requests 200] [--uploads 10]

Sends ``--requests`` POST /uploads and as many GET /images/{id} (one client, sequential,
keep-alive), then uploads ``--uploads`` sample photos over the API and polls each until READY.
Reports p50 / p95 / max. Numbers, not assertions: they depend on the machine and its load.
Uses the same settings as scripts/upload.py (flags, MEDIA_API_* variables, or make up's).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import upload
from tooling.api_client import UploadClient

ROOT = Path(__file__).resolve().parents[1]
PHOTO = ROOT / "samples" / "landscape-exif-rotated.jpg"


def percentiles(values: list[float]) -> str:
    ordered = sorted(values)
    p50 = ordered[len(ordered) // 2]
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"p50 {p50 * 1000:7.1f} ms  p95 {p95 * 1000:7.1f} ms  max {ordered[-1] * 1000:7.1f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--uploads", type=int, default=10)
    parser.add_argument("--api-url")
    parser.add_argument("--api-key")
    parser.add_argument("--ca-bundle")
    args = parser.parse_args()
    client = UploadClient(*upload.settings(args))
    data = PHOTO.read_bytes()

    client.image(client.request_upload("warm.jpg", "image/jpeg", 1)["image_id"])  # warm up
    posts, gets = [], []
    for _ in range(args.requests):
        started = time.perf_counter()
        created = client.request_upload("photo.jpg", "image/jpeg", len(data))
        posts.append(time.perf_counter() - started)
        started = time.perf_counter()
        client.image(created["image_id"])
        gets.append(time.perf_counter() - started)
    print(f"POST /uploads      x{len(posts)}: {percentiles(posts)}")
    print(f"GET  /images/{{id}} x{len(gets)}: {percentiles(gets)}")

    ready = []
    for _ in range(args.uploads):
        created = client.request_upload("photo.jpg", "image/jpeg", len(data))
        started = time.perf_counter()
        status, text = client.post_file(created["upload"], data, "photo.jpg")
        if status != 204:
            print(f"upload refused: {status} {text}", file=sys.stderr)
            return 1
        image = client.wait(created["image_id"], timeout=120, interval=0.05)
        if image["status"] != "READY":
            print(f"upload ended {image['status']}: {image['failure']}", file=sys.stderr)
            return 1
        ready.append(time.perf_counter() - started)
    print(f"upload -> READY    x{len(ready)}: {percentiles(ready)}  ({PHOTO.name}, polling 50 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
