"""Plain logic of the embedded stack: partial batch responses, faults, sequencers."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
import time

import pytest
from devstack.faults import Fault, FaultInjector, request_service
from devstack.moto_patches import next_sequencer
from devstack.pollers import SqsPoller, failed_items
from devstack.processes import alive
from devstack.sandbox import Result
from devstack.server import _read_body

IDS = ["m1", "m2", "m3"]


def result(payload: bytes) -> Result:
    return Result(request_id="r", payload=payload)


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        # Lambda's rules: these are complete successes ...
        (b"null", []),
        (b"", []),
        (b"{}", []),
        (b'{"batchItemFailures": []}', []),
        (b'{"batchItemFailures": null}', []),
        # ... partial failures ...
        (b'{"batchItemFailures": [{"itemIdentifier": "m2"}]}', ["m2"]),
        (
            b'{"batchItemFailures": [{"itemIdentifier": "m3"}, {"itemIdentifier": "m1"}]}',
            ["m3", "m1"],
        ),
        # ... and these fail the whole batch
        (b'{"batchItemFailures": [{"itemIdentifier": "nope"}]}', None),
        (b'{"batchItemFailures": [{"itemIdentifier": ""}]}', None),
        (b'{"batchItemFailures": [{"itemIdentifier": null}]}', None),
        (b'{"batchItemFailures": [{"id": "m1"}]}', None),
        (b"not json", None),
    ],
)
def test_partial_batch_responses_follow_lambdas_rules(payload, expected):
    assert failed_items(result(payload), IDS, report_failures=True) == expected


def test_without_report_batch_item_failures_a_success_is_the_whole_batch():
    assert (
        failed_items(result(b'{"batchItemFailures": [{"itemIdentifier": "m2"}]}'), IDS, False) == []
    )


def environ(service: str, method: str = "PUT", path: str = "/bucket/key", target: str = "") -> dict:
    return {
        "HTTP_AUTHORIZATION": "AWS4-HMAC-SHA256 "
        f"Credential=test/20261123/us-east-1/{service}/aws4_request, "
        "SignedHeaders=host, Signature=x",
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "HTTP_X_AMZ_TARGET": target,
        "QUERY_STRING": "",
    }


def test_faults_match_service_method_path_and_count_down():
    faults = FaultInjector()
    fault = faults.add({"service": "s3", "method": "PUT", "path": r"^/renditions/abc/", "times": 2})

    assert faults.match(environ("s3", path="/renditions/xyz/large.jpg")) is None
    assert faults.match(environ("s3", method="GET", path="/renditions/abc/large.jpg")) is None
    assert faults.match(environ("dynamodb", path="/renditions/abc/x")) is None
    assert faults.match(environ("s3", path="/renditions/abc/large.jpg")) is fault
    assert faults.match(environ("s3", path="/renditions/abc/small.jpg")) is fault
    assert faults.match(environ("s3", path="/renditions/abc/small.jpg")) is None  # used up
    assert faults.list()[0]["hits"] == 2


def test_faults_answer_in_the_services_error_format():
    status, _, body = Fault(service="s3", status=503, code="SlowDown").response()
    assert status.startswith("503")
    assert b"<Code>SlowDown</Code>" in body
    status, _headers, body = Fault(
        service="dynamodb", status=400, code="ThrottlingException"
    ).response()
    assert b'"__type": "ThrottlingException"' in body


def test_operation_matching_uses_the_target_header():
    faults = FaultInjector()
    faults.add({"service": "dynamodb", "operation": "UpdateItem"})
    assert faults.match(environ("dynamodb", "POST", "/", "DynamoDB_20120810.GetItem")) is None
    assert (
        faults.match(environ("dynamodb", "POST", "/", "DynamoDB_20120810.UpdateItem")) is not None
    )


def test_bad_faults_are_refused():
    with pytest.raises(ValueError):
        Fault(service="s3", status=200)
    with pytest.raises(Exception):  # noqa: B017 - re.error
        Fault(service="s3", path="(")


def test_presigned_requests_name_their_service_in_the_query():
    query = "X-Amz-Credential=test%2F20261123%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Signature=x"
    assert request_service({"QUERY_STRING": query}) == "s3"


def test_sequencers_keep_growing():
    values = [int(next_sequencer(), 16) for _ in range(1000)]
    assert values == sorted(values)
    assert len(set(values)) == len(values)


@pytest.mark.parametrize(
    "environ",
    [
        # boto3's PutObject: aws-chunked over Transfer-Encoding: chunked, no Content-Length
        {"wsgi.input_terminated": True},
        {"CONTENT_LENGTH": "11"},
    ],
)
def test_a_refused_request_body_is_read_to_its_end(environ):
    # A body left unread makes the server drop the connection under a client still sending it
    stream = io.BytesIO(b"hello world")
    assert _read_body({**environ, "wsgi.input": stream}) == b"hello world"
    assert stream.read() == b""


def test_a_process_is_alive_until_it_exits_and_a_zombie_counts_as_gone():
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    assert alive(os.getpid())
    assert alive(child.pid)
    child.stdin.close()  # it exits; not reaped yet, it is a zombie
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)
    assert not alive(child.pid)
    child.wait()
    assert not alive(child.pid)


class _SlowQueue:
    """An SQS client whose receive takes a moment, the way the emulator's does under load."""

    def __init__(self, waiting: int) -> None:
        self.waiting = [f"m{i}" for i in range(waiting)]
        self.lock = threading.Lock()
        self.inside = 0
        self.most_inside = 0

    def get_queue_url(self, **_: object) -> dict[str, str]:
        return {"QueueUrl": "https://queue"}

    def receive_message(self, **request: object) -> dict[str, list]:
        count = int(request["MaxNumberOfMessages"])  # type: ignore[call-overload]
        with self.lock:
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
        time.sleep(0.05)
        with self.lock:
            self.inside -= 1
            taken, self.waiting = self.waiting[:count], self.waiting[count:]
        return {"Messages": [{"MessageId": m, "ReceiptHandle": m, "Body": "{}"} for m in taken]}

    def delete_message_batch(self, **_: object) -> None:
        pass


def test_a_mappings_threads_take_turns_to_fill_a_batch():
    queue = _SlowQueue(waiting=12)
    batches: list[list[str]] = []

    def invoke(function: str, payload: bytes, source: str, items: list[str]) -> Result:
        batches.append(items)
        return result(b"null")

    poller = SqsPoller(
        {
            "UUID": "u",
            "FunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:f",
            "EventSourceArn": "arn:aws:sqs:us-east-1:123456789012:q",
            "BatchSize": 5,
        },
        invoke,
        {"sqs": queue},
        "us-east-1",
    )
    poller.start(threads=4)
    deadline = time.monotonic() + 10
    while sum(map(len, batches)) < 12 and time.monotonic() < deadline:
        time.sleep(0.01)
    poller.stop()

    assert queue.most_inside == 1
    assert sorted(map(len, batches), reverse=True) == [5, 5, 2]
