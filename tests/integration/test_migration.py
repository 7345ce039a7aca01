"""Moving a media table of the release before the sharded indexes to the current design, step by
step as docs/deploy.md gives them, against moto (in process): no image is unlisted or left stuck
once the steps are done, and the running pipeline is never without the indexes it queries."""

from __future__ import annotations

from typing import Any

import pytest
from media_pipeline.migrations import backfill
from media_pipeline.model import (
    LISTING_INDEX,
    LISTING_KEY,
    WAITING_INDEX,
    WAITING_SHARD,
    media_id,
)

from tests.integration.conftest import MEDIA_TABLE, UPLOADS
from tests.integration.test_api import request
from tests.integration.test_reconciler import take
from tests.integration.test_workers import PHOTO, event_for, invoke

OWNER = "k1"
OLD = "2026-11-30T10:00:00.000Z"


def legacy_index(name: str, hash_key: str, range_key: str) -> dict[str, Any]:
    """An index of the release before the sharded ones, as its Terraform made it."""
    return {
        "IndexName": name,
        "KeySchema": [
            {"AttributeName": hash_key, "KeyType": "HASH"},
            {"AttributeName": range_key, "KeyType": "RANGE"},
        ],
        "Projection": {"ProjectionType": "ALL"},
    }


def new_index(name: str, hash_key: str, range_key: str) -> dict[str, Any]:
    return {
        **legacy_index(name, hash_key, range_key),
        "Projection": {"ProjectionType": "KEYS_ONLY"},
    }


def attributes(*names: str) -> list[dict[str, str]]:
    return [{"AttributeName": n, "AttributeType": "S"} for n in names]


@pytest.fixture
def legacy_table(aws):
    """The media table as the release before made it: the pending and owner indexes only."""
    aws.dynamodb.delete_table(TableName=MEDIA_TABLE)
    aws.dynamodb.create_table(
        TableName=MEDIA_TABLE,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=attributes("id", "pending", "updated_at", "owner", "created_at"),
        GlobalSecondaryIndexes=[
            legacy_index("pending", "pending", "updated_at"),
            legacy_index("owner", "owner", "created_at"),
        ],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    return aws


def old_item(aws, image_id: str, status: str, **extra: str) -> None:
    """An item as the earlier release wrote it."""
    item = {"id": image_id, "status": status, "created_at": OLD, "updated_at": OLD, **extra}
    if status in ("AWAITING_UPLOAD", "PROCESSING"):
        item["pending"] = status
    aws.dynamodb.put_item(TableName=MEDIA_TABLE, Item={k: {"S": v} for k, v in item.items()})


def listed(api, lambda_context) -> list[str]:
    status, _, page = request(api, lambda_context, "GET", "/images", query={"limit": "100"})
    assert status == 200
    return sorted(i["image_id"] for i in page["images"])


def add_indexes(aws, *indexes: dict[str, Any], definitions: list[dict[str, str]]) -> None:
    for index in indexes:
        aws.dynamodb.update_table(
            TableName=MEDIA_TABLE,
            AttributeDefinitions=definitions,
            GlobalSecondaryIndexUpdates=[{"Create": index}],
        )


def test_the_documented_steps_leave_no_image_unlisted_or_stuck(
    legacy_table, api, load_handler, lambda_context
):
    aws = legacy_table
    thumbnail, metadata, reconciler = (
        load_handler(n) for n in ("thumbnail", "metadata", "reconciler")
    )
    # GIVEN what the earlier release left: a READY image, an upload request, a deleted image,
    # all of one app, and a direct upload stuck PROCESSING (its metadata job lost)
    ready, awaiting, deleted = "a" * 26, "b" * 26, "c" * 26
    old_item(aws, ready, "READY", owner=OWNER)
    old_item(aws, awaiting, "AWAITING_UPLOAD", owner=OWNER, bucket=UPLOADS, key="uploads/x")
    old_item(aws, deleted, "DELETED", owner=OWNER)
    key = "uploads/stuck/photo.jpg"
    event = event_for(aws, key, aws.put_upload(key, PHOTO))
    invoke(thumbnail, lambda_context, event)  # the current code's half: it has its keys
    stuck = media_id(UPLOADS, key)
    aws.dynamodb.update_item(  # as the earlier release would have left it
        TableName=MEDIA_TABLE,
        Key={"id": {"S": stuck}},
        UpdateExpression="SET #p = :p, updated_at = :old REMOVE waiting_shard, waiting_since",
        ExpressionAttributeNames={"#p": "pending"},
        ExpressionAttributeValues={":p": {"S": "PROCESSING"}, ":old": {"S": OLD}},
    )

    # STEP 1: make migrate, while the earlier release still runs: the items get their keys
    first = backfill(aws.dynamodb, MEDIA_TABLE)
    assert first.added == {"listing": 3, "waiting": 2}
    assert first.changed_meanwhile == 0

    # STEP 2: legacy_indexes = true, deploy: the new indexes beside the old, the new code
    add_indexes(
        aws,
        new_index(WAITING_INDEX, WAITING_SHARD, "waiting_since"),
        new_index(LISTING_INDEX, LISTING_KEY, "created_at"),
        definitions=attributes(WAITING_SHARD, "waiting_since", LISTING_KEY, "created_at"),
    )
    # ... while, until the functions were replaced, the earlier release took one more request
    straggler = "d" * 26
    old_item(aws, straggler, "AWAITING_UPLOAD", owner=OWNER, bucket=UPLOADS, key="uploads/y")
    assert listed(api, lambda_context) == sorted([ready, awaiting])  # not yet the straggler

    # STEP 3: make migrate again: the straggler, and then nothing left
    assert backfill(aws.dynamodb, MEDIA_TABLE).added == {"listing": 1, "waiting": 1}
    assert backfill(aws.dynamodb, MEDIA_TABLE).done
    assert listed(api, lambda_context) == sorted([ready, awaiting, straggler])

    # STEP 4: legacy_indexes = false, deploy: the old indexes go
    for name in ("pending", "owner"):
        aws.dynamodb.update_table(
            TableName=MEDIA_TABLE, GlobalSecondaryIndexUpdates=[{"Delete": {"IndexName": name}}]
        )

    # THEN the current code lists every image, and the reconciler finds the stuck one, whose
    # re-sent job completes it
    assert listed(api, lambda_context) == sorted([ready, awaiting, straggler])
    report = reconciler.lambda_handler({"stuck_after_seconds": 0}, lambda_context)
    assert report["images"]["requeued"] == [stuck], report
    invoke(metadata, lambda_context, *take(aws, "metadata-jobs"))
    item = aws.media_item(stuck)
    assert item["status"] == "READY"
    assert not {"pending", WAITING_SHARD} & set(item)  # out of every index
    assert backfill(aws.dynamodb, MEDIA_TABLE).done
