"""Event source mappings, run the way the Lambda service runs them.

* :class:`SqsPoller`: receives up to ``BatchSize`` messages (waiting up to the batching window),
  invokes the function with Lambda's SQS event, and deletes what succeeded: everything, or, with
  ``ReportBatchItemFailures``, everything but the reported items (an invalid report fails the
  whole batch). Failed messages are not touched: they come back after the visibility timeout and
  move to the DLQ after ``maxReceiveCount`` receives. ``ScalingConfig.MaximumConcurrency`` bounds
  the concurrent batches. A mapping's threads take turns to receive, so a batch is filled from
  what is waiting instead of split between threads racing in the emulator's receive.
* :class:`StreamPoller`: reads each shard of a DynamoDB stream in order, one batch at a time;
  on a function error it retries (``MaximumRetryAttempts``, ``MaximumRecordAgeInSeconds``),
  bisects the batch when ``BisectBatchOnFunctionError`` is on, resumes from the first reported
  failure with ``ReportBatchItemFailures``, and sends what it gives up on to the on-failure
  destination (an SQS queue) with Lambda's invocation record.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from devstack.sandbox import Result

Invoke = Callable[[str, bytes, str, list[str]], Result]


def queue_url_from_arn(sqs: Any, arn: str) -> str:
    _, _, _, _, account, name = arn.split(":", 5)
    return sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]


def failed_items(result: Result, identifiers: list[str], report_failures: bool) -> list[str] | None:
    """Which items of a successful invocation failed, by Lambda's rules for partial responses.

    Returns the failed identifiers, or None when the response is invalid (the whole batch fails).
    """
    if not report_failures:
        return []
    response = result.json()
    if response is None and result.payload.strip() not in (b"", b"null"):
        return None  # not JSON
    if not response:
        return []  # null or empty response: complete success
    if not isinstance(response, dict):
        return None
    failures = response.get("batchItemFailures")
    if not failures:
        return []
    failed: list[str] = []
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not isinstance(identifier, str) or identifier not in identifiers:
            return None
        failed.append(identifier)
    return failed


class _Poller:
    def __init__(
        self,
        mapping: dict[str, Any],
        invoke: Invoke,
        clients: dict[str, Any],
        region: str,
        queue_url: Callable[[str], str] | None = None,
    ) -> None:
        """``clients``: sqs and dynamodbstreams clients with the function's execution role (the
        mapping's permissions are the role's, as on AWS); ``queue_url``: a queue's URL from its
        ARN, which the Lambda service knows without asking as the role."""
        self.mapping = mapping
        self.uuid = mapping["UUID"]
        self.function_name = mapping["FunctionArn"].split(":")[6]
        self._invoke = invoke
        self._clients = clients
        self._region = region
        self._queue_url = queue_url or (lambda arn: queue_url_from_arn(clients["sqs"], arn))
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.batches = 0
        self.last_error: str | None = None

    @property
    def report_failures(self) -> bool:
        return "ReportBatchItemFailures" in (self.mapping.get("FunctionResponseTypes") or [])

    @property
    def batch_size(self) -> int:
        return int(self.mapping.get("BatchSize") or 10)

    @property
    def window(self) -> float:
        return float(self.mapping.get("MaximumBatchingWindowInSeconds") or 0)

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def start(self, threads: int = 1) -> None:
        for index in range(threads):
            thread = threading.Thread(
                target=self._guarded, name=f"{self.uuid[:8]}-{index}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self, wait: bool = True) -> None:
        self._stop.set()
        if wait:
            for thread in self._threads:
                thread.join(timeout=30)

    def _guarded(self) -> None:
        while not self._stop.is_set():
            try:
                self._run()
            except Exception as error:  # a poller must outlive a flaky emulator call
                self.last_error = f"{type(error).__name__}: {error}"
                self._stop.wait(1.0)

    def _run(self) -> None:
        raise NotImplementedError


class SqsPoller(_Poller):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._receiving = threading.Lock()

    def _run(self) -> None:
        sqs = self._clients["sqs"]
        url = self._queue_url(self.mapping["EventSourceArn"])
        # Lambda's documentation requires sqs:GetQueueAttributes of an SQS mapping's execution
        # role (beside ReceiveMessage and DeleteMessage): the poller reads the queue's
        # attributes as it starts, so a role without it fails here.
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])
        while not self._stop.is_set():
            with self._receiving:  # one batch fills at a time; the invocations run concurrently
                messages = self._receive(sqs, url)
            if messages:
                self._dispatch(sqs, url, messages)

    def _receive(self, sqs: Any, url: str) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        deadline = None
        while len(messages) < self.batch_size and not self._stop.is_set():
            response = sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=min(10, self.batch_size - len(messages)),
                WaitTimeSeconds=0 if messages else 1,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            received = response.get("Messages", [])
            messages += received
            if not messages:
                return []
            if deadline is None:
                deadline = time.monotonic() + self.window
            if time.monotonic() >= deadline:
                break
            if not received:
                self._stop.wait(min(0.2, max(0.0, deadline - time.monotonic())))
        return messages

    def _dispatch(self, sqs: Any, url: str, messages: list[dict[str, Any]]) -> None:
        records = [self._record(m) for m in messages]
        ids = [m["MessageId"] for m in messages]
        result = self._invoke(
            self.function_name, json.dumps({"Records": records}).encode(), "aws:sqs", ids
        )
        self.batches += 1
        failed = failed_items(result, ids, self.report_failures) if result.ok else None
        if failed is None:
            return  # the whole batch failed: every message returns after its visibility timeout
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(done[start : start + 10])
                ],
            )

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        attributes = {}
        for name, value in message.get("MessageAttributes", {}).items():
            attributes[name] = {
                "stringValue": value.get("StringValue"),
                "binaryValue": base64.b64encode(value["BinaryValue"]).decode()
                if "BinaryValue" in value
                else None,
                "stringListValues": value.get("StringListValues", []),
                "binaryListValues": [],
                "dataType": value.get("DataType"),
            }
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes", {}),
            "messageAttributes": attributes,
            "md5OfBody": message.get("MD5OfBody"),
            "eventSource": "aws:sqs",
            "eventSourceARN": self.mapping["EventSourceArn"],
            "awsRegion": self._region,
        }


def _json_safe(value: Any) -> Any:
    """boto3 parses stream records; Lambda's event carries them as JSON."""
    if isinstance(value, datetime):
        return int(value.timestamp())
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | set | tuple):
        return [_json_safe(v) for v in value]
    return value


class StreamPoller(_Poller):
    POLL_INTERVAL = 0.25  # Lambda reads each shard about four times a second
    SHARD_DISCOVERY_SECONDS = 5.0  # ... and looks for new shards far less often

    @property
    def max_retries(self) -> int:
        value = self.mapping.get("MaximumRetryAttempts")
        return -1 if value is None else int(value)

    @property
    def max_age(self) -> int:
        value = self.mapping.get("MaximumRecordAgeInSeconds")
        return -1 if value is None else int(value)

    def _run(self) -> None:
        streams = self._clients["dynamodbstreams"]
        arn = self.mapping["EventSourceArn"]
        position = self.mapping.get("StartingPosition") or "LATEST"
        iterators: dict[str, str | None] = {}
        discovered = float("-inf")
        # Lambda's documentation requires dynamodb:ListStreams (which accepts no resource but
        # "*") of a stream mapping's execution role, beside DescribeStream, GetShardIterator
        # and GetRecords: the poller lists the table's streams as it starts, so a role
        # without it fails here.
        table = arn.split(":", 5)[5].split("/")[1]
        streams.list_streams(TableName=table)
        while not self._stop.is_set():
            if time.monotonic() - discovered >= self.SHARD_DISCOVERY_SECONDS:
                for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"].get(
                    "Shards", []
                ):
                    shard_id = shard["ShardId"]
                    if shard_id not in iterators:
                        iterators[shard_id] = streams.get_shard_iterator(
                            StreamArn=arn, ShardId=shard_id, ShardIteratorType=position
                        )["ShardIterator"]
                discovered = time.monotonic()
            busy = False
            for shard_id, iterator in list(iterators.items()):
                if iterator is None or self._stop.is_set():
                    continue
                response = streams.get_records(ShardIterator=iterator, Limit=self.batch_size)
                iterators[shard_id] = response.get("NextShardIterator")
                records = [
                    _json_safe({**r, "eventSourceARN": arn}) for r in response.get("Records", [])
                ]
                if records:
                    busy = True
                    self._deliver(shard_id, records)
            if not busy:
                self._stop.wait(self.POLL_INTERVAL)

    def _deliver(self, shard_id: str, records: list[dict[str, Any]]) -> None:
        pending = [records]
        while pending and not self._stop.is_set():
            batch = pending.pop(0)
            attempts = 0
            while batch and not self._stop.is_set():
                oldest = batch[0]["dynamodb"].get("ApproximateCreationDateTime", time.time())
                if self.max_age != -1 and time.time() - oldest > self.max_age:
                    self._give_up(shard_id, batch, "RecordAgeExceeded", attempts)
                    break
                sequence_numbers = [r["dynamodb"]["SequenceNumber"] for r in batch]
                payload = json.dumps({"Records": batch}).encode()
                result = self._invoke(self.function_name, payload, "aws:dynamodb", sequence_numbers)
                self.batches += 1
                attempts += 1
                if result.ok:
                    failed = failed_items(result, sequence_numbers, self.report_failures)
                    if failed == []:
                        break
                    if failed:  # resume from the first failed record
                        first = min(sequence_numbers.index(s) for s in failed)
                        batch = batch[first:]
                elif self.mapping.get("BisectBatchOnFunctionError") and len(batch) > 1:
                    half = len(batch) // 2
                    pending[0:0] = [batch[:half], batch[half:]]
                    break
                if self.max_retries != -1 and attempts > self.max_retries:
                    self._give_up(shard_id, batch, "RetryAttemptsExhausted", attempts)
                    break
                self._stop.wait(min(2.0, 0.2 * 2 ** (attempts - 1)))

    def _give_up(
        self, shard_id: str, batch: list[dict[str, Any]], condition: str, attempts: int
    ) -> None:
        """Send Lambda's on-failure record for the batch to the destination, and move on."""
        destination = (
            (self.mapping.get("DestinationConfig") or {}).get("OnFailure", {}).get("Destination")
        )
        self.last_error = f"gave up on {len(batch)} record(s) of {shard_id}: {condition}"
        if not destination:
            return
        first, last = batch[0]["dynamodb"], batch[-1]["dynamodb"]
        record = {
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": self.mapping["FunctionArn"],
                "condition": condition,
                "approximateInvokeCount": attempts,
            },
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": "Unhandled",
            },
            "version": "1.0",
            "timestamp": datetime.now(UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "DDBStreamBatchInfo": {
                "shardId": shard_id,
                "startSequenceNumber": first["SequenceNumber"],
                "endSequenceNumber": last["SequenceNumber"],
                "approximateArrivalOfFirstRecord": _iso(first.get("ApproximateCreationDateTime")),
                "approximateArrivalOfLastRecord": _iso(last.get("ApproximateCreationDateTime")),
                "batchSize": len(batch),
                "streamArn": self.mapping["EventSourceArn"],
            },
        }
        self._clients["sqs"].send_message(
            QueueUrl=self._queue_url(destination), MessageBody=json.dumps(record)
        )


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return (
        datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )
