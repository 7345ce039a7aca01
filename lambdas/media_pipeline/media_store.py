"""The media table: conditional writes that make the item's state machine race-free.

Every write is conditional on the ETag (and, for claims, on the S3 sequencer), so an older event
can never overwrite a newer upload's record, and READY is set exactly once.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from media_pipeline.model import (
    OWNER_ATTRIBUTE,
    OWNER_INDEX,
    PENDING_ATTRIBUTE,
    PENDING_INDEX,
    Decision,
    Failure,
    Half,
    Status,
    Upload,
    decide_claim,
)
from media_pipeline.values import iso, now_iso, to_plain

_serializer = TypeSerializer()
_CLAIM_ATTEMPTS = 5  # a take-over that keeps losing to concurrent writes raises (SQS retries)
_deserializer = TypeDeserializer()


def to_attribute(value: Any) -> dict[str, Any]:
    """Serialise a JSON-like value for DynamoDB (floats become Decimals)."""
    return _serializer.serialize(_decimalise(value))


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    """Deserialise a DynamoDB item into plain Python (Decimals become int or float)."""
    return {k: to_plain(_deserializer.deserialize(v)) for k, v in item.items()}


def _decimalise(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {k: _decimalise(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_decimalise(v) for v in value]
    return value


class ClaimContended(RuntimeError):
    """The item changed under every attempt to claim it: transient, the message is retried."""


class Completion(StrEnum):
    READY = "ready"  # this write completed the version and marked it READY
    PARTIAL = "partial"  # this half is recorded; the other half is still to come
    SUPERSEDED = "superseded"  # a newer upload owns the item: this result was not recorded


@dataclass(frozen=True)
class Completed:
    outcome: Completion
    previous: Any = None  # the half's previous value (e.g. an older version's renditions)


class Removal(StrEnum):
    DELETED = "deleted"  # this call marked the item DELETED
    ALREADY_DELETED = "already_deleted"  # it was DELETED before (a repeated or racing delete)
    NOT_FOUND = "not_found"  # no such item (or the event's key is not the item's)
    STALE = "stale"  # S3's delete is older than the upload the item describes


@dataclass(frozen=True)
class Deletion:
    outcome: Removal
    item: dict[str, Any]  # the item as it was before


def _settled(status: Status, now: str) -> dict[str, Any]:
    """The attributes that settle a version READY or FAILED."""
    stamp = "ready_at" if status is Status.READY else "failed_at"
    return {"status": status.value, stamp: now, "updated_at": now}


class MediaTable:
    """Reads and conditional writes of media items. Takes its DynamoDB client as an argument."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def get(self, image_id: str) -> dict[str, Any] | None:
        response = self._client.get_item(
            TableName=self._table, Key={"id": {"S": image_id}}, ConsistentRead=True
        )
        item = response.get("Item")
        return from_item(item) if item else None

    def create(self, item: dict[str, Any]) -> bool:
        """Put a new item (the upload API's AWAITING_UPLOAD record). False if the id is taken."""
        try:
            self._client.put_item(
                TableName=self._table,
                Item={k: to_attribute(v) for k, v in item.items() if v is not None},
                ConditionExpression="attribute_not_exists(#id)",
                ExpressionAttributeNames={"#id": "id"},
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def claim(
        self,
        upload: Upload,
        half: Half,
        settings: str | None = None,
        *,
        is_current: Callable[[], bool] | None = None,
    ) -> Decision:
        """Take the item for this object version, or learn why not (see ``decide_claim``).

        A newer sequencer takes the item; a DELETED item only an upload newer than the S3 delete
        that it records. When the item holds another ETag under the same sequencer
        (``Decision.UNORDERED``: an emulator's constant sequencer), ``is_current`` asks S3
        whether this upload's ETag is the object's current content: if so it is the newer
        upload and takes the item over, conditional on the item still holding what was read;
        otherwise (or with no ``is_current``) it is STALE.
        """
        not_deleted = (
            "(attribute_not_exists(#status) OR #status <> :deleted"
            " OR #deleted_sequencer < :sequencer)"
        )
        condition = (
            f"(attribute_not_exists(#sequencer) OR #sequencer < :sequencer) AND {not_deleted}"
        )
        values: dict[str, Any] = {":deleted": Status.DELETED.value}
        for _ in range(_CLAIM_ATTEMPTS):
            try:
                self._claim_write(upload, condition, values)
            except self._client.exceptions.ConditionalCheckFailedException as error:
                existing = from_item(error.response.get("Item") or {})
                decision = decide_claim(existing, upload, half, settings)
                if decision is Decision.UNORDERED:
                    deleted = existing.get("status") == Status.DELETED
                    if is_current is None or not is_current():
                        return Decision.DELETED if deleted else Decision.STALE
                    # Take over from exactly what was read; if it changed meanwhile, decide again.
                    condition = (
                        "#status = :deleted AND #deleted_sequencer = :sequencer"
                        " AND #etag = :previous_etag"
                        if deleted
                        else f"#sequencer = :sequencer AND #etag = :previous_etag AND {not_deleted}"
                    )
                    values = {
                        ":deleted": Status.DELETED.value,
                        ":previous_etag": existing.get("etag"),
                    }
                    continue
                if decision is Decision.REOPEN_AND_WORK:
                    self._reopen(upload, half)
                return decision
            return Decision.WORK
        raise ClaimContended(f"{upload.id}: the item kept changing under {_CLAIM_ATTEMPTS} claims")

    def _claim_write(self, upload: Upload, condition: str, values: dict[str, Any]) -> None:
        now = now_iso()
        self._update(
            upload.id,
            set_={
                "bucket": upload.bucket,
                "key": upload.key,
                "etag": upload.etag,
                "version_id": upload.version_id,
                "sequencer": upload.sequencer,
                "size": upload.size,
                "content_type": upload.content_type,
                "status": Status.PROCESSING.value,
                PENDING_ATTRIBUTE: Status.PROCESSING.value,
                "uploaded_at": upload.uploaded_at or now,
                "updated_at": now,
            },
            set_if_absent={"created_at": now},
            remove=(
                "failure",
                "expires_at",
                "ready_at",
                "failed_at",
                "reconciled",
                "deleted_at",
                "deleted_sequencer",
            ),
            condition=condition,
            values=values,
        )

    def _reopen(self, upload: Upload, half: Half) -> None:
        """Move a version that this half had given up on back to PROCESSING (DLQ redrive)."""
        self._update(
            upload.id,
            set_={
                "status": Status.PROCESSING.value,
                PENDING_ATTRIBUTE: Status.PROCESSING.value,
                "updated_at": now_iso(),
            },
            remove=("failure", "failed_at"),
            condition=(
                "#etag = :etag AND #status = :failed AND #failure.#stage = :stage"
                " AND #failure.#retryable = :true"
            ),
            values={
                ":etag": upload.etag,
                ":failed": Status.FAILED.value,
                ":stage": half.stage,
                ":true": True,
            },
        )

    def complete(
        self,
        upload: Upload,
        half: Half,
        result: Any,
        settings: str | None = None,
        attributes: dict[str, Any] | None = None,
    ) -> Completed:
        """Record this half's result (and any further ``attributes`` it sets) for the version, and
        mark it READY if that completes it.

        When the other half is already in, the half and READY go in one conditional write, so
        no crash can leave a complete version PROCESSING. Otherwise the half is recorded alone;
        if the other half arrived meanwhile (both workers finishing together), READY follows in
        a second write, and a worker dying between the two is covered by :meth:`finish`, which
        any redelivery (``Decision.FINISH``) or the reconciler runs. ``settings`` (the
        fingerprint of what the half was made with) is recorded with it; a READY item's half is
        replaced this way by a reprocess. Nothing is recorded on a DELETED item (SUPERSEDED: the
        caller removes what it stored).
        """
        other = next(h for h in Half if h is not half)
        now = now_iso()
        recorded = {
            **(attributes or {}),
            half.attribute: result,
            half.etag_attribute: upload.etag,
            "updated_at": now,
        }
        if settings is not None:
            recorded[half.settings_attribute] = settings
        try:
            old = self._update(
                upload.id,
                set_={**recorded, **_settled(Status.READY, now)},
                remove=(PENDING_ATTRIBUTE,),
                condition=(
                    f"#etag = :etag AND #status = :processing AND #{other.etag_attribute} = :etag"
                ),
                values={":etag": upload.etag, ":processing": Status.PROCESSING.value},
                return_values="ALL_OLD",
            )
            return Completed(Completion.READY, old.get(half.attribute))
        except self._client.exceptions.ConditionalCheckFailedException as error:
            existing = from_item(error.response.get("Item") or {})
            if existing.get("etag") != upload.etag:
                return Completed(Completion.SUPERSEDED)

        try:
            old = self._update(
                upload.id,
                set_=recorded,
                condition="#etag = :etag AND #status <> :deleted",
                values={":etag": upload.etag, ":deleted": Status.DELETED.value},
                return_values="ALL_OLD",
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return Completed(Completion.SUPERSEDED)
        if old.get(other.etag_attribute) == upload.etag and self.finish(upload.id, upload.etag):
            return Completed(Completion.READY, old.get(half.attribute))
        return Completed(Completion.PARTIAL, old.get(half.attribute))

    def finish(self, image_id: str, etag: str) -> bool:
        """Mark the version READY if both halves are in and it is still PROCESSING.

        True if this call made it READY. Safe to call any number of times, from any worker.
        """
        now = now_iso()
        try:
            self._update(
                image_id,
                set_=_settled(Status.READY, now),
                remove=(PENDING_ATTRIBUTE,),
                condition=(
                    "#etag = :etag AND #status = :processing"
                    " AND #renditions_etag = :etag AND #metadata_etag = :etag"
                ),
                values={":etag": etag, ":processing": Status.PROCESSING.value},
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return False  # not complete, already settled, or a newer upload took over
        return True

    def fail(self, upload: Upload, failure: Failure) -> bool:
        """Mark the version FAILED with a reason. False if it was not PROCESSING any more.

        A permanent failure also overrides an earlier retryable one, so that a redrive of the
        other half cannot reopen a version that can never succeed.
        """
        now = now_iso()
        condition = "#etag = :etag AND #status = :processing"
        values: dict[str, Any] = {":etag": upload.etag, ":processing": Status.PROCESSING.value}
        if not failure.retryable:
            condition += " OR (#etag = :etag AND #status = :failed AND #failure.#retryable = :true)"
            values |= {":failed": Status.FAILED.value, ":true": True}
        try:
            self._update(
                upload.id,
                set_={**_settled(Status.FAILED, now), "failure": failure.to_dict()},
                remove=(PENDING_ATTRIBUTE,),
                condition=condition,
                values=values,
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def mark_deleted(
        self,
        image_id: str,
        *,
        retention_seconds: int,
        key: str | None = None,
        sequencer: str | None = None,
    ) -> Deletion:
        """Mark the item DELETED (from any state), to expire ``retention_seconds`` later (TTL).

        Through the API: ``key`` and ``sequencer`` are None. For S3's own delete event: the
        object ``key`` it names must be the item's, and its ``sequencer`` newer than the upload
        the item describes (else a newer upload owns the item: STALE); it is recorded as
        ``deleted_sequencer``, which decides which later uploads may take the item again
        (``decide_claim``), also on an item the API marked DELETED first.
        """
        now = time.time()
        stamp = iso(now, "milliseconds")
        set_: dict[str, Any] = {
            "status": Status.DELETED.value,
            "deleted_at": stamp,
            "updated_at": stamp,
            "expires_at": int(now + retention_seconds),
        }
        condition = "attribute_exists(#id) AND #status <> :deleted"
        values: dict[str, Any] = {":deleted": Status.DELETED.value}
        if sequencer is not None:
            set_["deleted_sequencer"] = sequencer
            # Not older than the upload the item describes. Equal never happens on S3 (every
            # write has its own sequencer), only on an emulator with a constant one; the caller
            # has just seen that the key holds no object, so the delete is the latest word.
            condition += (
                " AND #key = :key AND (attribute_not_exists(#sequencer) OR #sequencer <= :seq)"
            )
            values |= {":key": key, ":seq": sequencer}
        try:
            old = self._update(
                image_id,
                set_=set_,
                remove=(PENDING_ATTRIBUTE,),
                condition=condition,
                values=values,
                return_values="ALL_OLD",
            )
            return Deletion(Removal.DELETED, old)
        except self._client.exceptions.ConditionalCheckFailedException as error:
            existing = from_item(error.response.get("Item") or {})
        if not existing or (key is not None and existing.get("key") != key):
            return Deletion(Removal.NOT_FOUND, existing)
        if existing.get("status") != Status.DELETED:
            return Deletion(Removal.STALE, existing)
        if sequencer is not None and existing.get("deleted_sequencer", "") < sequencer:
            # Deleted through the API first: S3's event now says when the object went.
            # (A newer delete, or upload, may get there first: then there is nothing to do.)
            with suppress(self._client.exceptions.ConditionalCheckFailedException):
                self._update(
                    image_id,
                    set_={"deleted_sequencer": sequencer},
                    condition=(
                        "#status = :deleted AND (attribute_not_exists(#deleted_sequencer)"
                        " OR #deleted_sequencer < :deleted_sequencer)"
                    ),
                    values={":deleted": Status.DELETED.value},
                )
        return Deletion(Removal.ALREADY_DELETED, existing)

    def by_owner(
        self,
        owner: str,
        *,
        limit: int,
        status: Status | None = None,
        start: dict[str, Any] | None = None,
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """Up to ``limit`` of an owner's items, newest first, from the ``owner`` index: those in
        ``status``, or every status but DELETED. Also the key to start the next page from (None
        at the end). Pages of the index are read until ``limit`` items matched."""
        found: list[dict[str, Any]] = []
        names = {"#owner": OWNER_ATTRIBUTE, "#status": "status"}
        if status is None:
            condition, wanted = "#status <> :status", Status.DELETED
        else:
            condition, wanted = "#status = :status", status
        while True:
            kwargs: dict[str, Any] = {"ExclusiveStartKey": start} if start else {}
            response = self._client.query(
                TableName=self._table,
                IndexName=OWNER_INDEX,
                KeyConditionExpression="#owner = :owner",
                FilterExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={
                    ":owner": {"S": owner},
                    ":status": {"S": wanted.value},
                },
                ScanIndexForward=False,
                Limit=limit - len(found),
                **kwargs,
            )
            found += [from_item(item) for item in response.get("Items", [])]
            start = response.get("LastEvaluatedKey")
            if start is None or len(found) >= limit:
                return found, start

    def pending(self, status: Status, updated_before: str) -> Iterator[dict[str, Any]]:
        """Items still waiting in ``status`` (AWAITING_UPLOAD or PROCESSING) whose last change is
        older than ``updated_before`` (ISO 8601), oldest first, from the sparse pending index."""
        paginator = self._client.get_paginator("query")
        for page in paginator.paginate(
            TableName=self._table,
            IndexName=PENDING_INDEX,
            KeyConditionExpression="#pending = :status AND #updated_at < :before",
            ExpressionAttributeNames={"#pending": PENDING_ATTRIBUTE, "#updated_at": "updated_at"},
            ExpressionAttributeValues={
                ":status": {"S": status.value},
                ":before": {"S": updated_before},
            },
        ):
            for item in page.get("Items", []):
                yield from_item(item)

    def mark_reconciled(
        self, image_id: str, etag: str | None, status: Status, attempt: int
    ) -> bool:
        """Record that the reconciler re-enqueued this version's work (``attempt`` times so far),
        which also restarts its clock. ``etag`` is None for an upload request (no object yet).
        False if the item moved on meanwhile."""
        same_version = "#etag = :etag" if etag is not None else "attribute_not_exists(#etag)"
        values = {":status": status.value} | ({":etag": etag} if etag is not None else {})
        try:
            self._update(
                image_id,
                set_={"reconciled": attempt, "updated_at": now_iso()},
                condition=f"{same_version} AND #status = :status",
                values=values,
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def _update(
        self,
        image_id: str,
        *,
        set_: dict[str, Any],
        condition: str,
        set_if_absent: dict[str, Any] | None = None,
        remove: tuple[str, ...] = (),
        values: dict[str, Any] | None = None,
        return_values: str = "NONE",
    ) -> dict[str, Any]:
        """One UpdateItem. Every attribute goes through a ``#name`` placeholder (many of ours,
        like ``key``, ``size`` and ``status``, are DynamoDB reserved words)."""
        set_if_absent = set_if_absent or {}
        assignments = [f"#{n} = :{n}" for n in set_]
        assignments += [f"#{n} = if_not_exists(#{n}, :{n})" for n in set_if_absent]
        expression = "SET " + ", ".join(assignments)
        if remove:
            expression += " REMOVE " + ", ".join(f"#{n}" for n in remove)

        all_values = {f":{n}": v for n, v in {**set_, **set_if_absent}.items()}
        all_values |= values or {}
        referenced = {*set_, *set_if_absent, *remove, *re.findall(r"#(\w+)", condition)}
        response = self._client.update_item(
            TableName=self._table,
            Key={"id": {"S": image_id}},
            UpdateExpression=expression,
            ConditionExpression=condition,
            ExpressionAttributeNames={f"#{n}": n for n in sorted(referenced)},
            ExpressionAttributeValues={k: to_attribute(v) for k, v in all_values.items()},
            ReturnValues=return_values,
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
        return from_item(response.get("Attributes") or {})
