"""Moving a media table written by an earlier release to the current data design.

The sharded indexes (``waiting``, ``listing``; docs/operations.md, "The data design") replaced
the ``pending`` index (one key per status) and the ``owner`` index (one key per app). Items
written before carry the old keys (``pending``, ``owner``) but not the new ones, so DynamoDB
leaves them out of the new indexes: :func:`backfill` gives each of them the new keys, from what
it already holds. It is a paginated Scan with one conditional write per item that lacks a key,
safe to run while the pipeline runs and any number of times (an item written meanwhile is left as
it is; a second run finds nothing to do). ``scripts/migrate.py`` (``make migrate``) runs it;
docs/deploy.md gives the order of the steps around it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from boto3.dynamodb.conditions import Attr

from media_pipeline import dynamo
from media_pipeline.model import (
    LEGACY_PENDING_ATTRIBUTE,
    LISTING_KEY,
    OWNER_ATTRIBUTE,
    WAITING_SHARD,
    Status,
    listing_key,
    waiting_attributes,
)

_READ = ("id", "status", OWNER_ATTRIBUTE, LISTING_KEY, LEGACY_PENDING_ATTRIBUTE, WAITING_SHARD)
_READ += ("created_at", "updated_at")
_WAITING = (Status.AWAITING_UPLOAD.value, Status.PROCESSING.value)


@dataclass
class Backfill:
    """What a run found and did, by kind of key (``listing``, ``waiting``)."""

    dry_run: bool
    scanned: int = 0
    added: Counter[str] = field(default_factory=Counter)
    changed_meanwhile: int = 0

    @property
    def done(self) -> bool:
        """Whether every item already had its keys (nothing to add, in a dry run too)."""
        return not self.added and not self.changed_meanwhile

    def to_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "scanned": self.scanned,
            "added": dict(self.added),
            "changed_meanwhile": self.changed_meanwhile,
            "done": self.done,
        }


def missing_keys(item: dict[str, Any]) -> dict[str, str]:
    """The new index keys an item of an earlier release lacks, from what it holds."""
    keys: dict[str, str] = {}
    owner = item.get(OWNER_ATTRIBUTE)
    if owner and LISTING_KEY not in item:
        keys[LISTING_KEY] = listing_key(owner, item["id"])
    # Waiting by the earlier release's word (its ``pending``): an upload request the current
    # reconciler took out of the index (never used) has neither, and stays out.
    legacy_waiting = item.get(LEGACY_PENDING_ATTRIBUTE) in _WAITING
    if legacy_waiting and item.get("status") in _WAITING and WAITING_SHARD not in item:
        since = item.get("updated_at") or item.get("created_at") or ""
        keys |= waiting_attributes(item["id"], since)
    return keys


def backfill(
    client: Any,
    table: str,
    *,
    dry_run: bool = False,
    progress: Callable[[Backfill], None] | None = None,
) -> Backfill:
    """Give every item of ``table`` the keys of the current indexes that it lacks."""
    run = Backfill(dry_run=dry_run)
    names = {f"#a{i}": name for i, name in enumerate(_READ)}
    paginator = client.get_paginator("scan")
    for page in paginator.paginate(
        TableName=table,
        ProjectionExpression=", ".join(names),
        ExpressionAttributeNames=names,
        ConsistentRead=True,
    ):
        for raw in page.get("Items", []):
            run.scanned += 1
            item = dynamo.from_item(raw)
            keys = missing_keys(item)
            if not keys:
                continue
            kinds = {"listing" if name == LISTING_KEY else "waiting" for name in keys}
            if not dry_run and not _add(client, table, item, keys):
                run.changed_meanwhile += 1
                continue
            run.added.update(kinds)
        if progress:
            progress(run)
    return run


def _add(client: Any, table: str, item: dict[str, Any], keys: dict[str, str]) -> bool:
    """Add ``keys`` to the item if it is still as scanned in what they derive from."""
    when = Attr("id").exists()
    for name in keys:
        when &= Attr(name).not_exists()
    if LISTING_KEY in keys:
        when &= Attr(OWNER_ATTRIBUTE).eq(item[OWNER_ATTRIBUTE])
    if WAITING_SHARD in keys:
        when &= Attr("status").eq(item["status"])
    try:
        client.update_item(
            TableName=table, Key={"id": {"S": item["id"]}}, **dynamo.update(set_=keys, when=when)
        )
    except client.exceptions.ConditionalCheckFailedException:
        return False  # settled, deleted or given its keys meanwhile: the next run looks again
    return True
