"""An app's images, newest first, from the sharded ``listing`` index (``GET /images``).

Each image made through the upload API is in one of the app's LISTING_SHARDS index keys
(``model.listing_key``), so that no key takes a write from every image of a busy app. A page
merges the shards: each is queried newest first from the position the page starts after, the
entries are merged in one order, and the page's items are read with BatchGetItem (the index
holds keys only). The order is (``created_at``, id), newest first; a page ends at a
:class:`Position`, which the next page starts after, so pages neither repeat nor skip an image
whatever is uploaded meanwhile. A client holds a position as an opaque cursor
(:func:`encode_cursor`), good for the owner it was handed to only.
"""

from __future__ import annotations

import base64
import binascii
import heapq
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

from boto3.dynamodb.conditions import Key

from media_pipeline import dynamo
from media_pipeline.duplicates_index import DUPLICATE_OF, DuplicatesIndex
from media_pipeline.model import (
    LISTING_INDEX,
    LISTING_KEY,
    OWNER_ATTRIBUTE,
    Status,
    is_media_id,
    listing_keys,
)

EXAMINED_PER_PAGE = 500  # images looked at for one page at most (a rare status filter)


class Position(NamedTuple):
    """Where an image is in the listing order (newest first: larger is earlier)."""

    created_at: str
    image_id: str


_CURSOR_FIELDS = ("id", OWNER_ATTRIBUTE, "created_at")  # the position, and whose listing


def encode_cursor(owner: str, position: Position) -> str:
    """The cursor that names ``position`` in ``owner``'s listing (base64url JSON, unpadded)."""
    plain = {"id": position.image_id, OWNER_ATTRIBUTE: owner, "created_at": position.created_at}
    text = json.dumps(plain, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, owner: str) -> Position | None:
    """The position a cursor names, if it is one :func:`encode_cursor` made for ``owner``."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        plain = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, UnicodeEncodeError, binascii.Error):
        return None
    valid = (
        isinstance(plain, dict)
        and set(plain) == set(_CURSOR_FIELDS)
        and all(isinstance(v, str) for v in plain.values())
        and plain[OWNER_ATTRIBUTE] == owner
        and is_media_id(plain["id"])
    )
    return Position(plain["created_at"], plain["id"]) if valid else None


class Listing:
    """Pages of an owner's images. Takes its DynamoDB client as an argument."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def page(
        self,
        owner: str,
        *,
        limit: int,
        status: Status | None = None,
        after: Position | None = None,
    ) -> tuple[list[dict[str, Any]], Position | None]:
        """Up to ``limit`` of the owner's items after ``after``, newest first: those in
        ``status``, or every status but DELETED. Also where the next page starts (None at the
        end). At most EXAMINED_PER_PAGE images are looked at, so a filter that matches few may
        return a short (even empty) page with a position to go on from."""
        keys = listing_keys(owner)
        # Each shard is read a page of this many entries at a time, as the merge needs them: a
        # page of `limit` images takes at most limit + 1 entries (the one after tells whether
        # there is more) from any one shard. Without a Limit every shard's query would read
        # up to 1 MB of index entries, for a page of 20.
        batch = min(limit, EXAMINED_PER_PAGE) + 1
        with ThreadPoolExecutor(max_workers=len(keys)) as pool:
            first_pages = list(pool.map(lambda key: self._query(key, after, None, batch), keys))
        merged = heapq.merge(
            *(
                self._positions(key, after, first, batch)
                for key, first in zip(keys, first_pages, strict=True)
            ),
            reverse=True,
        )
        found: list[dict[str, Any]] = []
        examined = 0
        last: Position | None = None
        pending = _peek(merged)
        while pending is not None and len(found) < limit and examined < EXAMINED_PER_PAGE:
            chunk = [pending]
            room = min(limit - len(found), EXAMINED_PER_PAGE - examined)
            while len(chunk) < room and (following := next(merged, None)) is not None:
                chunk.append(following)
            pending = None
            items = self._items([position.image_id for position in chunk])
            for index, position in enumerate(chunk):
                examined += 1
                last = position
                item = items.get(position.image_id)
                if item is not None and _matches(item, status):
                    found.append(item)
                if len(found) == limit:
                    # What is left of the chunk is looked at again by the next page.
                    rest = chunk[index + 1 :]
                    pending = rest[0] if rest else _peek(merged)
                    break
            else:
                pending = _peek(merged)
        return found, (last if pending is not None else None)

    def duplicates(
        self,
        index: DuplicatesIndex,
        owner: str,
        original_id: str,
        *,
        limit: int,
        status: Status | None = None,
        after: Position | None = None,
    ) -> tuple[list[dict[str, Any]], Position | None]:
        """:meth:`page`'s answer for the owner's images that duplicate ``original_id``
        (``GET /images?duplicate_of=``), from the original's links (one Query a page, no
        scan), in id order: those whose item still names it (a link outlives its item's
        ``duplicate_of`` only for the moment a delete takes), in ``status`` or not DELETED."""
        found: list[dict[str, Any]] = []
        examined = 0
        last = after
        start = after.image_id if after else None
        more: str | None = "first"
        while more and len(found) < limit and examined < EXAMINED_PER_PAGE:
            ids, more = index.linked(
                owner,
                original_id,
                limit=min(limit - len(found), EXAMINED_PER_PAGE - examined),
                after=start,
            )
            items = self._items(ids)
            for image_id in ids:
                examined += 1
                item = items.get(image_id) or {}
                last = Position(item.get("created_at") or "", image_id)
                named = (item.get(DUPLICATE_OF) or {}).get("image_id") == original_id
                if item and named and _matches(item, status):
                    found.append(item)
            start = more
        return found, (last if more else None)

    def _positions(
        self, key: str, after: Position | None, first: dict[str, Any], batch: int
    ) -> Iterator[Position]:
        """One shard's positions after ``after``, newest first. Entries with one ``created_at``
        come back from the index in no given order: each such group is completed (across
        pages) and ordered by id before it is yielded."""
        group: list[Position] = []
        page: dict[str, Any] | None = first
        while page is not None:
            for entry in page.get("Items", []):
                position = Position(entry["created_at"]["S"], entry["id"]["S"])
                if after is not None and position >= after:
                    continue
                if group and position.created_at != group[0].created_at:
                    yield from sorted(group, reverse=True)
                    group = []
                group.append(position)
            start = page.get("LastEvaluatedKey")
            page = self._query(key, after, start, batch) if start else None
        yield from sorted(group, reverse=True)

    def _query(
        self, key: str, after: Position | None, start: dict[str, Any] | None, batch: int
    ) -> dict[str, Any]:
        condition = Key(LISTING_KEY).eq(key)
        if after is not None:
            condition &= Key("created_at").lte(after.created_at)
        kwargs: dict[str, Any] = {"ExclusiveStartKey": start} if start else {}
        return self._client.query(
            TableName=self._table,
            IndexName=LISTING_INDEX,
            ScanIndexForward=False,
            Limit=batch,
            **dynamo.key_condition(condition),
            **kwargs,
        )

    def _items(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        """The items with these ids that exist (eventually consistent, as the index is)."""
        items = dynamo.batch_get(self._client, self._table, [{"id": {"S": i}} for i in ids])
        return {item["id"]["S"]: dynamo.from_item(item) for item in items}


def _matches(item: dict[str, Any], status: Status | None) -> bool:
    if status is None:
        return item.get("status") != Status.DELETED
    return item.get("status") == status


def _peek(iterator: Iterator[Position]) -> Position | None:
    return next(iterator, None)
