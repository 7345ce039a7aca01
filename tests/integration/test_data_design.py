"""The media table's data design against moto (in process): sharded, keys-only indexes that no
image writes to all together, and the few writes an image costs."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from media_pipeline.listing import EXAMINED_PER_PAGE, Listing, Position
from media_pipeline.media_store import MediaTable
from media_pipeline.model import (
    LISTING_KEY,
    LISTING_SHARDS,
    WAITING_ATTRIBUTES,
    WAITING_SHARD,
    Status,
    listing_key,
    new_media_id,
    shard,
)
from media_pipeline.values import iso

from tests.integration.conftest import DUPLICATES_TABLE, MEDIA_TABLE, count_calls
from tests.integration.test_api import request, valid
from tests.integration.test_workers import PHOTO, event_for, invoke

OWNER = "app-1"


def put_listed(aws, image_id: str, created_at: str, status: Status = Status.READY) -> None:
    aws.dynamodb.put_item(
        TableName=MEDIA_TABLE,
        Item={
            "id": {"S": image_id},
            "status": {"S": status.value},
            "owner": {"S": OWNER},
            LISTING_KEY: {"S": listing_key(OWNER, image_id)},
            "created_at": {"S": created_at},
        },
    )


def every_page(listing: Listing, limit: int, status: Status | None = None) -> list[str]:
    seen: list[str] = []
    after = None
    for _ in range(1000):
        items, after = listing.page(OWNER, limit=limit, status=status, after=after)
        assert len(items) <= limit
        seen += [item["id"] for item in items]
        if after is None:
            return seen
    raise AssertionError("the pages never ended")


@pytest.mark.parametrize("limit", [1, 2, 3, 7, 100])
def test_pages_merge_the_shards_newest_first_through_equal_timestamps(aws, limit):
    # GIVEN 60 images over every shard, many created in the same millisecond (same and other
    # shards alike)
    rng = random.Random(7)
    start = datetime(2026, 12, 5, tzinfo=UTC)
    expected = []
    for n in range(60):
        image_id = new_media_id()
        created_at = iso(
            (start + timedelta(milliseconds=rng.choice([0, 1, 2, n]))).timestamp(), "milliseconds"
        )
        put_listed(aws, image_id, created_at)
        expected.append(Position(created_at, image_id))
    expected.sort(reverse=True)
    assert len({shard(p.image_id, LISTING_SHARDS) for p in expected}) > LISTING_SHARDS // 2

    # WHEN they are paged through, THEN each comes once, in (created_at, id) order, newest first
    assert every_page(Listing(aws.dynamodb, MEDIA_TABLE), limit) == [p.image_id for p in expected]


def test_a_filter_that_matches_few_returns_short_pages_that_go_on(aws):
    listing = Listing(aws.dynamodb, MEDIA_TABLE)
    stamp = "2026-12-05T10:00:00.000Z"
    failed = []
    for n in range(EXAMINED_PER_PAGE + 40):
        image_id = new_media_id()
        is_failed = n in (3, EXAMINED_PER_PAGE + 20)
        put_listed(aws, image_id, stamp, Status.FAILED if is_failed else Status.READY)
        if is_failed:
            failed.append(image_id)

    items, after = listing.page(OWNER, limit=10, status=Status.FAILED)
    assert after is not None  # gave up looking after EXAMINED_PER_PAGE, with a place to go on
    found = [i["id"] for i in items]
    while after is not None:
        items, after = listing.page(OWNER, limit=10, status=Status.FAILED, after=after)
        found += [i["id"] for i in items]
    assert sorted(found) == sorted(failed)


def test_a_page_reads_each_shard_a_page_at_a_time_not_whole(aws):
    # GIVEN an app with 600 images over its 16 listing shards
    for n in range(600):
        put_listed(aws, new_media_id(), f"2026-12-05T10:{n // 60:02d}:{n % 60:02d}.000Z")
    queries = count_calls(aws.dynamodb, "Query")
    listing = Listing(aws.dynamodb, MEDIA_TABLE)

    # WHEN the first page of 20 is read
    items, after = listing.page(OWNER, limit=20)

    # THEN each shard was asked for 21 entries at most (a page, and one to know there is more),
    # not for everything it holds (a Query without Limit reads up to 1 MB), once each
    assert (len(items), after is not None) == (20, True)
    assert {q["Limit"] for q in queries} == {21}
    assert len(queries) == LISTING_SHARDS


def test_deleted_images_are_left_out_unless_asked_for(aws):
    listing = Listing(aws.dynamodb, MEDIA_TABLE)
    kept, gone = new_media_id(), new_media_id()
    put_listed(aws, kept, "2026-12-05T10:00:00.000Z")
    put_listed(aws, gone, "2026-12-05T10:00:01.000Z", Status.DELETED)
    assert every_page(listing, 10) == [kept]
    assert every_page(listing, 10, Status.DELETED) == [gone]


def test_an_api_upload_costs_three_item_writes_one_band_batch_and_no_idempotency_record(
    aws, api, load_handler, lambda_context
):
    # GIVEN the API and both workers, every write to DynamoDB counted
    thumbnail, metadata = load_handler("thumbnail"), load_handler("metadata")
    calls = [
        count_calls(module._table._client, operation)
        for module in (api.api, thumbnail.worker, metadata.worker)
        for operation in ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem")
    ]

    # WHEN an app requests an upload, uploads, and both halves run
    status, _, created = request(
        api, lambda_context, "POST", "/uploads", body=valid(size=len(PHOTO))
    )
    assert status == 201
    image_id = created["image_id"]
    key = created["upload"]["fields"]["key"]
    created_item = aws.media_item(image_id)
    assert created_item[LISTING_KEY] == listing_key(created_item["owner"], image_id)
    assert created_item[WAITING_SHARD] == f"{shard(image_id, 32):02d}"
    etag = aws.put_upload(key, PHOTO)
    event = event_for(aws, key, etag)
    invoke(metadata, lambda_context, event)
    assert aws.media_item(image_id)["status"] == "PROCESSING"
    invoke(thumbnail, lambda_context, event)

    # THEN three writes to the media item, and one batch of its 12 band items to the app's
    # duplicates index (a picture like no other: no link); it is READY and waits no more
    writes = [w.get("TableName") or next(iter(w["RequestItems"])) for c in calls for w in c]
    assert sorted(writes) == sorted([MEDIA_TABLE] * 3 + [DUPLICATES_TABLE])
    (batch,) = [w for c in calls for w in c if "RequestItems" in w]
    assert len(batch["RequestItems"][DUPLICATES_TABLE]) == 12
    item = aws.media_item(image_id)
    assert item["status"] == "READY"
    assert not set(WAITING_ATTRIBUTES) & set(item)
    assert item[LISTING_KEY] == created_item[LISTING_KEY]  # listed, without another write
    assert aws.dynamodb.scan(TableName="idempotency")["Items"] == []


def test_waiting_items_are_found_by_shard_and_leave_when_settled(aws):
    table = MediaTable(aws.dynamodb, MEDIA_TABLE)
    stamp = "2026-12-05T10:00:00.000Z"
    ids = [new_media_id() for _ in range(40)]
    for image_id in ids:
        assert table.create(
            {"id": image_id, "status": "AWAITING_UPLOAD", "created_at": stamp}
            | dict(zip(WAITING_ATTRIBUTES, (f"{shard(image_id, 32):02d}", stamp), strict=True))
        )
    assert sorted(table.waiting("2026-12-05T10:00:00.001Z")) == sorted(ids)
    assert list(table.waiting(stamp)) == []  # strictly before

    assert table.stop_waiting(ids[0])  # an upload request never used
    assert ids[0] not in set(table.waiting("2026-12-05T10:00:00.001Z"))
    assert aws.media_item(ids[0])["status"] == "AWAITING_UPLOAD"  # until its TTL
