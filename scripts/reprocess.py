"""Bring existing images up to date after the renditions settings changed (docs/operations.md,
"Reprocessing after a settings change").

    python scripts/reprocess.py [--dry-run] [--wait SECONDS] [--outputs outputs.json]

Reads the deployed thumbnail function's settings (RENDITIONS, formats, qualities), finds the
READY images whose renditions were made with other settings, and sends each one's job to the
thumbnail jobs queue (``media_pipeline.reprocess``), printing progress as it scans. Only the
renditions whose settings changed are rewritten; subscribers get one ``image.updated`` per image.
With ``--wait`` it then waits until every enqueued image carries the new settings. Running it
twice does nothing the second time.

Reads the stack's outputs and talks to the same endpoints as scripts/recover.py.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from media_pipeline.dynamo import from_item
from media_pipeline.reprocess import SETTINGS, Run, current_settings, reprocess, up_to_date
from recover import stack_session

POLL_SECONDS = 1.0


def deployed_settings(lambda_client: Any, function: str) -> str:
    """The settings fingerprint of the thumbnail function as deployed (after any update)."""
    lambda_client.get_waiter("function_updated_v2").wait(FunctionName=function)
    config = lambda_client.get_function_configuration(FunctionName=function)
    return current_settings((config.get("Environment") or {}).get("Variables") or {})


def wait_until_current(
    dynamodb: Any, table: str, run: Run, timeout: float
) -> tuple[list[str], list[str]]:
    """Poll the enqueued images until each carries ``run.settings``: (done, not yet)."""
    deadline = time.monotonic() + timeout
    pending = set(run.images)
    while pending and time.monotonic() < deadline:
        for image_id in sorted(pending):
            item = dynamodb.get_item(
                TableName=table, Key={"id": {"S": image_id}}, ConsistentRead=True
            ).get("Item")
            current = from_item(item) if item else {}
            if not current or up_to_date(current.get(SETTINGS), run.settings):
                pending.discard(image_id)  # brought up to date (or deleted meanwhile)
        print(f"  {len(run.images) - len(pending)}/{len(run.images)} up to date", file=sys.stderr)
        if pending:
            time.sleep(POLL_SECONDS)
    return sorted(set(run.images) - pending), sorted(pending)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--outputs", type=Path, help="terraform output -json of the stack")
    parser.add_argument("--dry-run", action="store_true", help="list the images, enqueue none")
    parser.add_argument(
        "--wait", type=float, default=0, metavar="SECONDS", help="wait for the images to be done"
    )
    args = parser.parse_args(argv)

    outputs, session = stack_session(args.outputs)
    settings = deployed_settings(session.client("lambda"), outputs["functions"]["thumbnail"])
    dynamodb = session.client("dynamodb")

    def progress(run: Run) -> None:
        verb = "would enqueue" if run.dry_run else "enqueued"
        print(f"  scanned {run.scanned} item(s), {verb} {len(run.images)}", file=sys.stderr)

    print(f"renditions settings {settings}: looking for images made with others", file=sys.stderr)
    run = reprocess(
        dynamodb=dynamodb,
        sqs=session.client("sqs"),
        table=outputs["media_table"],
        queue_url=outputs["queues"]["thumbnail_jobs"],
        settings=settings,
        dry_run=args.dry_run,
        progress=progress,
    )
    report = run.to_dict()
    status = 0
    if args.wait and run.images and not args.dry_run:
        done, late = wait_until_current(dynamodb, outputs["media_table"], run, args.wait)
        report |= {"up_to_date": len(done), "not_yet": late}
        status = 1 if late else 0
    print(json.dumps(report, indent=2))
    return status


if __name__ == "__main__":
    sys.exit(main())
