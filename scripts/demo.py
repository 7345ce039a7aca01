#!/usr/bin/env python3
"""make demo: the whole product on the embedded local stack, with the sample images.

Brings the stack up (or reuses a running one), uploads every file in samples/, waits for each
one's notification on the app events queue, prints what happened, copies the renditions to out/
for a person to look at. Then the rest of an image's life: the small rendition is redefined and
the images are reprocessed (only that rendition is rewritten, one image.updated each, a second
run finds nothing), an image's cropped rendition is moved with PATCH /images/{id} (only it is cut
again, one image.updated), an app's photo and a recompressed copy are uploaded through the API
(the copy's image.ready names the photo), and two images are deleted, one through the API and
one in S3 (one image.deleted each, nothing left). Stops the stack it started (unless --keep).
Exits 0 only if every image ended as samples/manifest.csv says and the lifecycle did what it
should.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from devstack import stack
from devstack.pipeline import Pipeline
from media_pipeline.reprocess import Run, current_settings, reprocess
from tooling.api_client import UploadClient

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


def iam_denials(running: stack.Stack, since: int) -> list[str]:
    """Calls the stack's IAM enforcement denied since decision ``since`` (devstack/iam.py),
    as problems; a summary line when there are none."""
    report = running.control(f"iam?calls=0&denials_since={since}")
    if not report["enforced"]:
        print("\nIAM: not enforced (DEVSTACK_IAM=off)")
        return []
    denied = report["denials"]
    if not denied:
        print(
            f"\nIAM: every call was allowed, each function as its own role "
            f"({report['sequence'] - since} decisions)"
        )
    return [
        f"IAM denied {d['function']}: {d['action']} on {d['resource']} ({d['reason']})"
        for d in denied
    ]


def run_demo(running: stack.Stack, timeout: float, started: float) -> int:
    since = running.control("iam?calls=0")["sequence"]
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
            *(f"\n  {line}" for line in iam_denials(running, since)),
            file=sys.stderr,
        )
        return 1
    print("\nEvery image ended as expected.")
    ready = [u.id for u in uploads.values() if results[u.id].body["type"] == "image.ready"]
    # the widest picture the delete step leaves alone shows its square crop moved best
    cropped = max(ready[2:], key=lambda i: _aspect(results[i].body))
    problems = (
        demo_cdn(pipeline, running, ready)
        + demo_crops(pipeline, running, cropped)
        # the image whose crop moved has its own image.updated: the others show the reprocess
        + demo_reprocess(pipeline, running, [i for i in ready if i != cropped])
        + demo_duplicates(pipeline, running)
        + demo_delete(pipeline, running, ready)
    )
    problems += iam_denials(running, since)
    if problems:
        print("\nFAILED:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    if "api_url" in pipeline.outputs:
        print(
            "\nThe same, the way apps do it (the upload API; make demo KEEP=1 keeps the stack):"
            f"\n  .venv/bin/python scripts/upload.py samples/flower.webp    # CLI"
            f"\n  make web    # then open {stack.web_origins(running.port)[0]}/    (browser demo)"
        )
    return 0


def api_client(pipeline: Pipeline, running: stack.Stack) -> UploadClient:
    """The upload API as an app reaches it: the stack's URL and key, its CA."""
    return UploadClient(
        pipeline.outputs["api_url"], pipeline.outputs["api_key"], str(running.ca_bundle)
    )


def demo_cdn(pipeline: Pipeline, running: stack.Stack, ready: list[str]) -> list[str]:
    """Show an image as a browser gets it: GET /images/{id}'s picture, every URL of it fetched
    from the CDN (the stack's edge), and the same URL refused once tampered with."""
    cdn = pipeline.outputs.get("cdn")
    if not cdn or "api_url" not in pipeline.outputs:
        return []
    client = api_client(pipeline, running)
    image = client.image(ready[0])
    picture = image.get("picture") or {}
    print(
        f"\n==> the CDN: GET /images/{ready[0][:10]}... hands out {cdn['url']}/... URLs"
        f" ({'signed until ' + str(picture.get('expires_at')) if cdn['signed'] else 'public'})"
    )
    entries = [(s["type"], s["srcset"]) for s in picture.get("sources", [])]
    entries.append(
        (picture.get("img", {}).get("type") or "img", picture.get("img", {}).get("srcset", ""))
    )
    rows, problems = [], []
    for content_type, srcset in entries:
        for entry in filter(None, srcset.split(", ")):
            url, width = entry.rsplit(" ", 1)
            status, body, served = client.fetch(url)
            rows.append((content_type, width, str(status), served, str(len(body))))
            if status != 200 or served != content_type:
                problems.append(f"CDN: {url} answered {status} {served}")
    tampered = picture["img"]["src"].replace("Signature=", "Signature=A", 1) if picture else ""
    status = client.fetch(tampered)[0] if tampered else 0
    rows.append(("the largest, signature tampered with", "-", str(status), "-", "-"))
    if status != 403:
        problems.append(f"CDN: a tampered URL answered {status}, not 403")
    print_table(("<picture> source", "width", "status", "Content-Type", "bytes"), rows)
    return problems


def new_small(renditions: str) -> str:
    """The deployment's renditions (RENDITIONS) with the small one redefined to 160 px."""
    return ",".join(
        "small:160" if entry.strip().split(":")[0] == "small" else entry.strip()
        for entry in renditions.split(",")
    )


def demo_reprocess(pipeline: Pipeline, running: stack.Stack, ready: list[str]) -> list[str]:
    """Redefine the small rendition, reprocess, check that only it was rewritten; restore."""
    function = pipeline.outputs["functions"]["thumbnail"]
    lambda_client = pipeline.client("lambda")
    original = lambda_client.get_function_configuration(FunctionName=function)["Environment"]
    changed = new_small(original["Variables"]["RENDITIONS"])
    print(f"\n==> reprocess: the small rendition becomes 160 px ({changed}), then make reprocess")
    before = {i: pipeline.item(i)["renditions"] for i in ready}
    configure(lambda_client, running, function, {**original["Variables"], "RENDITIONS": changed})
    problems: list[str] = []
    try:
        settings = current_settings({**original["Variables"], "RENDITIONS": changed})

        def progress(run: Run) -> None:
            print(f"  scanned {run.scanned} item(s), enqueued {len(run.images)}")

        def run_reprocess(progress: Callable[[Run], None] | None = None) -> Run:
            return reprocess(
                dynamodb=pipeline.dynamodb,
                sqs=pipeline.sqs,
                table=pipeline.outputs["media_table"],
                queue_url=pipeline.outputs["queues"]["thumbnail_jobs"],
                settings=settings,
                progress=progress,
            )

        run = run_reprocess(progress)
        for image_id in ready:
            pipeline.wait_for_count(image_id, 2, timeout=180)
        pipeline.drain(3)

        def rewritten(image_id: str) -> tuple[tuple[str, ...], str | None]:
            after = pipeline.item(image_id)["renditions"]
            changed = sorted(n for n in after if after[n]["key"] != before[image_id][n]["key"])
            updates = [
                n for n in pipeline.notifications[image_id] if n.body["type"] == "image.updated"
            ]
            small = after["small"]
            row = (", ".join(changed), f"{small['width']}x{small['height']}", str(len(updates)))
            if changed != ["small"] or len(updates) != 1:
                return row, f"rewrote {changed}, {len(updates)} image.updated"
            return row, None

        problems += check_images(ready, ("rewritten", "small now", "image.updated"), rewritten)
        again = run_reprocess()
        print(f"  run again: {len(again.images)} image(s) to reprocess (idempotent)")
        if run.images and again.images:
            problems.append(f"a second reprocess enqueued {again.images}")
    finally:
        configure(lambda_client, running, function, original["Variables"])
        print("  (the thumbnail settings are restored; make reprocess would follow them back)")
    return problems


def configure(lambda_client, running: stack.Stack, function: str, variables: dict) -> None:
    """What `terraform apply` with other renditions does, and wait until it runs."""

    def digest() -> str | None:
        return running.control("status")["functions"].get(function, {}).get("environment_sha256")

    before = digest()
    lambda_client.update_function_configuration(
        FunctionName=function, Environment={"Variables": variables}
    )
    lambda_client.get_waiter("function_updated_v2").wait(FunctionName=function)
    deadline = time.monotonic() + 30
    while digest() == before and time.monotonic() < deadline:
        time.sleep(0.2)


def _aspect(body: dict) -> float:
    metadata = body["image"].get("metadata") or {}
    width, height = metadata.get("width") or 1, metadata.get("height") or 1
    if metadata.get("orientation") in (5, 6, 7, 8):
        width, height = height, width
    return width / height


def demo_crops(pipeline: Pipeline, running: stack.Stack, image_id: str) -> list[str]:
    """Show a cropped rendition and its placeholder, then move its focal point with
    PATCH /images/{id}: only the crop is cut again, and one image.updated says so."""
    client = api_client(pipeline, running)
    image = client.image(image_id)
    metadata = image["metadata"] or {}
    crops = metadata.get("crops") or {}
    if not crops:
        return []  # a deployment without cropped_renditions
    name = sorted(crops)[0]
    print(
        f"\n==> crops: {image_id[:10]}... ({image['content_type']},"
        f" {metadata['width']}x{metadata['height']}) has a {name} rendition cut around its"
        " point of interest"
        f"\n  thumbhash (the placeholder a page draws): {metadata.get('thumbhash')}"
    )
    before = image["renditions"]
    announced = len(pipeline.notifications.get(image_id, []))
    focus = {"x": 0.02, "y": 0.5}
    print(f"  PATCH /images/{image_id[:10]}... {{'focus': {focus}}}  (the left edge)")
    response = client.call("PATCH", f"/images/{image_id}", {"focus": focus})
    if response.status != 202:
        return [f"PATCH answered {response.status}: {response.body}"]
    pipeline.wait_for_count(image_id, announced + 1, timeout=120)
    pipeline.drain(3)
    after = client.image(image_id)
    moved = after["metadata"]
    rows = [
        ("before", str(metadata["focus"]), str(crops[name])),
        ("after", str(moved["focus"]), str(moved["crops"][name])),
    ]
    print_table(("", "focus", f"{name} window [left, top, right, bottom]"), rows)
    changed = sorted(n for n in after["renditions"] if after["renditions"][n] != before.get(n))
    updates = pipeline.notifications[image_id][announced:]
    print(
        f"  renditions cut again: {', '.join(changed)}; notifications: "
        f"{', '.join(n.body['type'] for n in updates)}"
    )
    status, data, _ = client.fetch(after["renditions"][name]["url"])
    if status == 200:
        target = OUT / f"{image_id}-{name}-left.jpg"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        print(f"  the new {name}: {target.relative_to(ROOT)}")
    problems = []
    if changed != [name] or [n.body["type"] for n in updates] != ["image.updated"]:
        problems.append(f"crops: rewrote {changed}, announced {[n.body['type'] for n in updates]}")
    if moved["focus"]["source"] != "given" or moved["crops"][name][0] != 0:
        problems.append(f"crops: the {name} was not cut at the left edge: {moved['crops']}")
    if status != 200:
        problems.append(f"crops: the new {name} answered {status}")
    return problems


DUPLICATED = "landscape-exif-rotated.jpg"


def demo_duplicates(pipeline: Pipeline, running: stack.Stack) -> list[str]:
    """An app uploads a photo through the API, then a smaller, recompressed copy of it: the
    copy's image.ready names the photo (duplicate_of), and GET /images?duplicate_of= lists it."""
    import io  # noqa: PLC0415 - this step only

    from PIL import Image, ImageOps  # noqa: PLC0415 - this step only

    client = api_client(pipeline, running)
    with Image.open(SAMPLES / DUPLICATED) as photo:
        upright = ImageOps.exif_transpose(photo).convert("RGB")
    copy = upright.resize((upright.width // 2, upright.height // 2), Image.Resampling.LANCZOS)
    encoded = io.BytesIO()
    copy.save(encoded, "JPEG", quality=70)
    print(
        f"\n==> duplicates: the app uploads {DUPLICATED} through the API, then a copy at half"
        " its size, recompressed (quality 70)"
    )
    ids = {}
    for name, data in (
        (DUPLICATED, (SAMPLES / DUPLICATED).read_bytes()),
        ("copy.jpg", encoded.getvalue()),
    ):
        created = client.request_upload(name, "image/jpeg", len(data))
        status, text = client.post_file(created["upload"], data, name)
        if status != 204:
            return [f"duplicates: the upload of {name} answered {status}: {text[:200]}"]
        ids[name] = created["image_id"]
        pipeline.wait_for([created["image_id"]], timeout=120)
    original, copy_id = ids[DUPLICATED], ids["copy.jpg"]
    event = pipeline.notifications[copy_id][0].body
    named = event["image"].get("duplicate_of")
    listed = client.call("GET", f"/images?duplicate_of={original}").body
    print_table(
        ("image", "image.ready's duplicate_of", "GET /images?duplicate_of=<photo>"),
        [
            (
                f"{DUPLICATED} {original[:10]}...",
                str(pipeline.notifications[original][0].body["image"].get("duplicate_of")),
                "-",
            ),
            (
                f"copy.jpg {copy_id[:10]}...",
                f"{named['image_id'][:10]}..., distance {named['distance']}" if named else "None",
                ", ".join(i["image_id"][:10] + "..." for i in listed.get("images", [])),
            ),
        ],
    )
    problems = []
    if not named or named["image_id"] != original:
        problems.append(f"duplicates: the copy names {named}, not {original}")
    if [i["image_id"] for i in listed.get("images", [])] != [copy_id]:
        problems.append(f"duplicates: GET /images?duplicate_of= listed {listed}")
    return problems


def demo_delete(pipeline: Pipeline, running: stack.Stack, ready: list[str]) -> list[str]:
    """Delete one image through the API and another by deleting its original in S3."""
    through_api, in_s3 = ready[0], ready[1]
    print(
        f"\n==> delete: DELETE /images/{through_api[:10]}..., and the original of "
        f"{in_s3[:10]}... deleted in S3"
    )
    client = api_client(pipeline, running)
    status = client.call("DELETE", f"/images/{through_api}").status
    item = pipeline.item(in_s3)
    pipeline.s3.delete_object(Bucket=item["bucket"], Key=item["key"])
    problems = [] if status == 204 else [f"DELETE answered {status}"]
    for image_id in (through_api, in_s3):
        pipeline.wait_for_count(image_id, 3, timeout=90)
    pipeline.drain(3)

    def gone(image_id: str) -> tuple[tuple[str, ...], str | None]:
        deleted = [n for n in pipeline.notifications[image_id] if n.body["type"] == "image.deleted"]
        listed = pipeline.s3.list_objects_v2(
            Bucket=pipeline.outputs["renditions_bucket"], Prefix=f"{image_id}/"
        )
        left = listed.get("KeyCount", 0)
        answer = client.call("GET", f"/images/{image_id}")
        row = (
            pipeline.item(image_id)["status"],
            str(len(deleted)),
            str(left),
            f"{answer.status} {answer.body.get('code')}",
        )
        if len(deleted) != 1 or left or answer.status != 404:
            return row, f"{len(deleted)} image.deleted, {left} renditions left"
        return row, None

    header = ("status", "image.deleted", "renditions left", "GET")
    return problems + check_images((through_api, in_s3), header, gone)


def check_images(
    image_ids: Iterable[str],
    header: tuple[str, ...],
    check: Callable[[str], tuple[tuple[str, ...], str | None]],
) -> list[str]:
    """Check each image and print one row per image (its short id first); the problems found.

    ``check`` gives an image's cells under ``header`` and what is wrong with it (None: nothing).
    """
    rows, problems = [], []
    for image_id in image_ids:
        cells, problem = check(image_id)
        rows.append((image_id[:10], *cells))
        if problem:
            problems.append(f"{image_id}: {problem}")
    print_table(("id", *header), rows)
    return problems


def print_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)))


if __name__ == "__main__":
    sys.exit(main())
