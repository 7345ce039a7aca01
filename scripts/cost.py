"""Lambda cost per million images, from measured invocations (docs/operations.md).

Reads the local runtime's invocation journal (``.local/logs/invocations.jsonl``: one line per
invocation with its items, billed duration and init duration), sums the billed GB-seconds of
each function per image at the memory sizes of a deployment, and prices them. An image is one
job processed by the thumbnail worker; every function's work is divided by that count, so
batching, cold starts (INIT is billed) and the notifier's several stream records per image are
all included as measured.

    .venv/bin/python scripts/cost.py [--journal PATH] [--baseline PATH] [--memory thumbnail=1024]

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
# Memory sizes (MB) of terraform/modules/pipeline/variables.tf's defaults: what a production
# deployment runs.
DEFAULT_MEMORY = {"thumbnail": 1024, "metadata": 512, "notifier": 256}
# us-east-1 list prices, arm64 (USD): per GB-second, and per request.
PRICE_GB_SECOND = 0.0000133334
PRICE_REQUEST = 0.20 / 1_000_000
FULL_VCPU_MB = 1769  # Lambda gives a function memory/1769 of a vCPU (up to one vCPU at 1769 MB)


def cpu_bound_usd_per_million(cpu_ms: float, memory_mb: int) -> float:
    """Lambda cost per million of a single-threaded CPU-bound job of ``cpu_ms`` CPU time: it runs
    FULL_VCPU_MB / memory times longer than its CPU time below 1769 MB, so its GB-seconds do not
    depend on the memory up to there; plus one request."""
    seconds = cpu_ms / 1000 * max(1.0, FULL_VCPU_MB / memory_mb)
    return 1_000_000 * (seconds * memory_mb / 1024 * PRICE_GB_SECOND + PRICE_REQUEST)


def role_of(function: str) -> str | None:
    return next((role for role in DEFAULT_MEMORY if function.endswith(f"-{role}")), None)


def load(journal: Path) -> tuple[int, dict[str, int], dict[str, float]]:
    """Images, invocations and billed ms (duration rounded up to the ms, plus INIT) per role."""
    invocations: dict[str, int] = defaultdict(int)
    billed_ms: dict[str, float] = defaultdict(float)
    images: set[str] = set()
    for line in journal.read_text().splitlines():
        entry = json.loads(line)
        role = role_of(entry["function"])
        if role is None:
            continue
        invocations[role] += 1
        billed_ms[role] += round(entry["duration_ms"] + 0.4999) + (entry.get("init_ms") or 0)
        if role == "thumbnail" and not entry.get("error"):
            images |= set(entry["items"]) - set(entry.get("failed_items") or [])
    return len(images), invocations, billed_ms


def priced(
    journal: Path, memory: dict[str, int]
) -> tuple[int, dict[str, tuple[int, float, float]]]:
    """Images, and per role: invocations, billed ms per image, USD per million images."""
    n, invocations, billed_ms = load(journal)
    if not n:
        raise ValueError(f"{journal} holds no processed image")
    rows = {}
    for role in DEFAULT_MEMORY:
        ms_per_image = billed_ms[role] / n
        gb_seconds = ms_per_image / 1000 * memory[role] / 1024
        cost = 1_000_000 * (gb_seconds * PRICE_GB_SECOND + invocations[role] / n * PRICE_REQUEST)
        rows[role] = (invocations[role], ms_per_image, cost)
    return n, rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--journal", type=Path, default=ROOT / ".local/logs/invocations.jsonl")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="another journal (e.g. the same tests on an older commit): priced alongside",
    )
    parser.add_argument("--memory", nargs="*", default=[], help="role=MB, e.g. thumbnail=1536")
    parser.add_argument(
        "--cpu-ms",
        nargs="*",
        default=[],
        help="price CPU time per image instead of a journal, e.g. thumbnail=83 metadata=2.7"
        " (make bench's CPU per half: the image work alone, without AWS calls or start-up)",
    )
    args = parser.parse_args()
    memory = dict(DEFAULT_MEMORY)
    memory.update({k: int(v) for k, v in (m.split("=", 1) for m in args.memory)})
    if args.cpu_ms:
        total = 0.0
        print(f"{'function':10} {'MB':>5} {'CPU ms/image':>12} {'billed ms':>9} {'USD per 1M':>10}")
        for role, value in (m.split("=", 1) for m in args.cpu_ms):
            cost = cpu_bound_usd_per_million(float(value), memory[role])
            billed = float(value) * max(1.0, FULL_VCPU_MB / memory[role])
            total += cost
            print(f"{role:10} {memory[role]:>5} {float(value):>12.1f} {billed:>9.0f} {cost:>10.2f}")
        print(f"{'image work':10} {'':>5} {'':>12} {'':>9} {total:>10.2f}")
        return 0

    journals = {"": args.journal} | ({"baseline ": args.baseline} if args.baseline else {})
    results = {}
    for label, journal in journals.items():
        try:
            results[label] = priced(journal, memory)
        except OSError as error:
            print(f"no journal ({error}): run `make demo` first", file=sys.stderr)
            return 1
        except ValueError as error:
            print(error, file=sys.stderr)
            return 1

    for label, (n, _) in results.items():
        print(f"{label}{n} images, from {journals[label]}")
    print(
        f"{'function':10} {'MB':>5} {'invocations':>11} {'ms/image':>9} {'USD per 1M images':>18}"
        + (f" {'baseline ms':>11} {'baseline USD':>12}" if args.baseline else "")
    )
    for role in [*DEFAULT_MEMORY, "Lambda"]:
        if role == "Lambda":
            total = sum(cost for _, _, cost in results[""][1].values())
            row = f"{'Lambda':10} {'':>5} {'':>11} {'':>9} {total:>18.2f}"
            if args.baseline:
                before = sum(cost for _, _, cost in results["baseline "][1].values())
                row += f" {'':>11} {before:>12.2f}"
        else:
            count, ms, cost = results[""][1][role]
            row = f"{role:10} {memory[role]:>5} {count:>11} {ms:>9.0f} {cost:>18.2f}"
            if args.baseline:
                _, before_ms, before = results["baseline "][1][role]
                row += f" {before_ms:>11.0f} {before:>12.2f}"
        print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
