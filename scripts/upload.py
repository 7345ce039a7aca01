#!/usr/bin/env python3
"""Upload images through the upload API and wait for each result.

    scripts/upload.py photo.jpg more/*.png            # a table of results
    scripts/upload.py --json photo.jpg                # the results as JSON
    scripts/upload.py --api-url URL --api-key KEY ... # a real deployment

Each file is requested (POST /uploads), uploaded straight to S3 with its presigned POST (with
a progress bar on a terminal), and then polled (GET /images/{id}) until READY or FAILED.
Exit status: 0 if every image is READY, 1 if any failed, was refused or timed out, 2 for
usage errors.

Where the API is: --api-url / --api-key, else MEDIA_API_URL / MEDIA_API_KEY, else the local
stack's .local/outputs.json (after `make up`), whose CA (.local/tls/ca.pem) is then trusted.
--ca-bundle or MEDIA_API_CA_BUNDLE names another CA bundle.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tooling.api_client import ApiError, UploadClient, content_type_of


@dataclass
class Outcome:
    file: str
    image_id: str | None = None
    status: str = "ERROR"
    seconds: float | None = None
    renditions: dict[str, Any] = field(default_factory=dict)
    failure: dict[str, Any] | None = None
    error: str | None = None
    started: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "image_id": self.image_id,
            "status": self.status,
            "seconds": self.seconds,
            "renditions": self.renditions,
            "failure": self.failure,
            "error": self.error,
        }


def settings(args: argparse.Namespace) -> tuple[str, str, str | None]:
    url = args.api_url or os.environ.get("MEDIA_API_URL")
    key = args.api_key or os.environ.get("MEDIA_API_KEY")
    ca = args.ca_bundle or os.environ.get("MEDIA_API_CA_BUNDLE")
    if not (url and key):
        # Only this default needs the local stack's package: a deployment's API does not.
        from devstack import stack  # noqa: PLC0415

        outputs_file = stack.STATE_DIR / "outputs.json"
        try:
            outputs = stack.read_outputs()
        except (OSError, ValueError) as error:
            raise SystemExit(
                "upload.py: no API given (--api-url/--api-key or MEDIA_API_URL/MEDIA_API_KEY) "
                f"and no local stack outputs ({outputs_file}: {error}); run `make up` first"
            ) from None
        if "api_url" not in outputs:
            raise SystemExit(f"upload.py: {outputs_file} has no api_url; run `make up` again")
        url, key = url or outputs["api_url"], key or outputs["api_key"]
        local_ca = stack.ca_file()
        if ca is None and local_ca.is_file():
            ca = str(local_ca)
    return url, key, ca


class Progress:
    """A one-line progress bar on stderr when it is a terminal; silent otherwise."""

    def __init__(self, name: str, total: int) -> None:
        self.name, self.total, self.done = name, max(total, 1), 0
        self.enabled = sys.stderr.isatty()

    def __call__(self, sent: int) -> None:
        self.done += sent
        if self.enabled:
            width = 30
            filled = int(width * self.done / self.total)
            sys.stderr.write(
                f"\r{self.name[:30]:<30} [{'#' * filled}{'.' * (width - filled)}] "
                f"{self.done / 1024:,.0f}/{self.total / 1024:,.0f} KiB"
            )
            sys.stderr.flush()

    def finish(self, note: str) -> None:
        if self.enabled:
            sys.stderr.write(f"  {note}\n")
            sys.stderr.flush()


def upload(client: UploadClient, path: Path) -> Outcome:
    outcome = Outcome(file=str(path))
    try:
        data = path.read_bytes()
    except OSError as error:
        outcome.error = f"cannot read: {error.strerror}"
        return outcome
    try:
        created = client.request_upload(path.name, content_type_of(path.name), len(data))
    except ApiError as error:
        outcome.status, outcome.error = "REFUSED", str(error)
        return outcome
    outcome.image_id = created["image_id"]
    progress = Progress(path.name, len(data))
    outcome.started = time.monotonic()
    status, text = client.post_file(created["upload"], data, path.name, progress=progress)
    uploaded = status in (200, 201, 204)
    progress.finish("uploaded" if uploaded else f"S3 said {status}")
    if uploaded:
        outcome.status = "UPLOADED"
    else:
        outcome.status, outcome.error = "REFUSED", f"S3 answered {status}: {text[:300]}"
        outcome.image_id = None
    return outcome


def wait(client: UploadClient, outcome: Outcome, deadline: float) -> None:
    try:
        image = client.wait(outcome.image_id or "", timeout=max(0.0, deadline - time.monotonic()))
    except TimeoutError as error:
        outcome.status, outcome.error = "TIMEOUT", str(error)
        return
    except ApiError as error:
        outcome.status, outcome.error = "ERROR", str(error)
        return
    outcome.seconds = round(time.monotonic() - outcome.started, 2)
    outcome.status = image["status"]
    outcome.renditions = image.get("renditions") or {}
    outcome.failure = image.get("failure")


def table(outcomes: list[Outcome]) -> str:
    rows = [("FILE", "IMAGE ID", "STATUS", "SECONDS", "RESULT")]
    for o in outcomes:
        if o.status == "READY":
            result = ", ".join(
                f"{name} {r['width']}x{r['height']} {r['format']}"
                for name, r in o.renditions.items()
            )
        elif o.failure:
            result = f"{o.failure['reason']}: {o.failure['message']}"
        else:
            result = o.error or ""
        seconds = f"{o.seconds:.2f}" if o.seconds is not None else "-"
        rows.append((o.file, o.image_id or "-", o.status, seconds, result))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True))
        + "  "
        + row[4]
        for row in rows
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE")
    parser.add_argument("--api-url", help="base URL of the API (the api_url output)")
    parser.add_argument("--api-key", help="an API key (the api_key output)")
    parser.add_argument("--ca-bundle", help="CA bundle to trust (default: the system's)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--timeout", type=float, default=120, help="seconds to wait for all results (120)"
    )
    args = parser.parse_args(argv)
    url, key, ca = settings(args)
    client = UploadClient(url, key, ca)

    outcomes = [upload(client, path) for path in args.files]
    deadline = time.monotonic() + args.timeout
    for outcome in outcomes:
        if outcome.status == "UPLOADED":
            wait(client, outcome, deadline)

    if args.json:
        print(json.dumps([o.to_dict() for o in outcomes], indent=2))
    else:
        print(table(outcomes))
    return 0 if all(o.status == "READY" for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
