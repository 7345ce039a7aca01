"""Plain logic of the embedded stack: partial batch responses, faults, sequencers, kills."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError
from devstack import moto_patches, stack
from devstack.faults import Fault, FaultInjector, request_service
from devstack.functions import FunctionPool, FunctionSpec
from devstack.moto_patches import next_sequencer
from devstack.pollers import SqsPoller, failed_items
from devstack.processes import alive
from devstack.retries import RetryLedger
from devstack.sandbox import Result, Sandbox, exit_reason
from devstack.server import DevstackApp, _read_body, changes_configuration
from moto import mock_aws
from moto.dynamodb.models import dynamodb_backends
from moto.dynamodb.models.table import StreamRecord, StreamShard, Table
from moto.dynamodb.responses import DynamoHandler
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.sqs.models import Message, Queue, SQSBackend, sqs_backends
from tooling import terraform

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
        self.attributes_read = 0

    def get_queue_url(self, **_: object) -> dict[str, str]:
        return {"QueueUrl": "https://queue"}

    def get_queue_attributes(self, **_: object) -> dict[str, dict]:
        # as Lambda's mappings need of their role (sqs:GetQueueAttributes)
        with self.lock:
            self.attributes_read += 1
        return {"Attributes": {}}

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
    assert queue.attributes_read >= 1  # each thread reads the attributes as it starts


# -- faults: request bodies, delays -------------------------------------------------------------


class _OneRead(io.BytesIO):
    """A request stream that can be read once, like a socket's."""

    reads = 0

    def read(self, *args: object) -> bytes:
        type(self).reads += 1
        if self.tell():
            raise AssertionError("the request body was read twice from the client")
        return super().read(*args)


def dynamodb_request(operation: str, body: bytes, **extra: object) -> dict:
    return {
        **environ("dynamodb", "POST", "/", f"DynamoDB_20120810.{operation}"),
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": _OneRead(body),
        **extra,
    }


def test_a_body_fault_fails_only_requests_whose_body_matches_and_leaves_the_body_intact():
    faults = FaultInjector()
    fault = faults.add({"service": "dynamodb", "operation": "UpdateItem", "body": r"READY"})
    ready = b'{"ExpressionAttributeValues": {":s": {"S": "READY"}}}'
    processing = b'{"ExpressionAttributeValues": {":s": {"S": "PROCESSING"}}}'

    request = dynamodb_request("UpdateItem", processing)
    assert faults.match(request) is None
    # moto still reads the whole body, by CONTENT_LENGTH, as the client sent it
    assert request["CONTENT_LENGTH"] == str(len(processing))
    assert _read_body(request) == processing

    request = dynamodb_request("UpdateItem", ready)
    assert faults.match(request) is fault
    assert _read_body(request) == ready
    assert fault.hits == 1


def test_a_chunked_body_is_put_back_as_it_came():
    faults = FaultInjector()
    faults.add({"service": "s3", "body": "nothing like this"})
    body = b"5;chunk-signature=x\r\nhello\r\n0\r\n\r\n"
    request = {**environ("s3"), "wsgi.input_terminated": True, "wsgi.input": io.BytesIO(body)}
    assert faults.match(request) is None
    assert "CONTENT_LENGTH" not in request
    assert _read_body(request) == body


def test_a_body_is_not_read_when_no_body_fault_could_match():
    faults = FaultInjector()
    faults.add({"service": "dynamodb", "operation": "UpdateItem", "body": "READY"})
    faults.add({"service": "dynamodb", "operation": "GetItem"})
    stream_before = _OneRead.reads
    request = dynamodb_request("PutItem", b'{"READY": 1}')
    assert faults.match(request) is None
    request = dynamodb_request("GetItem", b'{"READY": 1}')
    assert faults.match(request) is not None
    assert _OneRead.reads == stream_before  # a request streamed to moto is never buffered here


def test_a_body_is_decoded_with_bad_bytes_replaced():
    faults = FaultInjector()
    faults.add({"service": "s3", "body": "^\ufffdJFIF"})
    body = b"\xffJFIF..."
    assert faults.match({**environ("s3"), "CONTENT_LENGTH": "8", "wsgi.input": io.BytesIO(body)})


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"body": "("}, "body is not a valid regular expression"),
        ({"path": "[a-"}, "path is not a valid regular expression"),
        ({"delay": -1}, "delay must be between 0 and 900"),
        ({"delay": float("nan")}, "delay must be between"),
        ({"delay": 901}, "delay must be between"),
        ({"delay": True}, "delay must be a number"),
        ({"delay": "2"}, "delay must be a number"),
        ({"action": "drop"}, "action must be one of error, delay"),
        ({"action": "delay"}, 'action "delay" needs a delay'),
        ({"body": 3}, "body must be a regular expression"),
        ({"colour": "red"}, "unexpected keyword"),
    ],
)
def test_faults_that_do_not_validate_are_refused(spec, message):
    with pytest.raises((TypeError, ValueError), match=message):
        FaultInjector().add({"service": "s3", **spec})


def test_a_fault_lists_its_new_fields():
    faults = FaultInjector()
    faults.add({"service": "s3", "action": "delay", "delay": 2, "body": "x"})
    (listed,) = faults.list()
    assert (listed["action"], listed["delay"], listed["body"]) == ("delay", 2.0, "x")


class _Runtime:
    """What the server asks of the local runtime, recorded."""

    def __init__(self, kill_result: int | None = 1) -> None:
        self.kill_result = kill_result
        self.killed: list[tuple[str, bool]] = []
        self.changed = False

    def kill(self, function: str, include_idle: bool = False) -> int | None:
        self.killed.append((function, include_idle))
        return self.kill_result

    def configuration_changed(self) -> None:
        self.changed = True


class _Moto:
    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    def __call__(self, environ: dict, start_response) -> list[bytes]:
        self.bodies.append(_read_body(environ))
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b'{"Item": {}}']


def call(app, env: dict) -> tuple[str, bytes]:
    answer: list[str] = []
    body = b"".join(app(env, lambda status, headers: answer.append(status)))
    return answer[0], body


def control(app, route: str, method: str = "GET", body: object = None) -> tuple[str, object]:
    data = b"" if body is None else json.dumps(body).encode()
    env = {
        "PATH_INFO": f"/_devstack/{route}",
        "REQUEST_METHOD": method,
        "CONTENT_LENGTH": str(len(data)),
        "wsgi.input": io.BytesIO(data),
    }
    status, answer = call(app, env)
    return status, json.loads(answer)


def make_app(runtime: _Runtime | None = None) -> tuple[DevstackApp, _Moto]:
    moto = _Moto()
    return DevstackApp(moto, runtime or _Runtime(), FaultInjector(), threading.Event()), moto


def test_a_delay_fault_holds_the_request_then_passes_it_to_moto_unchanged():
    app, moto = make_app()
    status, _ = control(
        app,
        "faults",
        "POST",
        {
            "service": "dynamodb",
            "operation": "GetItem",
            "action": "delay",
            "delay": 0.3,
            "body": "img-1",
        },
    )
    assert status.startswith("201")
    body = b'{"TableName": "media", "Key": {"id": {"S": "img-1"}}}'

    started = time.monotonic()
    status, answer = call(app, dynamodb_request("GetItem", body))
    held = time.monotonic() - started

    assert (status, answer) == ("200 OK", b'{"Item": {}}')
    assert held >= 0.3
    assert moto.bodies == [body]
    # another item's GetItem is not held
    started = time.monotonic()
    call(app, dynamodb_request("GetItem", body.replace(b"img-1", b"img-2")))
    assert time.monotonic() - started < 0.3


def test_an_error_fault_with_a_delay_answers_the_error_late():
    app, moto = make_app()
    control(app, "faults", "POST", {"service": "dynamodb", "delay": 0.2, "status": 500})
    started = time.monotonic()
    status, _ = call(app, dynamodb_request("GetItem", b"{}"))
    assert status.startswith("500")
    assert time.monotonic() - started >= 0.2
    assert moto.bodies == []


@pytest.mark.parametrize(
    "spec",
    [
        {"service": "s3", "body": "("},
        {"service": "s3", "path": "("},
        {"service": "s3", "delay": -0.5},
        {"service": "s3", "action": "nope"},
        {"service": "s3", "surprise": 1},
    ],
)
def test_the_control_api_answers_400_to_a_fault_that_does_not_validate(spec):
    app, _ = make_app()
    status, answer = control(app, "faults", "POST", spec)
    assert status.startswith("400")
    assert answer["error"]
    assert control(app, "faults")[1] == {"faults": []}


def test_the_stack_counts_the_requests_it_serves_by_service_and_operation():
    app, _ = make_app()
    call(app, dynamodb_request("GetItem", b"{}"))
    call(app, dynamodb_request("GetItem", b"{}"))
    call(app, dynamodb_request("UpdateItem", b"{}"))
    control(app, "health")  # the control surface is not counted
    status, answer = control(app, "requests")
    assert status == "200 OK"
    assert answer == {"requests": {"dynamodb GetItem": 2, "dynamodb UpdateItem": 1}}
    assert control(app, "health")[1]["cpu_s"] >= 0


# -- killing environments ---------------------------------------------------------------------


def test_the_kill_route_kills_a_functions_environments_and_says_how_many():
    runtime = _Runtime(kill_result=2)
    app, _ = make_app(runtime)
    assert control(app, "kill", "POST", {"function": "thumbnail"}) == (
        "200 OK",
        {"function": "thumbnail", "killed": 2},
    )
    control(app, "kill", "POST", {"function": "thumbnail", "all": True})
    assert runtime.killed == [("thumbnail", False), ("thumbnail", True)]


@pytest.mark.parametrize(
    ("runtime", "body", "status"),
    [
        (_Runtime(kill_result=None), {"function": "nope"}, "404"),
        (_Runtime(), {}, "400"),
        (_Runtime(), {"function": 3}, "400"),
        (_Runtime(), {"function": "f", "all": "yes"}, "400"),
        (_Runtime(), ["f"], "400"),
    ],
)
def test_the_kill_route_refuses_what_it_cannot_do(runtime, body, status):
    app, _ = make_app(runtime)
    answer_status, answer = control(app, "kill", "POST", body)
    assert answer_status.startswith(status)
    assert answer["error"]


@pytest.mark.parametrize(
    ("returncode", "reason"),
    [
        (-signal.SIGKILL, "signal: killed"),
        (-signal.SIGSEGV, "signal: segmentation fault"),
        (-signal.SIGUSR1, "signal: SIGUSR1"),
        (1, "exit status 1"),
        (0, "exit status 0"),
    ],
)
def test_a_runtimes_end_is_told_in_lambdas_words(returncode, reason):
    assert exit_reason(returncode) == reason


def sleeping_sandbox(timeout_s: float = 60) -> Sandbox:
    """An environment whose worker is busy forever: a real process, no Runtime API."""
    sandbox = Sandbox(
        command=[],
        cwd=Path.cwd(),
        env={},
        log=io.BytesIO(),
        function_arn="arn:aws:lambda:us-east-1:123456789012:function:f",
        timeout_s=timeout_s,
    )
    sandbox._process = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True
    )
    return sandbox


def pool_of_sleepers(made: list[Sandbox]) -> FunctionPool:
    spec = FunctionSpec(
        name="f",
        arn="arn:aws:lambda:us-east-1:123456789012:function:f",
        handler="h.handler",
        runtime="python3.13",
        timeout=60,
        memory=128,
        architecture="x86_64",
        code_sha256="x",
        layer_arns=(),
        environment=(),
        reserved_concurrency=None,
    )
    pool = FunctionPool(
        spec,
        layer_hashes=(),
        code=None,  # type: ignore[arg-type]
        runtime_libs=None,  # type: ignore[arg-type]
        base_env={},
        log=io.BytesIO(),
        capacity=2,
        region="us-east-1",
    )

    def new_sandbox() -> Sandbox:
        made.append(sleeping_sandbox())
        return made[-1]

    pool._new_sandbox = new_sandbox  # type: ignore[method-assign]
    return pool


def invoke_in_background(pool: FunctionPool) -> tuple[threading.Thread, list[Result]]:
    results: list[Result] = []
    thread = threading.Thread(target=lambda: results.append(pool.invoke(b"{}", "req-1")))
    thread.start()
    deadline = time.monotonic() + 10
    while not pool._running and time.monotonic() < deadline:
        time.sleep(0.01)
    assert pool._running, "the invocation never started"
    return thread, results


def test_killing_a_busy_environment_ends_its_invocation_as_a_crashed_runtime():
    made: list[Sandbox] = []
    pool = pool_of_sleepers(made)
    try:
        thread, results = invoke_in_background(pool)
        assert pool.kill() == 1
        thread.join(10)
        (result,) = results
        assert result.error == "Unhandled"  # a function error: pollers retry, as on Lambda
        assert result.json() == {
            "errorType": "Runtime.ExitError",
            "errorMessage": "RequestId: req-1 Error: Runtime exited with error: signal: killed",
        }
        assert pool.environments == {"idle": 0, "busy": 0, "capacity": 2}

        # the next invocation gets a new environment
        thread, results = invoke_in_background(pool)
        assert len(made) == 2
        assert made[0] not in pool._running
        assert pool.kill() == 1
        thread.join(10)
        assert results[0].error == "Unhandled"
    finally:
        for sandbox in made:
            sandbox.kill()


def test_idle_environments_are_killed_only_when_asked():
    made: list[Sandbox] = []
    pool = pool_of_sleepers(made)
    idle = sleeping_sandbox()
    pool._idle.append(idle)
    try:
        assert pool.kill() == 0
        assert idle.alive
        assert pool.kill(include_idle=True) == 1
        assert not idle.alive
        assert pool.environments["idle"] == 0
        assert pool.kill(include_idle=True) == 0
    finally:
        idle.kill()


def test_an_environment_that_died_while_idle_is_replaced_not_reused():
    made: list[Sandbox] = []
    pool = pool_of_sleepers(made)
    dead = sleeping_sandbox()
    dead.kill()
    pool._idle.append(dead)
    try:
        thread, _ = invoke_in_background(pool)
        assert len(made) == 1  # a new environment took the invocation
        assert pool._running == {made[0]}
        assert pool.kill() == 1
        thread.join(10)
    finally:
        for sandbox in made:
            sandbox.kill()


@pytest.fixture
def per_item_writes(monkeypatch):
    """moto_patches' patch 9 applied for one test (moto's own methods restored afterwards)."""
    for name in moto_patches._DYNAMODB_WRITES:
        monkeypatch.setattr(DynamoHandler, name, getattr(DynamoHandler, name))
    monkeypatch.setattr(StreamShard, "add", StreamShard.add)
    moto_patches._serialize_dynamodb_writes()


def media_table(dynamodb, **extra) -> None:
    dynamodb.create_table(
        TableName="media",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        **extra,
    )


def test_dynamodb_writes_to_one_item_see_each_other_as_on_dynamodb(per_item_writes):
    # Each image's two workers record their half with ReturnValues=ALL_OLD; on DynamoDB one of
    # them always sees the other's half (writes to an item are serialized). moto's handler reads
    # the old item before its backend writes, so two server threads could both miss the other.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: overlaps become likely
    items, seen = 1000, {}
    try:
        with mock_aws():
            dynamodb = boto3.client("dynamodb", region_name="us-east-1")
            media_table(dynamodb)
            for i in range(items):
                dynamodb.put_item(TableName="media", Item={"id": {"S": str(i)}})

            def record(half: str, other: str) -> None:
                client = boto3.client("dynamodb", region_name="us-east-1")
                for i in range(items):
                    old = client.update_item(
                        TableName="media",
                        Key={"id": {"S": str(i)}},
                        UpdateExpression=f"SET {half} = :etag",
                        ExpressionAttributeValues={":etag": {"S": "e"}},
                        ReturnValues="ALL_OLD",
                    )["Attributes"]
                    seen[i, half] = other in old

            workers = [threading.Thread(target=record, args=h) for h in (("r", "m"), ("m", "r"))]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
    finally:
        sys.setswitchinterval(interval)
    missed = [i for i in range(items) if not seen[i, "r"] and not seen[i, "m"]]
    assert missed == []


def _inside_the_backend(monkeypatch, meeting: threading.Barrier) -> None:
    """moto's Table.get_item, which its put_item calls between reading the current item and
    storing the new one, made to wait there until every writer of the test is inside too (or
    until the barrier's bound passes: then it goes on alone)."""
    get_item = Table.get_item

    def slow_get_item(self, *args, **kwargs):
        found = get_item(self, *args, **kwargs)
        with contextlib.suppress(threading.BrokenBarrierError):
            meeting.wait()
        return found

    monkeypatch.setattr(Table, "get_item", slow_get_item)


def _race(*writers) -> list:
    """Run the writers in threads at once; what each returned or raised."""
    outcomes: list = [None] * len(writers)

    def run(index, writer):
        try:
            outcomes[index] = writer()
        except Exception as error:
            outcomes[index] = error

    threads = [threading.Thread(target=run, args=(i, w)) for i, w in enumerate(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads)
    return outcomes


def test_two_conditional_writes_to_one_item_are_one_after_the_other(per_item_writes, monkeypatch):
    # GIVEN moto's backend paused between reading an item and storing the new one, until both
    # writers are there: unserialized, both would read "no item" and both conditions would pass
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        media_table(dynamodb)
        _inside_the_backend(monkeypatch, threading.Barrier(2, timeout=2))

        def create(writer: str):
            def put():
                client = boto3.client("dynamodb", region_name="us-east-1")
                return client.put_item(
                    TableName="media",
                    Item={"id": {"S": "image-1"}, "writer": {"S": writer}},
                    ConditionExpression="attribute_not_exists(id)",
                )

            return put

        # WHEN two writers create the same item at once, each only if it does not exist
        outcomes = _race(create("a"), create("b"))
        stored = dynamodb.get_item(TableName="media", Key={"id": {"S": "image-1"}})["Item"]

    # THEN exactly one succeeds, and the other's condition saw the first one's item
    failed = [o for o in outcomes if isinstance(o, Exception)]
    assert len(failed) == 1, outcomes
    assert "ConditionalCheckFailed" in str(failed[0])
    winner = "ab"[outcomes.index(next(o for o in outcomes if not isinstance(o, Exception)))]
    assert stored["writer"] == {"S": winner}


def test_writes_to_different_items_overlap(per_item_writes, monkeypatch):
    # GIVEN moto's backend paused inside each write until both writers are there: with one lock
    # for all writes the second never gets in, and the barrier's generous bound breaks it
    meeting = threading.Barrier(2, timeout=30)
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        media_table(dynamodb)
        _inside_the_backend(monkeypatch, meeting)

        def create(image_id: str):
            def put():
                client = boto3.client("dynamodb", region_name="us-east-1")
                return client.put_item(
                    TableName="media",
                    Item={"id": {"S": image_id}},
                    ConditionExpression="attribute_not_exists(id)",
                )

            return put

        # WHEN two writers write two different items at once
        outcomes = _race(create("image-1"), create("image-2"))

    # THEN both were inside the backend together (the barrier was met, not broken) and both won
    assert not meeting.broken
    assert not any(isinstance(o, Exception) for o in outcomes), outcomes


def test_writes_that_cannot_be_keyed_by_item_exclude_every_other_write():
    locks = moto_patches.ItemLocks()
    order: list[str] = []
    inside = threading.Event()
    release = threading.Event()

    def keyed():
        with locks.items([("media", (("id", "S:1"),))]):
            inside.set()
            assert release.wait(30)
            order.append("keyed")

    def exclusive():
        assert inside.wait(30)
        with locks.exclusive():
            order.append("exclusive")

    writer = threading.Thread(target=keyed)
    partiql = threading.Thread(target=exclusive)
    writer.start()
    partiql.start()
    assert inside.wait(30)
    # the exclusive writer waits for the keyed one, and keeps a new keyed writer out
    deadline = time.monotonic() + 30
    while not locks._exclusive_waiting and time.monotonic() < deadline:
        time.sleep(0.01)
    assert locks._exclusive_waiting == 1
    release.set()
    writer.join(30)
    partiql.join(30)
    assert order == ["keyed", "exclusive"]
    assert locks.live == 0  # no lock outlives its writers


def test_item_locks_are_dropped_when_nobody_holds_or_waits_for_them():
    locks = moto_patches.ItemLocks()
    keys = [("t", (("id", f"S:{i}"),)) for i in range(100)]
    with locks.items(keys):
        assert locks.live == 100
        with locks.items([("t", (("id", "S:other"),))]):
            assert locks.live == 101
    assert locks.live == 0


def test_the_lock_key_of_an_item_comes_from_the_request_and_the_tables_key_schema():
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        dynamodb.create_table(
            TableName="pairs",
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "n", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "n", "AttributeType": "N"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        backend = dynamodb_backends["123456789012"]["us-east-1"]
        one = ("pairs", (("pk", "S:a"), ("n", "N:1")))
        item = {"pk": {"S": "a"}, "n": {"N": "1.0"}, "other": {"S": "x"}}
        assert moto_patches.write_keys(
            backend, "put_item", {"TableName": "pairs", "Item": item}
        ) == [one]
        key = {"pk": {"S": "a"}, "n": {"N": "1"}}
        assert moto_patches.write_keys(
            backend, "update_item", {"TableName": "pairs", "Key": key}
        ) == [one]
        batch = {
            "RequestItems": {
                "pairs": [
                    {"PutRequest": {"Item": item}},
                    {"DeleteRequest": {"Key": {"pk": {"S": "b"}, "n": {"N": "2"}}}},
                ]
            }
        }
        assert moto_patches.write_keys(backend, "batch_write_item", batch) == [
            one,
            ("pairs", (("pk", "S:b"), ("n", "N:2"))),
        ]
        # what cannot be keyed: the exclusive mode
        assert moto_patches.write_keys(backend, "execute_statement", {"Statement": "x"}) is None
        assert moto_patches.write_keys(backend, "put_item", {"TableName": "nope"}) is None


def test_stream_records_of_concurrent_writes_get_distinct_sequence_numbers(
    per_item_writes, monkeypatch
):
    # moto numbers a stream record by the length of the record list when it appends it: two
    # writes to different items appending at once got the same number
    meeting = threading.Barrier(2, timeout=2)
    record = StreamRecord.__init__

    def slow_record(self, *args, **kwargs):  # between numbering and appending
        with contextlib.suppress(threading.BrokenBarrierError):
            meeting.wait()
        record(self, *args, **kwargs)

    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        media_table(
            dynamodb, StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}
        )
        monkeypatch.setattr(StreamRecord, "__init__", slow_record)

        def create(image_id: str):
            client = boto3.client("dynamodb", region_name="us-east-1")
            return lambda: client.put_item(TableName="media", Item={"id": {"S": image_id}})

        _race(create("image-1"), create("image-2"))
        shard = dynamodb_backends["123456789012"]["us-east-1"].tables["media"].stream_shard
        numbers = [r.record["dynamodb"]["SequenceNumber"] for r in shard.items]
    assert len(numbers) == 2
    assert len(set(numbers)) == 2


def test_an_sqs_receive_does_not_rebuild_the_queue_attributes_per_message(monkeypatch):
    # moto checked each received message's retention by building every queue attribute (each
    # build counting the whole queue) three times: a receive cost the square of the depth.
    monkeypatch.setattr(
        SQSBackend,
        "is_message_valid_based_on_retention_period",
        SQSBackend.is_message_valid_based_on_retention_period,
    )
    monkeypatch.setattr(Message, "visible", Message.visible)
    monkeypatch.setattr(Message, "delayed", Message.delayed)
    moto_patches._receive_in_linear_time()
    builds = 0
    attributes = Queue.attributes

    def counted(queue: Queue) -> dict:
        nonlocal builds
        builds += 1
        return attributes.fget(queue)

    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="q", Attributes={"MessageRetentionPeriod": "60"})[
            "QueueUrl"
        ]
        for i in range(0, 200, 10):
            sqs.send_message_batch(
                QueueUrl=url,
                Entries=[{"Id": str(j), "MessageBody": str(i + j)} for j in range(10)],
            )
        sqs.send_message(QueueUrl=url, MessageBody="delayed", DelaySeconds=60)

        monkeypatch.setattr(Queue, "attributes", property(counted))
        received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30)
        bodies = [m["Body"] for m in received["Messages"]]
        assert (builds, len(bodies)) == (0, 10)
        while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
            bodies += [m["Body"] for m in batch]
        # each message once; in flight and delayed ones stay out
        assert sorted(bodies, key=int) == [str(i) for i in range(200)]

        sqs.send_message(QueueUrl=url, MessageBody="old")
        queue = sqs_backends["123456789012"]["us-east-1"].queues["q"]
        queue._messages[-1].sent_timestamp -= 61_000  # sent 61 s ago: past the retention period
        assert "Messages" not in sqs.receive_message(QueueUrl=url)


def test_the_server_matches_a_host_against_the_service_patterns_once(monkeypatch):
    monkeypatch.setattr(
        DomainDispatcherApplication,
        "get_backend_for_host",
        DomainDispatcherApplication.get_backend_for_host,
    )
    moto_patches._dispatch_by_known_host()
    scans = []

    class Patterns(list):
        def __iter__(self):
            scans.append(1)
            return super().__iter__()

    app = DomainDispatcherApplication(create_backend_app)
    app.backend_url_patterns = Patterns(app.backend_url_patterns)
    hosts = ["sqs.us-east-1.amazonaws.com", "dynamodb.us-east-1.amazonaws.com"] * 3
    assert [app.get_backend_for_host(host) for host in hosts] == ["sqs", "dynamodb"] * 3
    assert len(scans) == 2


@pytest.mark.parametrize(
    ("service", "method", "path", "target", "changes"),
    [
        ("lambda", "PUT", "/2015-03-31/functions/f/configuration", "", True),
        ("lambda", "POST", "/2015-03-31/event-source-mappings/", "", True),
        ("lambda", "GET", "/2015-03-31/functions/", "", False),
        ("apigateway", "POST", "/restapis/a/deployments", "", True),
        ("apigateway", "GET", "/restapis", "", False),
        ("events", "POST", "/", "AWSEvents.PutRule", True),
        ("events", "POST", "/", "AWSEvents.PutEvents", False),
        ("events", "POST", "/", "AWSEvents.ListRules", False),
        ("events", "POST", "/", "AWSEvents.RemoveTargets", True),
        ("sqs", "POST", "/", "AmazonSQS.DeleteMessage", False),
        ("dynamodb", "POST", "/", "DynamoDB_20120810.UpdateItem", False),
        ("s3", "PUT", "/bucket/key", "", False),
    ],
)
def test_the_runtime_rereads_the_configuration_after_writes_to_what_it_follows(
    service, method, path, target, changes
):
    assert changes_configuration(environ(service, method, path, target)) is changes


@pytest.mark.parametrize("fails", [False, True])
def test_the_apply_debug_log_is_kept_only_when_the_apply_fails(monkeypatch, tmp_path, fails):
    seen = {}

    def apply(env, root, **_):
        seen.update(env)
        Path(env["TF_LOG_PATH"]).write_text("provider: CreateFunction ...\n")
        if fails:
            raise terraform.TerraformError("terraform apply failed (exit 1)")

    monkeypatch.setattr(terraform, "environment", lambda state_dir, extra: {"PATH": "/bin"})
    monkeypatch.setattr(terraform, "init", lambda env, root: None)
    monkeypatch.setattr(terraform, "apply", apply)
    monkeypatch.setattr(terraform, "output_json", lambda env, root, state: "{}")
    debug_log = tmp_path / "terraform-debug.log"
    if fails:
        with pytest.raises(terraform.TerraformError, match=f"debug log: {debug_log}"):
            stack.apply_local_config("https://127.0.0.1:1", tmp_path, runtime="python3.11")
    else:
        stack.apply_local_config("https://127.0.0.1:1", tmp_path, runtime="python3.11")
    assert seen["TF_LOG"] == "DEBUG"
    assert debug_log.is_file() is fails


def lambda_create(body: bytes, invocation: str | None, attempt: int = 1) -> dict:
    """A CreateFunction as the Terraform provider's SDK sends it (``attempt`` of one call)."""
    request = {
        **environ("lambda", "POST", "/2015-03-31/functions"),
        "HTTP_HOST": "127.0.0.1:4599",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "4599",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "https",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "HTTP_AMZ_SDK_REQUEST": f"attempt={attempt}; max=25",
    }
    if invocation is not None:
        request["HTTP_AMZ_SDK_INVOCATION_ID"] = invocation
    return request


def a_function_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return event\n")
    return buffer.getvalue()


def test_a_retried_create_gets_the_answer_its_applied_first_attempt_got(caplog):
    # GIVEN the emulator (moto, through the stack's app) and a role for a function
    with mock_aws():
        iam = boto3.client("iam", region_name="us-east-1")
        role = iam.create_role(RoleName="f-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        moto = DomainDispatcherApplication(create_backend_app)
        app = DevstackApp(moto, _Runtime(), FaultInjector(), threading.Event())
        spec = {
            "FunctionName": "f",
            "Runtime": "python3.11",
            "Role": role,
            "Handler": "app.handler",
        }
        spec["Code"] = {"ZipFile": base64.b64encode(a_function_zip()).decode()}
        body = json.dumps(spec).encode()

        # WHEN the SDK sends CreateFunction again (its first answer lost after moto applied it)
        first = call(app, lambda_create(body, "call-1", attempt=1))
        retry = call(app, lambda_create(body, "call-1", attempt=2))

        # THEN the retry gets the first attempt's answer, not 409 "Function already exist"
        assert first[0].startswith("201")
        assert retry == first
        assert "attempt 2 of POST /2015-03-31/functions (invocation call-1)" in caplog.text
        functions = boto3.client("lambda", region_name="us-east-1").list_functions()["Functions"]
        assert [f["FunctionName"] for f in functions] == ["f"]
        # AND another call to create the same function is still refused, as on AWS
        status, answer = call(app, lambda_create(body, "call-2"))
        assert status.startswith("409")
        assert b"Function already exist: f" in answer


class _Counting:
    """A WSGI app answering each request with its number, or with the statuses it is given."""

    def __init__(self, *statuses: str, hold: threading.Event | None = None) -> None:
        self.statuses = list(statuses)
        self.hold = hold
        self.calls = 0

    def __call__(self, environ: dict, start_response) -> list[bytes]:
        self.calls += 1
        number = self.calls
        if self.hold is not None and number == 1:
            self.hold.wait(5)
        start_response(self.statuses.pop(0) if self.statuses else "200 OK", [])
        return [str(number).encode()]


def serve(ledger: RetryLedger, app, request: dict) -> tuple[str, bytes]:
    answer: list[str] = []
    body = b"".join(ledger.serve(app, request, lambda status, headers: answer.append(status)))
    return answer[0], body


def test_a_retry_waits_for_its_first_attempt_still_being_carried_out():
    release = threading.Event()
    app, ledger = _Counting(hold=release), RetryLedger()
    answers: list[tuple[str, bytes]] = []
    first = threading.Thread(
        target=lambda: answers.append(serve(ledger, app, lambda_create(b"{}", "slow")))
    )
    first.start()
    while app.calls == 0:
        time.sleep(0.01)
    retry = threading.Thread(
        target=lambda: answers.append(serve(ledger, app, lambda_create(b"{}", "slow", 2)))
    )
    retry.start()
    time.sleep(0.1)
    assert app.calls == 1  # the retry is waiting, not applied
    release.set()
    first.join(5)
    retry.join(5)
    assert answers == [("200 OK", b"1"), ("200 OK", b"1")]
    assert app.calls == 1


def test_failed_attempts_reads_and_unnamed_requests_are_carried_out_each_time():
    # an attempt that failed (5xx) is not an answer: its retry is applied, and then kept
    app, ledger = _Counting("503 Service Unavailable"), RetryLedger()
    assert serve(ledger, app, lambda_create(b"{}", "a"))[0].startswith("503")
    assert serve(ledger, app, lambda_create(b"{}", "a", 2)) == ("200 OK", b"2")
    assert serve(ledger, app, lambda_create(b"{}", "a", 3)) == ("200 OK", b"2")
    # reads, and requests that name no SDK call, are carried out every time
    read = {**lambda_create(b"", "b"), "REQUEST_METHOD": "GET"}
    assert [serve(ledger, app, read)[1] for _ in range(2)] == [b"3", b"4"]
    assert [serve(ledger, app, lambda_create(b"{}", None))[1] for _ in range(2)] == [b"5", b"6"]


def test_the_ledger_keeps_the_latest_calls_and_no_answer_too_large():
    app, ledger = _Counting(), RetryLedger(capacity=2, max_answer_bytes=1)
    for call_id in ("a", "b", "c"):
        serve(ledger, app, lambda_create(b"{}", call_id))
    assert serve(ledger, app, lambda_create(b"{}", "c", 2)) == ("200 OK", b"3")  # kept
    assert serve(ledger, app, lambda_create(b"{}", "a", 2)) == ("200 OK", b"4")  # forgotten
    big, ledger = _Counting(), RetryLedger(max_answer_bytes=0)
    serve(ledger, big, lambda_create(b"{}", "d"))
    assert serve(ledger, big, lambda_create(b"{}", "d", 2)) == ("200 OK", b"2")  # not kept


# CloudFront's documented error for a reused caller reference is not in botocore's error shapes
@pytest.mark.filterwarnings("ignore:Exception.CloudFrontException. with code Invalidation")
def test_a_repeated_invalidation_is_the_first_one_as_on_cloudfront(monkeypatch):
    """moto_patches' patch 14: CloudFront dedupes CreateInvalidation by CallerReference."""
    from moto.cloudfront.models import CloudFrontBackend  # noqa: PLC0415

    monkeypatch.setattr(
        CloudFrontBackend, "create_invalidation", CloudFrontBackend.create_invalidation
    )
    moto_patches._invalidate_once_per_caller_reference()
    with mock_aws():
        cloudfront = boto3.client("cloudfront", region_name="us-east-1")
        distribution = cloudfront.create_distribution(
            DistributionConfig={
                "CallerReference": "d",
                "Origins": {
                    "Quantity": 1,
                    "Items": [
                        {
                            "Id": "o",
                            "DomainName": "b.s3.us-east-1.amazonaws.com",
                            "S3OriginConfig": {"OriginAccessIdentity": ""},
                        }
                    ],
                },
                "DefaultCacheBehavior": {
                    "TargetOriginId": "o",
                    "ViewerProtocolPolicy": "https-only",
                },
                "Comment": "",
                "Enabled": True,
            }
        )["Distribution"]["Id"]

        def invalidate(paths, reference):
            return cloudfront.create_invalidation(
                DistributionId=distribution,
                InvalidationBatch={
                    "Paths": {"Quantity": len(paths), "Items": paths},
                    "CallerReference": reference,
                },
            )["Invalidation"]["Id"]

        first = invalidate(["/a/*"], "deleted-a-1")
        assert invalidate(["/a/*"], "deleted-a-1") == first
        assert invalidate(["/a/*"], "deleted-a-2") != first
        with pytest.raises(ClientError) as refused:
            invalidate(["/b/*"], "deleted-a-1")
        assert refused.value.response["Error"]["Code"] == "InvalidationBatchAlreadyExists"
        listed = cloudfront.list_invalidations(DistributionId=distribution)["InvalidationList"]
        assert listed["Quantity"] == 2
