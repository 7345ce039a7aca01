#!/usr/bin/env python3
"""make load: a burst of uploads of real photos; does every image end READY or FAILED, once?

    python scripts/load.py [--n 200] [--timeout S] [--threads 16] [--direct-fraction 0.5]

Not a test (make test does not run it): a load benchmark with a verdict. It brings the embedded
stack up (or reuses a running one, which it then leaves running) and:

1. Chooses N inputs from the manifests of ../shared/corpus and samples/: the JPEG, PNG, WebP and
   HEIF files whose ``expect`` is ``render`` (each distinct file once, by content), cycled; and
   about 5% corrupt files, spread through the burst: the manifests' ``reject:corrupt`` files of
   those formats, then truncated copies of a renderable JPEG when more are needed. Every upload
   has a key of its own, so each is a separate image.
2. Runs the image engine (media_pipeline.pipeline.halves, what scripts/render.py runs: the
   renditions AND the metadata half) over the same N inputs in a process pool of one worker per
   core, with the deployed workers' settings, before the burst, while the stack is idle: the
   bare engine's throughput on this machine, the ceiling the pipeline is compared with.
3. Uploads the N inputs at once from a thread pool (--threads): a fraction (--direct-fraction)
   straight to S3 (PutObject under the upload prefix, as an app with S3 access does), the others
   through the upload API (POST /uploads, then the presigned POST, as scripts/upload.py does).
4. Drains the app events queue (subscribed to the SNS topic) the whole time, counting the
   notifications of every image by type, until every uploaded image has one or --timeout
   seconds (default 120 + N) have passed since the last upload; then listens GRACE_SECONDS more
   for duplicates.
5. Reads every image's media item (its final status and failure.reason), the depth of every DLQ
   in the stack's outputs (ApproximateNumberOfMessages + ApproximateNumberOfMessagesNotVisible)
   and, by peeking at their messages (received, then made visible again), which images they
   belong to.

It prints the report and writes it as JSON to .local/load-report.json (--report). Exit status 1
if any image is stuck (neither READY nor FAILED at the end), has no notification or more than
one, if a corrupt file did not end FAILED (corrupt), or if an upload itself failed; 0 otherwise.
What each figure means: docs/operations.md, "Load benchmark".
"""

from __future__ import annotations

import argparse
import concurrent.futures
import csv
import hashlib
import json
import math
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack import stack
from devstack.pipeline import Pipeline
from media_pipeline import imaging
from media_pipeline.config.workers import (
    encode_options_from_env,
    include_gps_from_env,
    limits_from_env,
    renditions_from_env,
)
from media_pipeline.dynamo import from_item
from media_pipeline.events import InvalidEvent, parse_object_created
from media_pipeline.model import media_id
from media_pipeline.pipeline.halves import MetadataWork, RenditionsWork
from media_pipeline.reconcile import peek_messages
from tooling.api_client import UploadClient, content_type_of

ROOT = Path(__file__).resolve().parents[1]
CORPUS = (ROOT / ".." / "shared" / "corpus").resolve()
SAMPLES = ROOT / "samples"
REPORT = ROOT / ".local" / "load-report.json"

FORMATS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".heif", ".heic"})
RENDER, CORRUPT = "render", "reject:corrupt"
CORRUPT_FRACTION = 0.05
TRUNCATE_BETWEEN = (0.25, 0.9)  # truncated copies keep 25% .. 90% of the JPEG
GRACE_SECONDS = 5.0  # listening on after the last notification, for a duplicate
FINAL = frozenset({"READY", "FAILED"})
NO_ITEM = "NO_ITEM"
DIRECT, API = "direct", "api"
ENGINE_MIN_SECONDS = 3.0  # the engine's passes over the inputs are timed for at least this
PEEK_LIMIT = 5000  # DLQ messages read per queue to attribute them to images


def default_timeout(n: int) -> float:
    """Seconds to wait after the last upload: the local stack's retry horizon (3 deliveries x
    30 s visibility) with room to spare, plus a second per image."""
    return 120.0 + n


# ---------------------------------------------------------------------------------------------
# Inputs (pure: manifests in, a plan of N uploads out)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """A file named by a manifest."""

    name: str  # how the report names it, e.g. "corpus/pillow/flower.jpg"
    path: Path
    expect: str  # "render" or "reject:<reason>"


@dataclass(frozen=True)
class Planned:
    """One upload of the burst."""

    index: int
    file: str  # the source's name (or "<name> truncated to <n> B")
    filename: str  # the file name it is uploaded as
    data: bytes = field(repr=False)
    expect: str
    route: str  # DIRECT or API


def read_manifest(directory: Path, label: str) -> list[Source]:
    """The rows of ``directory/manifest.csv`` (columns ``file`` and ``expect``)."""
    with (directory / "manifest.csv").open(newline="") as handle:
        return [
            Source(f"{label}/{row['file']}", directory / row["file"], row["expect"])
            for row in csv.DictReader(handle)
        ]


def choose_sources(
    sources: Iterable[Source], read: Callable[[Path], bytes] = Path.read_bytes
) -> tuple[list[tuple[Source, bytes]], list[tuple[Source, bytes]]]:
    """(renderable, corrupt): the JPEG/PNG/WebP/HEIF files expected to render, and those
    expected to be rejected as corrupt, each distinct content once (first name wins)."""
    renderable: list[tuple[Source, bytes]] = []
    corrupt: list[tuple[Source, bytes]] = []
    seen: set[str] = set()
    for source in sources:
        if source.path.suffix.lower() not in FORMATS or source.expect not in (RENDER, CORRUPT):
            continue
        data = read(source.path)
        digest = hashlib.sha256(data).hexdigest()
        if digest in seen:
            continue
        seen.add(digest)
        (renderable if source.expect == RENDER else corrupt).append((source, data))
    return renderable, corrupt


def truncated_copies(data: bytes, count: int) -> list[bytes]:
    """``count`` distinct truncations of ``data``, keeping 25% to 90% of it."""
    low, high = TRUNCATE_BETWEEN
    if count <= 1:
        return [data[: int(len(data) * low)]] * count
    cuts = [int(len(data) * (low + (high - low) * k / (count - 1))) for k in range(count)]
    return [data[:cut] for cut in cuts]


def spread(count: int, total: int) -> list[int]:
    """``count`` positions among ``range(total)``, evenly spaced."""
    return [int((k + 0.5) * total / count) for k in range(count)] if count else []


def routes(count: int, direct: int) -> list[str]:
    """DIRECT for ``direct`` of ``count`` uploads, API for the others, interleaved evenly."""
    return [
        DIRECT if (i + 1) * direct // count > i * direct // count else API for i in range(count)
    ]


def corrupt_count(n: int, fraction: float = CORRUPT_FRACTION) -> int:
    """About ``fraction`` of ``n``, at least one once there are two uploads."""
    return 0 if n < 2 else max(1, round(n * fraction))


def plan(
    renderable: Sequence[tuple[Source, bytes]],
    corrupt: Sequence[tuple[Source, bytes]],
    n: int,
    *,
    direct_fraction: float = 0.5,
    corrupt_fraction: float = CORRUPT_FRACTION,
) -> list[Planned]:
    """N uploads: the renderable files cycled, with ``corrupt_count(n)`` corrupt ones spread
    among them (the manifests' own first, then truncated copies of the largest renderable
    JPEG). Routes alternate within each group, so corrupt files go both ways too."""
    if not renderable:
        raise ValueError("no renderable JPEG/PNG/WebP/HEIF file in the manifests")
    bad_count = min(n, corrupt_count(n, corrupt_fraction))
    bad: list[tuple[str, str, bytes]] = [
        (source.name, Path(source.name).name, data) for source, data in corrupt[:bad_count]
    ]
    if len(bad) < bad_count:
        jpegs = [(s, d) for s, d in renderable if s.path.suffix.lower() in (".jpg", ".jpeg")]
        if not jpegs:
            raise ValueError("more corrupt files are needed and there is no JPEG to truncate")
        source, data = max(jpegs, key=lambda pair: len(pair[1]))
        for k, cut in enumerate(truncated_copies(data, bad_count - len(bad))):
            bad.append(
                (
                    f"{source.name} truncated to {len(cut)} B",
                    f"truncated-{k}-{Path(source.name).name}",
                    cut,
                )
            )
    good_count = n - bad_count
    bad_at = set(spread(bad_count, n))
    bad_direct = round(bad_count * direct_fraction)
    good_direct = min(good_count, max(0, round(n * direct_fraction) - bad_direct))
    bad_routes = routes(bad_count, bad_direct)
    good_routes = routes(good_count, good_direct)
    planned: list[Planned] = []
    good = bad_seen = 0
    for index in range(n):
        if index in bad_at:
            name, filename, data = bad[bad_seen]
            planned.append(Planned(index, name, filename, data, CORRUPT, bad_routes[bad_seen]))
            bad_seen += 1
        else:
            source, data = renderable[good % len(renderable)]
            filename = Path(source.name).name
            planned.append(
                Planned(index, source.name, filename, data, source.expect, good_routes[good])
            )
            good += 1
    return planned


# ---------------------------------------------------------------------------------------------
# What was seen, and the report (pure)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Heard:
    """One notification received on the app events queue."""

    type: str  # image.ready / image.failed
    reason: str | None  # failure.reason
    at: float  # time.monotonic() when received


@dataclass
class Observation:
    """Everything seen of one upload."""

    file: str
    expect: str
    route: str
    image_id: str | None = None
    started: float = 0.0  # time.monotonic() when its upload began (POST /uploads, or PutObject)
    finished: float | None = None  # ... and when the object was in S3
    error: str | None = None  # the upload itself failed
    heard: list[Heard] = field(default_factory=list)
    status: str | None = None  # the media item's status at the end; NO_ITEM when there is none
    reason: str | None = None  # the media item's failure.reason


@dataclass(frozen=True)
class Dlq:
    name: str
    visible: int  # ApproximateNumberOfMessages
    in_flight: int  # ApproximateNumberOfMessagesNotVisible
    at_start: int  # both, before the burst
    image_ids: tuple[str | None, ...] = ()  # the image of each message read (None: not known)


@dataclass(frozen=True)
class EngineRun:
    workers: int
    seconds: float
    outcomes: tuple[str, ...]  # per planned upload: "render" or "reject:<reason>"
    rounds: int = 1  # passes over the N inputs timed in ``seconds``


@dataclass(frozen=True)
class Usage:
    """What the stack and this process had used at one moment (the burst's cost is a
    difference of two)."""

    server_cpu_s: float  # the embedded server process: moto and the runtime's pollers
    requests: dict[str, int]  # requests served, by "<service> <operation>"
    own_cpu_s: float  # this process: the uploads and the drain (not the engine's pool)


def usage(running: stack.Stack) -> Usage:
    return Usage(
        server_cpu_s=running.control("health")["cpu_s"],
        requests=running.control("requests")["requests"],
        own_cpu_s=time.process_time(),
    )


def emulator_cost(before: Usage, after: Usage, images: int, top: int = 8) -> dict[str, Any]:
    """The burst's cost to the emulator and the load generator, per image notified."""
    per = max(images, 1)
    spent = Counter(after.requests)
    spent.subtract(before.requests)
    requests = sum(spent.values())
    return {
        "images": images,
        "requests_per_image": round(requests / per, 1),
        "top_operations_per_image": {
            name: round(count / per, 2) for name, count in spent.most_common(top) if count > 0
        },
        "server_cpu_ms_per_image": round((after.server_cpu_s - before.server_cpu_s) * 1000 / per),
        "load_generator_cpu_ms_per_image": round((after.own_cpu_s - before.own_cpu_s) * 1000 / per),
    }


def percentile(values: Sequence[float], p: float) -> float | None:
    """The nearest-rank percentile (the smallest value with at least p% of them at or below)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = math.ceil(p / 100 * len(ordered))
    return ordered[min(len(ordered), max(rank, 1)) - 1]


def dlq_image_ids(body: str) -> set[str]:
    """The image a DLQ message is about: the S3 event of a job (EventBridge's DLQ too) names
    bucket and key; a notification names its image. Empty when the message does not say (the
    notifier DLQ's stream batch descriptions)."""
    try:
        event = parse_object_created(body)
    except InvalidEvent:
        pass
    else:
        return {media_id(event.bucket, key) for key in event.candidate_keys()}
    try:
        image = json.loads(body).get("image") or {}
    except (ValueError, AttributeError):
        return set()
    return {image["id"]} if isinstance(image, dict) and image.get("id") else set()


def _rounded(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def assemble(
    observations: Sequence[Observation],
    *,
    dlqs: Sequence[Dlq] = (),
    engine: EngineRun | None = None,
    other_notifications: int = 0,
    settings: dict[str, Any] | None = None,
    emulator: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The report, from what was observed. ``problems`` lists what makes the run fail."""
    uploaded = [o for o in observations if o.error is None]
    errors = [o for o in observations if o.error is not None]

    ready = [o for o in uploaded if o.status == "READY"]
    failed = [o for o in uploaded if o.status == "FAILED"]
    stuck = [o for o in uploaded if o.status not in FINAL]
    failed_by_reason = Counter(
        o.reason or (o.heard[0].reason if o.heard else None) or "unknown" for o in failed
    )

    missing = [o for o in uploaded if not o.heard]
    duplicated = [o for o in uploaded if len(o.heard) > 1]
    expected_type = {"READY": "image.ready", "FAILED": "image.failed"}
    disagreeing = [
        o
        for o in uploaded
        if o.heard and o.status in FINAL and o.heard[-1].type != expected_type[o.status]
    ]

    corrupt = [
        {
            "file": o.file,
            "route": o.route,
            "image_id": o.image_id,
            "status": o.status if o.error is None else "UPLOAD_ERROR",
            "reason": o.reason,
            "notifications": [h.type + (f" ({h.reason})" if h.reason else "") for h in o.heard],
            "ok": o.error is None and (o.status, o.reason) == ("FAILED", "corrupt"),
        }
        for o in observations
        if o.expect == CORRUPT
    ]

    latencies = [o.heard[0].at - o.finished for o in uploaded if o.heard and o.finished]
    starts = [o.started for o in observations if o.started]
    firsts = [o.heard[0].at for o in uploaded if o.heard]
    span = max(firsts) - min(starts) if firsts and starts else None
    pipeline_rate = len(firsts) / span if span else None
    engine_rate = (
        len(engine.outcomes) * engine.rounds / engine.seconds if engine and engine.seconds else None
    )

    run_ids = {o.image_id for o in uploaded if o.image_id}
    status_of = {o.image_id: o.status for o in uploaded if o.image_id}
    dlq_ids = [i for q in dlqs for i in q.image_ids]
    of_this_run = [i for i in dlq_ids if i in run_ids]

    engine_disagreements = []
    if engine:
        engine_disagreements = [
            {"file": o.file, "expect": o.expect, "engine": outcome}
            for o, outcome in zip(observations, engine.outcomes, strict=True)
            if outcome != o.expect
        ]

    problems = []
    if errors:
        problems.append(f"{len(errors)} uploads failed")
    if stuck:
        problems.append(f"{len(stuck)} stuck (neither READY nor FAILED)")
    if missing:
        problems.append(f"{len(missing)} without a notification")
    if duplicated:
        problems.append(f"{len(duplicated)} notified more than once")
    wrong_corrupt = [c for c in corrupt if not c["ok"]]
    if wrong_corrupt:
        problems.append(f"{len(wrong_corrupt)} corrupt files did not end FAILED (corrupt)")

    def image(o: Observation) -> dict[str, Any]:
        return {
            "file": o.file,
            "route": o.route,
            "image_id": o.image_id,
            "expect": o.expect,
            "status": o.status,
            "reason": o.reason,
            "notifications": dict(Counter(h.type for h in o.heard)),
            "latency_s": _rounded(o.heard[0].at - o.finished, 3)
            if o.heard and o.finished
            else None,
            "error": o.error,
        }

    return {
        "n": len(observations),
        "settings": settings or {},
        "uploads": {
            "direct": sum(o.route == DIRECT for o in observations),
            "api": sum(o.route == API for o in observations),
            "corrupt": len(corrupt),
            "failed": len(errors),
            "errors": [{"file": o.file, "route": o.route, "error": o.error} for o in errors],
        },
        "outcome": {
            "ready": len(ready),
            "failed": len(failed),
            "failed_by_reason": dict(sorted(failed_by_reason.items())),
            "stuck": len(stuck),
            "stuck_by_status": dict(sorted(Counter(o.status or NO_ITEM for o in stuck).items())),
        },
        "notifications": {
            "exactly_once": sum(len(o.heard) == 1 for o in uploaded),
            "missing": len(missing),
            "missing_and_stuck": sum(o.status not in FINAL for o in missing),
            "duplicated": len(duplicated),
            "by_type": dict(sorted(Counter(h.type for o in uploaded for h in o.heard).items())),
            "disagreeing_with_item": len(disagreeing),
            "of_other_images": other_notifications,
        },
        "corrupt_files": corrupt,
        "dlqs": {
            q.name: {
                "messages": q.visible,
                "in_flight": q.in_flight,
                "depth": q.visible + q.in_flight,
                "depth_at_start": q.at_start,
            }
            for q in dlqs
        },
        "dlq_messages": {
            "read": len(dlq_ids),
            "of_this_run": len(of_this_run),
            "of_images_that_ended_ready": sum(status_of.get(i) == "READY" for i in of_this_run),
            "not_attributable": sum(i is None for i in dlq_ids),
        },
        "latency_s": {
            "count": len(latencies),
            "p50": _rounded(percentile(latencies, 50)),
            "p95": _rounded(percentile(latencies, 95)),
            "p99": _rounded(percentile(latencies, 99)),
            "max": _rounded(max(latencies) if latencies else None),
        },
        "throughput": {
            "notified": len(firsts),
            "span_s": _rounded(span),
            "pipeline_images_per_s": _rounded(pipeline_rate),
            "engine_files": len(engine.outcomes) if engine else None,
            "engine_rounds": engine.rounds if engine else None,
            "engine_workers": engine.workers if engine else None,
            "engine_seconds": _rounded(engine.seconds) if engine else None,
            "engine_images_per_s": _rounded(engine_rate),
            "pipeline_to_engine": _rounded(
                pipeline_rate / engine_rate if pipeline_rate and engine_rate else None, 3
            ),
        },
        "emulator": emulator,
        "engine_disagreements": engine_disagreements,
        "stuck_images": [image(o) for o in stuck],
        "missing_images": [image(o) for o in missing],
        "duplicated_images": [image(o) for o in duplicated],
        "problems": problems,
        "ok": not problems,
        "images": [image(o) for o in observations],
    }


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def format_report(report: dict[str, Any], listed: int = 20) -> str:
    """The report as text for a terminal."""
    up, out, notes = report["uploads"], report["outcome"], report["notifications"]
    lines = [
        f"Load: {report['n']} uploads ({up['direct']} straight to S3, {up['api']} through the "
        f"API; {up['corrupt']} corrupt), {report['settings'].get('threads', '?')} threads",
        "",
        "Outcome (the media item at the end)",
        f"  READY        {out['ready']}",
        f"  FAILED       {out['failed']}"
        + (
            "   " + ", ".join(f"{k} {v}" for k, v in out["failed_by_reason"].items())
            if out["failed_by_reason"]
            else ""
        ),
        f"  stuck        {out['stuck']}"
        + (
            "   " + ", ".join(f"{k} {v}" for k, v in out["stuck_by_status"].items())
            if out["stuck_by_status"]
            else ""
        ),
        f"  upload error {up['failed']}",
        "",
        "Notifications per image",
        f"  exactly one  {notes['exactly_once']}",
        f"  missing      {notes['missing']}"
        + (f"   ({notes['missing_and_stuck']} of them stuck)" if notes["missing"] else ""),
        f"  duplicated   {notes['duplicated']}",
        "  by type      " + (", ".join(f"{k} {v}" for k, v in notes["by_type"].items()) or "none"),
    ]
    if notes["disagreeing_with_item"]:
        lines.append(f"  disagreeing with the item's status: {notes['disagreeing_with_item']}")
    if notes["of_other_images"]:
        lines.append(f"  (drained {notes['of_other_images']} of images not in this run)")

    lines += ["", "Corrupt files (each must end FAILED, reason corrupt)"]
    width = max((len(c["file"]) for c in report["corrupt_files"]), default=0)
    for c in report["corrupt_files"]:
        got = c["status"] + (f" ({c['reason']})" if c["reason"] else "")
        lines.append(
            f"  {c['file']:<{width}}  {c['route']:<6}  {got:<18}  {'ok' if c['ok'] else 'WRONG'}"
        )

    lines += ["", "DLQs (messages + in flight; before the burst)"]
    for name, q in report["dlqs"].items():
        lines.append(
            f"  {name:<20} {q['depth']:>5}  ({q['messages']} + {q['in_flight']}; "
            f"{q['depth_at_start']} before)"
        )
    dm = report["dlq_messages"]
    lines.append(
        f"  messages of this run's images: {dm['of_this_run']}, of images that ended READY: "
        f"{dm['of_images_that_ended_ready']}"
        + (f" ({dm['not_attributable']} name no image)" if dm["not_attributable"] else "")
    )

    lat, tp = report["latency_s"], report["throughput"]
    lines += [
        "",
        f"Upload -> notification ({lat['count']} images): p50 {_seconds(lat['p50'])}, "
        f"p95 {_seconds(lat['p95'])}, p99 {_seconds(lat['p99'])}, max {_seconds(lat['max'])}",
        "",
        "Throughput",
        f"  pipeline  {tp['pipeline_images_per_s'] or '-'} images/s  ({tp['notified']} notified, "
        f"{_seconds(tp['span_s'])} from the first upload to the last notification)",
    ]
    if tp["engine_images_per_s"] is not None:
        lines += [
            f"  engine    {tp['engine_images_per_s']} images/s  ({tp['engine_files']} files"
            + (f" x {tp['engine_rounds']}" if tp["engine_rounds"] != 1 else "")
            + f", renditions + metadata, {tp['engine_workers']} processes, "
            f"{_seconds(tp['engine_seconds'])})",
            f"  pipeline / engine  {tp['pipeline_to_engine'] if tp['pipeline_to_engine'] else '-'}",
        ]
    cost = report.get("emulator")
    if cost:
        top = ", ".join(f"{name} {n}" for name, n in cost["top_operations_per_image"].items())
        lines += [
            "",
            f"Emulator, per image notified ({cost['images']})",
            f"  requests        {cost['requests_per_image']}  ({top})",
            f"  server CPU      {cost['server_cpu_ms_per_image']} ms  (one process: at most one "
            "core, so at most "
            + (
                f"{1000 / cost['server_cpu_ms_per_image']:.1f} images/s"
                if cost["server_cpu_ms_per_image"] > 0
                else "-"
            )
            + " on this stack)",
            f"  load generator  {cost['load_generator_cpu_ms_per_image']} ms CPU",
        ]
    if report["engine_disagreements"]:
        lines += ["", "The engine itself disagrees with the manifest on:"]
        lines += [
            f"  {d['file']}: expected {d['expect']}, engine {d['engine']}"
            for d in report["engine_disagreements"][:listed]
        ]

    for title, key in (
        ("Stuck", "stuck_images"),
        ("Without a notification", "missing_images"),
        ("Notified more than once", "duplicated_images"),
    ):
        images = report[key]
        if images:
            lines += [
                "",
                f"{title} ({len(images)}{f'; first {listed}' if len(images) > listed else ''})",
            ]
            lines += [
                f"  {i['image_id'] or '-'}  {i['route']:<6}  {i['status'] or '-':<15}  "
                f"{json.dumps(i['notifications'])}  {i['file']}"
                for i in images[:listed]
            ]
    if report["uploads"]["errors"]:
        lines += ["", "Upload errors"]
        lines += [f"  {e['route']:<6} {e['file']}: {e['error']}" for e in up["errors"][:listed]]

    lines += [
        "",
        "OK: every image ended READY or FAILED and was announced exactly once"
        if report["ok"]
        else "FAILED: " + "; ".join(report["problems"]),
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# The engine on its own (subprocess pool)
# ---------------------------------------------------------------------------------------------

_halves: tuple[RenditionsWork, MetadataWork] | None = None


def _engine_init(env: dict[str, str]) -> None:
    global _halves  # noqa: PLW0603 - one per pool process, built once
    limits = limits_from_env(env)
    _halves = (
        RenditionsWork(None, renditions_from_env(env), limits, encode_options_from_env(env)),
        MetadataWork(limits, include_gps=include_gps_from_env(env)),
    )


def _engine_run(data: bytes) -> str:
    """What the two workers do with the bytes (as scripts/render.py does, minus the disk)."""
    assert _halves is not None
    renditions, metadata = _halves
    produced = renditions.produce(data)
    described = metadata.produce(data)
    if isinstance(described, imaging.Rendered):
        metadata.store(None, described)  # type: ignore[arg-type]
    return RENDER if isinstance(produced, imaging.Rendered) else f"reject:{produced.reason}"


def run_engine(planned: Sequence[Planned], env: dict[str, str], workers: int) -> EngineRun:
    """The N inputs through the engine, one process per core; the pool is started and warmed
    on the first few inputs (imports, codecs loaded) before the clock starts. Passes over the
    N inputs repeat until ENGINE_MIN_SECONDS have passed, so that a small N is still timed
    over a measurable interval."""
    inputs = [p.data for p in planned]
    with concurrent.futures.ProcessPoolExecutor(
        max_workers=workers, initializer=_engine_init, initargs=(env,)
    ) as pool:
        list(pool.map(_engine_run, inputs[: workers * 2]))
        started = time.perf_counter()
        outcomes = tuple(pool.map(_engine_run, inputs, chunksize=2))
        rounds = 1
        while time.perf_counter() - started < ENGINE_MIN_SECONDS:
            list(pool.map(_engine_run, inputs, chunksize=2))
            rounds += 1
        seconds = time.perf_counter() - started
    return EngineRun(workers=workers, seconds=seconds, outcomes=outcomes, rounds=rounds)


def deployed_settings(pipeline: Pipeline) -> dict[str, str]:
    """The environment of the deployed thumbnail and metadata functions (their engine
    settings); empty (the Terraform defaults) if it cannot be read."""
    env: dict[str, str] = {}
    lam = pipeline.client("lambda")
    for role in ("thumbnail", "metadata"):
        try:
            config = lam.get_function_configuration(
                FunctionName=pipeline.outputs["functions"][role]
            )
        except Exception as error:  # the defaults are a fair fallback
            print(f"    (cannot read the {role} function's settings: {error}; using defaults)")
            continue
        env |= config.get("Environment", {}).get("Variables", {})
    return env


# ---------------------------------------------------------------------------------------------
# The burst, the notifications, the final state (the stack)
# ---------------------------------------------------------------------------------------------


class Uploader:
    """Uploads from many threads: each thread has its own Pipeline (boto3 session and clients)
    and its own UploadClient (connection pool)."""

    def __init__(self, running: stack.Stack, outputs: dict[str, Any]) -> None:
        self.running, self.outputs = running, outputs
        self.local = threading.local()

    def _pipeline(self) -> Pipeline:
        if not hasattr(self.local, "pipeline"):
            self.local.pipeline = Pipeline.for_local_stack(
                self.outputs, self.running.endpoint, self.running.ca_bundle
            )
        return self.local.pipeline

    def _client(self) -> UploadClient:
        if not hasattr(self.local, "client"):
            self.local.client = UploadClient(
                self.outputs["api_url"], self.outputs["api_key"], str(self.running.ca_bundle)
            )
        return self.local.client

    def __call__(self, item: Planned) -> Observation:
        seen = Observation(file=item.file, expect=item.expect, route=item.route)
        seen.started = time.monotonic()
        try:
            if item.route == DIRECT:
                seen.image_id = self._pipeline().upload(item.data, item.filename).id
            else:
                client = self._client()
                created = client.request_upload(
                    item.filename, content_type_of(item.filename), len(item.data)
                )
                seen.image_id = created["image_id"]
                status, text = client.post_file(created["upload"], item.data, item.filename)
                if status not in (200, 201, 204):
                    seen.error = f"S3 answered {status} to the presigned POST: {text[:200]}"
                    return seen
            seen.finished = time.monotonic()
        except Exception as error:  # an upload error is an observation
            seen.error = f"{type(error).__name__}: {error}"
        return seen


class Drain(threading.Thread):
    """Receives from the app events queue until stopped (Pipeline.poll_notifications collects
    every message by image id, with the time it was received). The only reader of the queue."""

    def __init__(self, pipeline: Pipeline) -> None:
        super().__init__(name="drain", daemon=True)
        self.pipeline = pipeline
        self.stopping = threading.Event()
        self.errors: list[str] = []

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.pipeline.poll_notifications(wait_seconds=1)
            except Exception as error:  # keep draining; report at the end
                self.errors.append(f"{type(error).__name__}: {error}")
                time.sleep(0.5)

    def heard(self, image_id: str) -> bool:
        return bool(self.pipeline.notifications.get(image_id))

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=30)


def dlq_names(outputs: dict[str, Any]) -> list[str]:
    """Every dead-letter queue in the outputs (the ``queues`` map: ``*_dlq`` and EventBridge's
    ``undelivered_events``)."""
    return sorted(n for n in outputs["queues"] if n.endswith("_dlq") or n == "undelivered_events")


def dlq_depth(pipeline: Pipeline, url: str) -> tuple[int, int]:
    attributes = pipeline.sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return (
        int(attributes["ApproximateNumberOfMessages"]),
        int(attributes["ApproximateNumberOfMessagesNotVisible"]),
    )


def peek(pipeline: Pipeline, url: str, limit: int = PEEK_LIMIT) -> list[str]:
    """The bodies of the messages of a queue, left in it (the reconciler's own reader)."""
    return [m["Body"] for m in peek_messages(pipeline.sqs, url, limit)]


def read_dlqs(pipeline: Pipeline, at_start: dict[str, int], run_ids: set[str]) -> list[Dlq]:
    found = []
    for name in dlq_names(pipeline.outputs):
        url = pipeline.outputs["queues"][name]
        visible, in_flight = dlq_depth(pipeline, url)
        ids: list[str | None] = []
        for body in peek(pipeline, url) if visible else []:
            candidates = dlq_image_ids(body)
            ids.append(next(iter(candidates & run_ids), None) or next(iter(candidates), None))
        found.append(Dlq(name, visible, in_flight, at_start.get(name, 0), tuple(ids)))
    return found


def read_items(pipeline: Pipeline, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The media items of ``ids`` (consistent reads, 100 at a time)."""
    table = pipeline.outputs["media_table"]
    wanted = sorted(set(ids))
    items: dict[str, dict[str, Any]] = {}
    for start in range(0, len(wanted), 100):
        request: dict[str, Any] = {
            table: {
                "Keys": [{"id": {"S": i}} for i in wanted[start : start + 100]],
                "ConsistentRead": True,
            }
        }
        for _ in range(10):
            response = pipeline.dynamodb.batch_get_item(RequestItems=request)
            for raw in response["Responses"].get(table, []):
                item = from_item(raw)
                items[item["id"]] = item
            request = response.get("UnprocessedKeys") or {}
            if not request:
                break
            time.sleep(0.2)
    return items


def wait_for_notifications(
    drain: Drain, ids: Sequence[str], timeout: float, started: float
) -> None:
    """Until every id has a notification or ``timeout`` seconds pass; progress every 10 s."""
    deadline = time.monotonic() + timeout
    next_line = time.monotonic() + 10
    while True:
        pending = [i for i in ids if not drain.heard(i)]
        if not pending or time.monotonic() > deadline:
            return
        if time.monotonic() >= next_line:
            print(
                f"    {len(ids) - len(pending)}/{len(ids)} notified after "
                f"{time.monotonic() - started:.0f} s ({deadline - time.monotonic():.0f} s left)",
                flush=True,
            )
            next_line += 10
        time.sleep(0.25)


def run_load(running: stack.Stack, args: argparse.Namespace) -> dict[str, Any]:
    outputs = running.outputs()
    pipeline = Pipeline.for_local_stack(outputs, running.endpoint, running.ca_bundle)
    sources = read_manifest(CORPUS, "corpus") if (CORPUS / "manifest.csv").is_file() else []
    if not sources:
        print(f"==> no corpus at {CORPUS}: using samples/ only")
    renderable, corrupt = choose_sources([*sources, *read_manifest(SAMPLES, "samples")])
    planned = plan(renderable, corrupt, args.n, direct_fraction=args.direct_fraction)
    timeout = args.timeout if args.timeout is not None else default_timeout(args.n)
    print(
        f"==> {args.n} uploads from {len(renderable)} renderable files and "
        f"{sum(p.expect == CORRUPT for p in planned)} corrupt ones "
        f"({len(corrupt)} from the manifests)"
    )

    workers = os.cpu_count() or 1
    print(f"==> the engine alone on the same {args.n} files ({workers} processes)", flush=True)
    engine = run_engine(planned, deployed_settings(pipeline), workers)
    print(
        f"    {args.n * engine.rounds / engine.seconds:.1f} images/s "
        f"({engine.rounds} x {args.n} files in {engine.seconds:.1f} s)"
    )

    at_start = {
        name: sum(dlq_depth(pipeline, outputs["queues"][name])) for name in dlq_names(outputs)
    }
    before = usage(running)
    drain = Drain(pipeline)
    drain.start()
    print(
        f"==> the burst: {args.n} uploads from {args.threads} threads, timeout {timeout:.0f} s",
        flush=True,
    )
    began = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(args.threads, thread_name_prefix="upload") as pool:
        observations = list(pool.map(Uploader(running, outputs), planned))
    errors = sum(o.error is not None for o in observations)
    print(
        f"    uploaded in {time.monotonic() - began:.1f} s"
        + (f" ({errors} failed)" if errors else ""),
        flush=True,
    )

    ids = [o.image_id for o in observations if o.error is None and o.image_id]
    run_ids = set(ids)
    wait_for_notifications(drain, ids, timeout, began)
    if all(drain.heard(i) for i in ids):
        print(
            f"    all notified after {time.monotonic() - began:.0f} s; listening "
            f"{GRACE_SECONDS:.0f} s more for duplicates",
            flush=True,
        )
        time.sleep(GRACE_SECONDS)
    drain.stop()
    after = usage(running)

    notifications = dict(pipeline.notifications)
    for seen in observations:
        seen.heard = [
            Heard(n.body["type"], (n.body.get("failure") or {}).get("reason"), n.received_at)
            for n in notifications.get(seen.image_id or "", [])
        ]
    items = read_items(pipeline, ids)
    for seen in observations:
        item = items.get(seen.image_id or "")
        seen.status = item["status"] if item else NO_ITEM
        seen.reason = (item.get("failure") or {}).get("reason") if item else None
    dlqs = read_dlqs(pipeline, at_start, run_ids)
    report = assemble(
        observations,
        dlqs=dlqs,
        engine=engine,
        other_notifications=sum(len(v) for k, v in notifications.items() if k not in run_ids),
        emulator=emulator_cost(before, after, sum(1 for i in ids if notifications.get(i))),
        settings={
            "n": args.n,
            "threads": args.threads,
            "direct_fraction": args.direct_fraction,
            "timeout_s": timeout,
            "grace_s": GRACE_SECONDS,
            "cores": workers,
            "endpoint": running.endpoint,
        },
    )
    if drain.errors:
        report["drain_errors"] = drain.errors[:20]
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=200, help="uploads in the burst (200)")
    parser.add_argument(
        "--timeout",
        type=float,
        help="seconds to wait for the notifications after the last upload (120 + N)",
    )
    parser.add_argument("--threads", type=int, default=16, help="uploading threads (16)")
    parser.add_argument(
        "--direct-fraction",
        type=float,
        default=0.5,
        help="share of the uploads put straight to S3; the rest go through the API (0.5)",
    )
    parser.add_argument("--report", type=Path, default=REPORT, help=f"JSON report ({REPORT})")
    parser.add_argument("--keep", action="store_true", help="leave a stack it started running")
    args = parser.parse_args(argv)
    if args.n < 1 or args.threads < 1 or not 0 <= args.direct_fraction <= 1:
        parser.error("--n and --threads must be positive, --direct-fraction within 0..1")

    was_running = stack.running() is not None
    running = stack.up(watch_pid=None if args.keep or was_running else os.getpid())
    try:
        if args.direct_fraction < 1 and "api_url" not in running.outputs():
            parser.error("the stack has no upload API (api_url): use --direct-fraction 1")
        report = run_load(running, args)
    finally:
        if not args.keep and not was_running:
            stack.down()
            print("==> the stack this run started is stopped")
    print()
    print(format_report(report))
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nReport: {args.report}")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
