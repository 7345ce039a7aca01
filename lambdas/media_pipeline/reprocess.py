"""Bring existing images up to date after the renditions settings changed (sizes, formats,
qualities): find the READY images whose renditions were made with other settings and send each
one's job to the renditions worker's queue again (``scripts/reprocess.py``, ``make reprocess``).

The job is the upload's own S3 "Object Created" event (``reconcile.job_event``), so the
renditions worker treats it like any other: idempotent on the object version and its own settings
fingerprint, it finds the item READY with other settings (``Decision.REFRESH``), rewrites only
the renditions whose key changed, retires the old ones, and the notifier announces one
``image.updated``. Running it again finds nothing left to do (or, while jobs are still queued,
sends jobs the worker recognises as done).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from media_pipeline.config.workers import encode_options_from_env, renditions_from_env
from media_pipeline.dynamo import from_item
from media_pipeline.fingerprint import settings_fingerprint
from media_pipeline.model import Half, Status
from media_pipeline.reconcile import job_event

SETTINGS = Half.RENDITIONS.settings_attribute
_FIELDS = ("id", "bucket", "key", "etag", "size", "sequencer", "version_id", SETTINGS)


def current_settings(environment: Mapping[str, str]) -> str:
    """The settings fingerprint of a renditions worker with this environment."""
    return settings_fingerprint(
        renditions_from_env(environment), encode_options_from_env(environment)
    )


def up_to_date(recorded: str | None, settings: str) -> bool:
    """Whether an image whose renditions were made with ``recorded`` (its
    ``renditions_settings``) is made with the deployment's ``settings``, its own framing aside."""
    return bool(recorded) and (recorded == settings or recorded.startswith(f"{settings}~"))


def outdated(
    dynamodb: Any, table: str, settings: str
) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """Page by page, the READY images made with settings other than ``settings``, with how
    many items were read so far (for progress). One paginated Scan of the table: an operator's
    batch command, not a request path. An image whose app set its framing records the
    deployment's settings with the framing's revision after them (``model.framed_settings``):
    it is up to date when they begin with ``settings``."""
    scanned = 0
    paginator = dynamodb.get_paginator("scan")
    for page in paginator.paginate(
        TableName=table,
        ConsistentRead=True,
        FilterExpression=(
            "#status = :ready AND (attribute_not_exists(#s) OR NOT begins_with(#s, :settings))"
        ),
        ProjectionExpression=", ".join(f"#f{i}" for i in range(len(_FIELDS))),
        ExpressionAttributeNames={
            "#status": "status",
            "#s": SETTINGS,
            **{f"#f{i}": name for i, name in enumerate(_FIELDS)},
        },
        ExpressionAttributeValues={
            ":ready": {"S": Status.READY.value},
            ":settings": {"S": settings},
        },
    ):
        scanned += page.get("ScannedCount", 0)
        yield scanned, [from_item(item) for item in page.get("Items", [])]


@dataclass
class Run:
    settings: str
    dry_run: bool
    scanned: int = 0
    images: list[str] = field(default_factory=list)
    id: str = field(default_factory=lambda: str(uuid.uuid4()))  # in every job it sends

    def to_dict(self) -> dict[str, Any]:
        return {
            "run": self.id,
            "settings": self.settings,
            "dry_run": self.dry_run,
            "scanned": self.scanned,
            "outdated": len(self.images),
            "enqueued": 0 if self.dry_run else len(self.images),
            "images": self.images,
        }


def reprocess(
    *,
    dynamodb: Any,
    sqs: Any,
    table: str,
    queue_url: str,
    settings: str,
    dry_run: bool = False,
    progress: Callable[[Run], None] | None = None,
) -> Run:
    """Enqueue a renditions job for every outdated image (nothing in a dry run)."""
    run = Run(settings=settings, dry_run=dry_run)
    for scanned, items in outdated(dynamodb, table, settings):
        run.scanned = scanned
        for start in range(0, len(items), 10):
            _send(sqs, queue_url, items[start : start + 10], dry_run, run.id)
        run.images += [item["id"] for item in items]
        if progress:
            progress(run)
    return run


def _send(
    sqs: Any, queue_url: str, items: list[dict[str, Any]], dry_run: bool, run_id: str
) -> None:
    if dry_run or not items:
        return
    entries = [
        {
            "Id": str(i),
            "MessageBody": json.dumps(
                job_event(
                    bucket=item["bucket"],
                    key=item["key"],
                    etag=item["etag"],
                    size=int(item.get("size") or 0),
                    sequencer=item["sequencer"],
                    version_id=item.get("version_id"),
                    reprocess_run=run_id,
                )
            ),
        }
        for i, item in enumerate(items)
    ]
    response = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
    if response.get("Failed"):
        raise RuntimeError(f"the jobs queue refused {len(response['Failed'])} job(s): {response}")
