"""Lambda cost per million images, from measured invocations (docs/operations.md).

Reads the local runtime's invocation journal (``.local/logs/invocations.jsonl``: one line per
invocation with its items, billed duration and init duration), sums the billed GB-seconds of
each function per image at the memory sizes of a deployment, and prices them. An image is one
job processed by the thumbnail worker; every function's work is divided by that count, so
batching, cold starts (INIT is billed) and the notifier's several stream records per image are
all included as measured.

    .venv/bin/python scripts/cost.py [--journal PATH] [--memory thumbnail=1024 ...]

The durations are the host's (an emulator on a developer machine, not Graviton): treat the
result as an estimate of the order of magnitude, and measure on AWS (the REPORT lines in
CloudWatch Logs) before budgeting.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Memory sizes (MB) of terraform/variables.tf's defaults: what a production deployment runs.
DEFAULT_MEMORY = {"thumbnail": 1024, "metadata": 512, "notifier": 256}
# us-east-1 list prices, arm64 (USD): per GB-second, and per request.
PRICE_GB_SECOND = 0.0000133334
PRICE_REQUEST = 0.20 / 1_000_000


def role_of(function: str) -> str | None:
    return next((role for role in DEFAULT_MEMORY if function.endswith(f"-{role}")), None)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--journal", type=Path, default=ROOT / ".local/logs/invocations.jsonl")
    parser.add_argument("--memory", nargs="*", default=[], help="role=MB, e.g. thumbnail=1536")
    args = parser.parse_args()
    memory = dict(DEFAULT_MEMORY)
    memory.update({k: int(v) for k, v in (m.split("=", 1) for m in args.memory)})

    invocations: dict[str, int] = defaultdict(int)
    billed_ms: dict[str, float] = defaultdict(float)
    images: set[str] = set()
    try:
        lines = args.journal.read_text().splitlines()
    except OSError as error:
        print(f"no journal ({error}): run `make demo` first", file=sys.stderr)
        return 1
    for line in lines:
        entry = json.loads(line)
        role = role_of(entry["function"])
        if role is None:
            continue
        invocations[role] += 1
        billed_ms[role] += round(entry["duration_ms"] + 0.4999) + (entry.get("init_ms") or 0)
        if role == "thumbnail" and not entry.get("error"):
            images |= set(entry["items"]) - set(entry.get("failed_items") or [])
    if not images:
        print("the journal holds no processed image", file=sys.stderr)
        return 1

    n = len(images)
    total = 0.0
    print(f"{n} images, from {args.journal}")
    print(
        f"{'function':10} {'MB':>5} {'invocations':>11} {'ms/image':>9} {'USD per 1M images':>18}"
    )
    for role in DEFAULT_MEMORY:
        ms_per_image = billed_ms[role] / n
        gb_seconds = ms_per_image / 1000 * memory[role] / 1024
        cost = 1_000_000 * (gb_seconds * PRICE_GB_SECOND + invocations[role] / n * PRICE_REQUEST)
        total += cost
        row = f"{role:10} {memory[role]:>5} {invocations[role]:>11} {ms_per_image:>9.0f}"
        print(f"{row} {cost:>18.2f}")
    print(f"{'Lambda':10} {'':>5} {'':>11} {'':>9} {total:>18.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
