"""Duplicates within an app, in the store: the band index that finds an image's near-identical
pictures without a scan, the links that list an original's duplicates, and their clean-up.

One DynamoDB table of its own (``${name}-duplicates``: partition key ``key``, sort key
``image_id``), holding two kinds of item, none of them written by every image of an app:

* **band items** ``dup#<owner>#<band>:<hex>`` / ``<image id>``, one per band of the image's
  perceptual hash (``imaging.duplicates.bands``: 12 bands of 10 bits), with the full
  ``perceptual_hash`` and ``created_at`` projected. An app's images spread over 12 x 1024 keys,
  ~N/1024 under each. A lookup queries the new image's 12 keys (in parallel, strongly
  consistent), drops itself and keeps the candidates within the threshold. A picture without
  detail (``FLAT_HASH``) has no bands and is never indexed.
* **link items** ``of#<owner>#<original id>`` / ``<duplicate id>``, written when a duplicate is
  recorded, so that ``GET /images?duplicate_of={id}`` is one Query (by id).

Which is the original: the candidate closest to the new image's hash, ties to the earliest
created (``created_at``, then id), among the candidates created *before* the new image. Each
image writes its band items before it looks, so of two copies processed at the same moment at
least one sees the other (strongly consistent reads of a base table: the reason this is a
table and not a GSI), and only the later one names the earlier: they agree. Every write is a
put or delete of a key the image's own id names: a redelivery writes the same items again.

Its keys are stored on the media item (``hash_bands``, beside ``perceptual_hash``) by the
renditions half, so that a delete removes exactly the keys that were written, whatever the code
that deletes (the upload API carries no Pillow: ``imaging`` is not imported here).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from enum import StrEnum
from typing import Any, NamedTuple

from boto3.dynamodb.conditions import Attr, Key

from media_pipeline import dynamo
from media_pipeline.values import now_iso

PARTITION_KEY = "key"
SORT_KEY = "image_id"
HASH_ATTRIBUTE = "perceptual_hash"  # on the media item and on each band item
BANDS_ATTRIBUTE = "hash_bands"  # the media item's band keys (``<band>:<hex>``), as indexed
DUPLICATE_OF = "duplicate_of"  # the media item's ``{image_id, distance}`` of its original


class Policy(StrEnum):
    """What a deployment does with duplicates (``DUPLICATES``; Terraform's ``duplicates``)."""

    RECORD = "record"  # the image is indexed, and a duplicate names its original
    REJECT = "reject"  # a duplicate ends FAILED ``duplicate`` (its original in the failure)
    OFF = "off"  # nothing is indexed or looked up (the hash is still stored on the item)


class Match(NamedTuple):
    """An earlier image of the same app that a new image duplicates."""

    image_id: str
    distance: int
    created_at: str

    def to_dict(self) -> dict[str, Any]:
        """As the item, the API and ``image.ready`` carry it: ``{image_id, distance}``."""
        return {"image_id": self.image_id, "distance": self.distance}


def band_key(owner: str, band: str) -> str:
    return f"dup#{owner}#{band}"


def link_key(owner: str, original_id: str) -> str:
    return f"of#{owner}#{original_id}"


def closest(
    image_id: str,
    created_at: str,
    hash_: str,
    candidates: dict[str, tuple[str, str]],
    *,
    distance: Callable[[str, str], int],
    threshold: int,
) -> Match | None:
    """The original among ``candidates`` (id -> (hash, created_at)): within ``threshold`` of
    ``hash_``, created before this image ((created_at, id) order), the closest, ties to the
    earliest. Deterministic: the same candidates give the same answer whatever their order."""
    best: Match | None = None
    for other, (other_hash, other_created) in candidates.items():
        if (other_created, other) >= (created_at, image_id):
            continue  # this image itself, or one created after it: that one names this one
        found = distance(hash_, other_hash)
        if found > threshold:
            continue
        match = Match(other, found, other_created)
        if best is None or (found, other_created, other) < (
            best.distance,
            best.created_at,
            best.image_id,
        ):
            best = match
    return best


def later(
    image_id: str,
    created_at: str,
    hash_: str,
    candidates: dict[str, tuple[str, str]],
    *,
    distance: Callable[[str, str], int],
    threshold: int,
) -> list[Match]:
    """The ``candidates`` created after this image that duplicate it, in id order: copies
    processed before it, which may not have seen it (:meth:`DuplicatesIndex.claim`)."""
    found = []
    for other, (other_hash, other_created) in sorted(candidates.items()):
        if (other_created, other) <= (created_at, image_id):
            continue
        apart = distance(hash_, other_hash)
        if apart <= threshold:
            found.append(Match(other, apart, other_created))
    return found


class DuplicatesIndex:
    """The duplicates table. Takes its DynamoDB client as an argument."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    # -- band items (the renditions worker) ---------------------------------------------------

    def add(
        self, owner: str, image_id: str, hash_: str, bands: Iterable[str], created_at: str
    ) -> None:
        """Put the image's band items (idempotent: the same keys, the same values)."""
        self._write(
            {
                "PutRequest": {
                    "Item": dynamo.to_item(
                        {
                            PARTITION_KEY: band_key(owner, band),
                            SORT_KEY: image_id,
                            HASH_ATTRIBUTE: hash_,
                            "created_at": created_at,
                        }
                    )
                }
            }
            for band in bands
        )

    def candidates(self, owner: str, bands: Iterable[str]) -> dict[str, tuple[str, str]]:
        """Every image under any of these band keys: id -> (perceptual hash, created_at).
        One strongly consistent Query per key (paged), in parallel."""
        keys = [band_key(owner, band) for band in bands]
        if not keys:
            return {}
        with ThreadPoolExecutor(max_workers=len(keys)) as pool:
            pages = list(pool.map(self._entries, keys))
        return {
            entry[SORT_KEY]["S"]: (entry[HASH_ATTRIBUTE]["S"], entry["created_at"]["S"])
            for page in pages
            for entry in page
        }

    def remove(self, owner: str, image_id: str, bands: Iterable[str]) -> None:
        """Delete the image's band items (those of ``bands``)."""
        self._write(
            {"DeleteRequest": {"Key": self._key(band_key(owner, band), image_id)}} for band in bands
        )

    # -- links: an original's duplicates --------------------------------------------------------

    def link(self, owner: str, original_id: str, match_of: str, distance: int) -> None:
        """Record that image ``match_of`` duplicates ``original_id`` (idempotent)."""
        self._write(
            [
                {
                    "PutRequest": {
                        "Item": dynamo.to_item(
                            {
                                PARTITION_KEY: link_key(owner, original_id),
                                SORT_KEY: match_of,
                                "distance": distance,
                            }
                        )
                    }
                }
            ]
        )

    def unlink(self, owner: str, original_id: str, image_ids: Iterable[str]) -> None:
        self._write(
            {"DeleteRequest": {"Key": self._key(link_key(owner, original_id), image_id)}}
            for image_id in image_ids
        )

    def linked(
        self, owner: str, original_id: str, *, limit: int, after: str | None = None
    ) -> tuple[list[str], str | None]:
        """Up to ``limit`` ids of the original's duplicates after id ``after``, in id order, and
        the last id read if there may be more (None at the end)."""
        kwargs: dict[str, Any] = {}
        if after is not None:
            kwargs["ExclusiveStartKey"] = self._key(link_key(owner, original_id), after)
        response = self._client.query(
            TableName=self._table,
            Limit=limit,
            ProjectionExpression="#i",
            **_merged_names(
                dynamo.key_condition(Key(PARTITION_KEY).eq(link_key(owner, original_id))),
                {"#i": SORT_KEY},
            ),
            **kwargs,
        )
        ids = [entry[SORT_KEY]["S"] for entry in response.get("Items", [])]
        more = response.get("LastEvaluatedKey")
        return ids, (more[SORT_KEY]["S"] if more else None)

    # -- a deleted image ------------------------------------------------------------------------

    def forget(self, item: dict[str, Any], media_table: str) -> int:
        """Clean up after a deleted image (``item``: the media item as it was): its band items,
        its own link (if it duplicated another), and every link to it, each of those images'
        ``duplicate_of`` removed where it still names this one. Idempotent (a repeated delete
        repeats it). The number of images that no longer name it."""
        owner, image_id = item.get("owner"), item.get("id")
        if not owner or not image_id:
            return 0
        self.remove(owner, image_id, item.get(BANDS_ATTRIBUTE) or ())
        original = (item.get(DUPLICATE_OF) or {}).get("image_id")
        if original:
            self.unlink(owner, original, [image_id])
        released = 0
        while True:  # a page at a time: each page's links go, so the next query starts over
            ids, more = self.linked(owner, image_id, limit=dynamo.BATCH_WRITE_MAX)
            for duplicate in ids:
                released += self.release(media_table, duplicate, image_id)
            self.unlink(owner, image_id, ids)
            if not more or not ids:
                return released

    def claim(self, media_table: str, owner: str, original_id: str, copy: Match) -> bool:
        """Name ``original_id`` on a later image ``copy`` that names none: one recorded before
        this one was indexed (their lookups crossed; this one saw it, it did not see this one).
        Only an image whose renditions half is recorded (``hash_bands``) and names no original
        (not even a null one set since) is changed; True if it was."""
        self.link(owner, original_id, copy.image_id, copy.distance)
        try:
            self._client.update_item(
                TableName=media_table,
                Key={"id": {"S": copy.image_id}},
                **dynamo.update(
                    set_={
                        DUPLICATE_OF: Match(original_id, copy.distance, "").to_dict(),
                        "updated_at": now_iso(),
                    },
                    when=Attr(BANDS_ATTRIBUTE).exists()
                    & Attr("owner").eq(owner)
                    & Attr("status").ne("DELETED")
                    & (Attr(DUPLICATE_OF).not_exists() | Attr(DUPLICATE_OF).attribute_type("NULL")),
                ),
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            self.unlink(owner, original_id, [copy.image_id])
            return False
        return True

    def release(self, media_table: str, image_id: str, original_id: str) -> int:
        """Remove ``duplicate_of`` from an image that still names ``original_id``."""
        try:
            self._client.update_item(
                TableName=media_table,
                Key={"id": {"S": image_id}},
                **dynamo.update(
                    set_={"updated_at": now_iso()},
                    remove=(DUPLICATE_OF,),
                    when=Attr(f"{DUPLICATE_OF}.image_id").eq(original_id),
                ),
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return 0  # it names another one now, or is gone
        return 1

    # -- the wire -------------------------------------------------------------------------------

    def _entries(self, key: str) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = []
        paginator = self._client.get_paginator("query")
        for page in paginator.paginate(
            TableName=self._table,
            ConsistentRead=True,
            ProjectionExpression="#i, #h, #c",
            **_merged_names(
                dynamo.key_condition(Key(PARTITION_KEY).eq(key)),
                {"#i": SORT_KEY, "#h": HASH_ATTRIBUTE, "#c": "created_at"},
            ),
        ):
            entries.extend(page.get("Items", []))
        return entries

    def _key(self, partition: str, image_id: str) -> dict[str, Any]:
        return {PARTITION_KEY: {"S": partition}, SORT_KEY: {"S": image_id}}

    def _write(self, requests: Iterable[dict[str, Any]]) -> None:
        """BatchWriteItem to this table (``dynamo.batch_write``)."""
        dynamo.batch_write(self._client, self._table, requests)


def _merged_names(arguments: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    """Query arguments with further ``ExpressionAttributeNames`` (a projection's)."""
    return {
        **arguments,
        "ExpressionAttributeNames": {**arguments["ExpressionAttributeNames"], **names},
    }
