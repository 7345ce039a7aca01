"""A batch of media table stream records -> their notifications, each published once.

The notifier's work, for a whole batch at a time: the transitions the records describe
(``notifications.transition``), less those already published (one ``BatchGetItem`` of the
idempotency table), published with ``PublishBatch`` (ten to a request), then recorded as
published (one ``BatchWriteItem``). Per batch of 25 records that is a handful of requests, where
publishing record by record behind two idempotency writes each costs three per notification.

Why a batch needs no lock: Lambda reads a stream shard one batch at a time, and with a
parallelization factor it still keeps every item's records in one batch after another, so no two
invocations ever hold records of the same image. Records are redelivered only after an
invocation ended: from the first one it reported failed (every later record of the batch comes
again, and what was published is found recorded), or all of them after a crash. A crash between
a publish and its record being written publishes that notification again on the retry, as a
per-record idempotency layer would in the same place; subscribers get each notification once
otherwise (and, SNS being at-least-once, deduplicate on the message's identity anyway:
docs/events.md).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from media_pipeline import dynamo
from media_pipeline.delivery import Delivery
from media_pipeline.notifications import Notification, transition

RECORD_TTL_SECONDS = 7 * 24 * 3600  # longer than a stream keeps records (24 h)
PUBLISH_BATCH = 10  # entries per PublishBatch (SNS's limit)
PUBLISH_BYTES = 256 * 1024  # their messages together (SNS's limit)


@dataclass(frozen=True)
class Change:
    """One stream record: its sequence number and the item before and after."""

    sequence: str
    old: dict[str, Any] | None
    new: dict[str, Any] | None


@dataclass
class Announced:
    """What a batch came to."""

    published: list[Notification] = field(default_factory=list)
    already: list[Notification] = field(default_factory=list)  # published by an earlier try
    failed: str | None = None  # the first record that failed: retry from there
    errors: list[str] = field(default_factory=list)


class Announcer:
    """Publishes the notifications of stream records once. Takes its clients as arguments."""

    def __init__(
        self,
        *,
        sns: Any,
        dynamodb: Any,
        topic_arn: str,
        table: str,
        links: Delivery | None = None,
    ) -> None:
        """``links``: where renditions are fetched (a READY image's ``picture``)."""
        self._sns = sns
        self._dynamodb = dynamodb
        self._topic_arn = topic_arn
        self._table = table
        self._links = links

    def announce(self, changes: Sequence[Change]) -> Announced:
        """Publish what ``changes`` call for and was not published before, in stream order.

        A record whose notification could not be worked out or published is where the batch
        is to be retried from (``Announced.failed``); what comes after it is published all
        the same, and recorded, so the retry finds it done.
        """
        result = Announced()
        position = {change.sequence: index for index, change in enumerate(changes)}

        def failed_at(sequence: str) -> None:
            if result.failed is None or position[sequence] < position[result.failed]:
                result.failed = sequence

        due: list[tuple[str, Notification]] = []
        seen_keys: set[str] = set()
        for change in changes:
            try:
                notification = transition(change.old, change.new, self._links)
            except (KeyError, TypeError, ValueError) as error:  # an item the code cannot read
                result.errors.append(f"{change.sequence}: {type(error).__name__}: {error}")
                failed_at(change.sequence)
                continue
            if notification is None:
                continue
            key = record_key(notification)
            if key not in seen_keys:  # the same transition twice in one batch: once
                seen_keys.add(key)
                due.append((change.sequence, notification))

        recorded = self._recorded([record_key(n) for _, n in due])
        fresh = []
        for sequence, notification in due:
            if record_key(notification) in recorded:
                result.already.append(notification)
            else:
                fresh.append((sequence, notification))

        published: list[Notification] = []
        for chunk in _chunks(fresh):
            failures = self._publish([n for _, n in chunk])
            for index, (sequence, notification) in enumerate(chunk):
                if index in failures:
                    result.errors.append(f"{sequence}: {failures[index]}")
                    failed_at(sequence)
                else:
                    published.append(notification)
        self._record(published)
        result.published = published
        return result

    def _recorded(self, keys: list[str]) -> set[str]:
        """Which of these notifications an earlier try published (consistent reads)."""
        items = dynamo.batch_get(
            self._dynamodb,
            self._table,
            [{"id": {"S": k}} for k in keys],
            ConsistentRead=True,
            ProjectionExpression="id",
        )
        return {item["id"]["S"] for item in items}

    def _publish(self, notifications: list[Notification]) -> dict[int, str]:
        """One PublishBatch; the failed entries by their index, with SNS's reason."""
        response = self._sns.publish_batch(
            TopicArn=self._topic_arn,
            PublishBatchRequestEntries=[
                {
                    "Id": str(index),
                    "Message": message(notification),
                    "MessageAttributes": {
                        name: {"DataType": "String", "StringValue": value}
                        for name, value in notification.attributes.items()
                    },
                }
                for index, notification in enumerate(notifications)
            ],
        )
        return {
            int(failure["Id"]): f"{failure.get('Code')}: {failure.get('Message')}"
            for failure in response.get("Failed") or []
        }

    def _record(self, notifications: Iterable[Notification]) -> None:
        """Record these notifications as published, to expire after RECORD_TTL_SECONDS."""
        expires = int(time.time()) + RECORD_TTL_SECONDS
        requests = [
            {
                "PutRequest": {
                    "Item": dynamo.to_item(
                        {"id": record_key(n), "expiration": expires, "status": "PUBLISHED"}
                    )
                }
            }
            for n in notifications
        ]
        dynamo.batch_write(self._dynamodb, self._table, requests)


def record_key(notification: Notification) -> str:
    """The idempotency table's key of a notification: ``notified#<id>#<etag>#<type>``."""
    identity = notification.identity
    return f"notified#{identity['id']}#{identity['etag']}#{identity['type']}"


def message(notification: Notification) -> str:
    """The SNS message body: the documented JSON (docs/events.md), compact, keys sorted."""
    return json.dumps(notification.body, separators=(",", ":"), sort_keys=True)


def _chunks(
    due: list[tuple[str, Notification]],
) -> Iterator[list[tuple[str, Notification]]]:
    """PublishBatch requests: at most PUBLISH_BATCH entries and PUBLISH_BYTES of messages."""
    chunk: list[tuple[str, Notification]] = []
    size = 0
    for entry in due:
        length = len(message(entry[1]).encode())
        if chunk and (len(chunk) == PUBLISH_BATCH or size + length > PUBLISH_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(entry)
        size += length
    if chunk:
        yield chunk
